//! `/api/servers/{serverId}/plugins`: the plugin registry of a server (http.md,
//! `plugin-support`).
//!
//! Owners and moderators register, replace and remove manifests; anyone who may view the
//! server lists them. A manifest is compiled ([`crate::plugins::compile`]) before it is stored,
//! so a schema that is not valid JSON Schema is refused with the reason and never reaches a
//! `plugin_event`.

use std::sync::Arc;

use signalbox_protocol::http::{OkResponse, PluginManifestList, PluginManifestRequest};
use signalbox_protocol::limits::PLUGIN_MAX_PER_SERVER;
use signalbox_protocol::{PluginId, ServerId, TimestampMs};
use warp::http::{Method, StatusCode};

use super::servers::{denied, require_staff};
use super::{AuthRule, Reply, Req, Route, body, handler};
use crate::app::AppState;
use crate::directory::access;
use crate::directory::{DirectoryError, plugin_manifests};
use crate::http::ApiFailure;
use crate::plugins;

/// This family's routes.
pub fn routes() -> Vec<Route> {
    let one = "/api/servers/{serverId}/plugins/{pluginId}";
    vec![
        Route::new(
            Method::GET,
            "/api/servers/{serverId}/plugins",
            AuthRule::Read,
            "Lists the plugin manifests registered for a server.",
            handler!(list),
        )
        .answers(body!(PluginManifestList)),
        Route::new(
            Method::PUT,
            one,
            AuthRule::Token,
            "Registers a plugin or replaces its manifest (owner and moderators).",
            handler!(put),
        )
        .takes(body!(PluginManifestRequest))
        .answers(body!(PluginManifest)),
        Route::new(
            Method::DELETE,
            one,
            AuthRule::Token,
            "Removes a plugin (owner and moderators).",
            handler!(remove),
        )
        .answers(body!(OkResponse)),
    ]
}

/// `GET /api/servers/{serverId}/plugins`.
pub async fn list(state: Arc<AppState>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let user = req.caller.as_ref().map(|c| c.user_id.clone());
    let items = state
        .db
        .call(move |c| -> Result<_, DirectoryError> {
            Ok(match access::view(c, &server, user.as_ref())? {
                Ok(_) => Ok(plugin_manifests::list(c, &server)?),
                Err(reason) => Err(reason),
            })
        })
        .await?
        .map_err(denied)?;
    Reply::ok(&PluginManifestList { items })
}

/// `PUT /api/servers/{serverId}/plugins/{pluginId}`.
pub async fn put(state: Arc<AppState>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let plugin = PluginId::from(req.param(1));
    let request: PluginManifestRequest = req.json()?;
    require_staff(&state, &server, &req.caller()?.user_id, false).await?;
    let (manifest, _) = plugins::compile(&plugin, request, TimestampMs::now())
        .map_err(|e| ApiFailure::bad_request(e.to_string()))?;
    let s = server.clone();
    let reply = req
        .write(&state, StatusCode::OK, move |c| {
            let others = plugin_manifests::list(c, &s)?
                .into_iter()
                .filter(|m| m.plugin_id != manifest.plugin_id)
                .count();
            if others >= PLUGIN_MAX_PER_SERVER {
                return Err(DirectoryError::Conflict(format!(
                    "a server registers at most {PLUGIN_MAX_PER_SERVER} plugins"
                )));
            }
            plugin_manifests::upsert(c, &s, &manifest)?;
            Ok(manifest)
        })
        .await?;
    state.plugins.invalidate(&server, &plugin);
    Ok(reply)
}

/// `DELETE /api/servers/{serverId}/plugins/{pluginId}`.
pub async fn remove(state: Arc<AppState>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let plugin = PluginId::from(req.param(1));
    require_staff(&state, &server, &req.caller()?.user_id, false).await?;
    let (s, p) = (server.clone(), plugin.clone());
    let reply = req
        .write(&state, StatusCode::OK, move |c| {
            plugin_manifests::delete(c, &s, &p).map(|()| OkResponse { ok: true })
        })
        .await?;
    state.plugins.invalidate(&server, &plugin);
    Ok(reply)
}
