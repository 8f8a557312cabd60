//! WebSocket signaling end to end: the real server on 127.0.0.1:0, real WebSocket clients.
//!
//! - `lifecycle`: `connected`, `identify`, auth on the socket, versions, membership, presence,
//!   multi-device dedupe, close and shutdown.
//! - `routing`: chat, typing, voice, every forwarded envelope, icon sync.
//! - `limits`: frame cap, rate limit, heartbeat, slow consumer, connection caps, `/metrics`.
//! - `plugins`: the plugin registry and `plugin_event` validation.
//! - `violations`: protocol violations close with 1002/1007/1009 before the TCP close.
//! - `seed_shapes`: frames in the exact shapes of Toju's envelope catalogue.

#![allow(missing_docs)]

#[path = "../common/mod.rs"]
mod common;

mod lifecycle;
mod limits;
mod plugins;
mod routing;
mod seed_shapes;
mod violations;

use serde_json::{Value, json};

use common::ws::WsClient;
pub use common::ws::connect_as;
use common::{Client, TestServer};

/// A guest with a token, connected over WebSocket with `?token=` and identified.
pub struct User {
    pub id: String,
    pub token: String,
    pub name: String,
    pub ws: WsClient,
}

impl User {
    /// A new guest named `name`, connected and identified.
    pub async fn new(server: &TestServer, name: &str) -> Self {
        let (token, id) = server.client().guest(name).await;
        let ws = connect_as(server, &token, name).await;
        Self {
            id,
            token,
            name: name.to_owned(),
            ws,
        }
    }

    /// Another device of this user.
    pub async fn device(&self, server: &TestServer) -> WsClient {
        connect_as(server, &self.token, &self.name).await
    }
}

/// Creates a server owned by `token`'s user; `extra` adds fields (`visibility`, ...).
pub async fn create_server(http: &Client, token: &str, id: &str, extra: Value) -> Value {
    let mut body = json!({"id": id, "name": format!("Server {id}")});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    http.call("POST", "/api/servers", Some(token), Some(&body))
        .await
        .expect_ok(201)
}

/// A server with `variables`, a public server `lobby` owned by a first user, and that user.
pub async fn lobby(variables: &str) -> (TestServer, User) {
    let server = TestServer::start_with(variables).await;
    let mut owner = User::new(&server, "Ada").await;
    create_server(&server.client(), &owner.token, "lobby", json!({})).await;
    owner.ws.join("lobby").await;
    (server, owner)
}

/// The user fields the server sends in `server_users` and `user_joined`.
pub fn summary_of<'a>(users: &'a Value, id: &str) -> &'a Value {
    users
        .as_array()
        .and_then(|list| list.iter().find(|u| u["oderId"] == id))
        .unwrap_or_else(|| panic!("{id} not in {users}"))
}
