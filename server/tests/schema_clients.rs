//! Two clients written against nothing but the JSON Schema: every envelope they send or read is
//! a type `signalbox-bindings` generated with typify from `schemas/` (no `signalbox-protocol`,
//! no hand-written JSON). They identify, join a server, see each other in `server_users` and
//! `user_joined`, exchange `offer` / `answer` / `ice_candidate`, chat, type, and see `user_left`.

#![allow(missing_docs)]

mod common;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use signalbox_bindings::client_envelope as c;
use signalbox_bindings::server_envelope as s;
use tokio_tungstenite::tungstenite::Message;

use common::TestServer;
use common::ws::WAIT;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct SchemaClient {
    socket: Socket,
}

impl SchemaClient {
    async fn connect(server: &TestServer) -> (Self, s::ServerEnvelope) {
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
            .await
            .expect("connect");
        let mut client = Self { socket };
        let connected = client.recv().await;
        (client, connected)
    }

    async fn send(&mut self, envelope: c::ClientEnvelope) {
        let text = serde_json::to_string(&envelope).expect("serialize");
        self.socket.send(Message::text(text)).await.expect("send");
    }

    async fn recv(&mut self) -> s::ServerEnvelope {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("timed out")
                .expect("stream open")
                .expect("frame");
            if let Message::Text(text) = frame {
                return serde_json::from_str(text.as_str())
                    .unwrap_or_else(|e| panic!("schema types cannot read {text}: {e}"));
            }
        }
    }

    async fn identify(&mut self, id: &str, name: &str) {
        self.send(c::ClientEnvelope::IdentifyEnvelope {
            connection_scope: Some("wss://signal.example.test".into()),
            description: None,
            display_name: name.into(),
            oder_id: Some(c::UserId(id.into())),
            profile_updated_at: None,
            token: None,
            type_: c::IdentifyEnvelopeType::Identify,
        })
        .await;
    }

    async fn join(&mut self, server: &str) -> Vec<s::UserSummary> {
        self.send(c::ClientEnvelope::JoinServerEnvelope {
            invite_code: None,
            password: None,
            server_id: c::ServerId(server.into()),
            type_: c::JoinServerEnvelopeType::JoinServer,
        })
        .await;
        let s::ServerEnvelope::ServerUsersEnvelope {
            users, server_id, ..
        } = self.recv().await
        else {
            panic!("expected server_users");
        };
        assert_eq!(server_id.0, server);
        assert!(matches!(
            self.recv().await,
            s::ServerEnvelope::PluginRequirementsEnvelope { .. }
        ));
        users
    }
}

#[tokio::test]
async fn clients_built_from_the_schemas_alone_signal_each_other() {
    let server = TestServer::start().await;
    let http = server.client();
    let (token, _) = http.guest("Owner").await;
    http.call(
        "POST",
        "/api/servers",
        Some(&token),
        Some(&json!({"id": "room", "name": "Room"})),
    )
    .await
    .expect_ok(201);

    let (mut ada, connected) = SchemaClient::connect(&server).await;
    let s::ServerEnvelope::ConnectedEnvelope {
        protocol_version, ..
    } = connected
    else {
        panic!("connected first");
    };
    assert_eq!(protocol_version, env!("CARGO_PKG_VERSION"));
    let (mut bob, _) = SchemaClient::connect(&server).await;
    ada.identify("ada", "Ada").await;
    bob.identify("bob", "Bob").await;

    let roster = ada.join("room").await;
    assert_eq!(roster.len(), 1);
    assert_eq!(roster[0].oder_id.0, "ada");
    let roster = bob.join("room").await;
    let mut names: Vec<_> = roster.iter().map(|u| u.display_name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["Ada", "Bob"]);
    let s::ServerEnvelope::UserJoinedEnvelope {
        oder_id,
        display_name,
        connection_scope,
        ..
    } = ada.recv().await
    else {
        panic!("expected user_joined");
    };
    assert_eq!((oder_id.0.as_str(), display_name.as_str()), ("bob", "Bob"));
    assert_eq!(
        connection_scope.as_deref(),
        Some("wss://signal.example.test")
    );

    // offer -> answer -> ice_candidate, each stamped with the sender.
    ada.send(c::ClientEnvelope::OfferEnvelope {
        sdp: c::SessionDescription {
            sdp: Some("v=0 offer".into()),
            type_: c::SdpType::Offer,
            extra: Default::default(),
        },
        target_user_id: c::UserId("bob".into()),
        type_: c::OfferEnvelopeType::Offer,
        extra: Default::default(),
    })
    .await;
    let s::ServerEnvelope::OfferEnvelope {
        from_user_id, sdp, ..
    } = bob.recv().await
    else {
        panic!("expected offer");
    };
    assert_eq!(
        (from_user_id.0.as_str(), sdp.sdp.as_deref()),
        ("ada", Some("v=0 offer"))
    );
    bob.send(c::ClientEnvelope::AnswerEnvelope {
        sdp: c::SessionDescription {
            sdp: Some("v=0 answer".into()),
            type_: c::SdpType::Answer,
            extra: Default::default(),
        },
        target_user_id: c::UserId("ada".into()),
        type_: c::AnswerEnvelopeType::Answer,
        extra: Default::default(),
    })
    .await;
    let s::ServerEnvelope::AnswerEnvelope { from_user_id, .. } = ada.recv().await else {
        panic!("expected answer");
    };
    assert_eq!(from_user_id.0, "bob");
    ada.send(c::ClientEnvelope::IceCandidateEnvelope {
        candidate: c::IceCandidate {
            candidate: Some("candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host".into()),
            sdp_m_line_index: Some(0),
            sdp_mid: Some("0".into()),
            username_fragment: None,
            extra: Default::default(),
        },
        target_user_id: c::UserId("bob".into()),
        type_: c::IceCandidateEnvelopeType::IceCandidate,
        extra: Default::default(),
    })
    .await;
    let s::ServerEnvelope::IceCandidateEnvelope {
        candidate,
        from_user_id,
        ..
    } = bob.recv().await
    else {
        panic!("expected ice_candidate");
    };
    assert_eq!(from_user_id.0, "ada");
    assert_eq!(candidate.sdp_mid.as_deref(), Some("0"));

    // Chat and typing.
    let mut message = serde_json::Map::new();
    message.insert("text".into(), json!("hello Bob"));
    ada.send(c::ClientEnvelope::ChatMessageEnvelope {
        message,
        server_id: c::ServerId("room".into()),
        type_: c::ChatMessageEnvelopeType::ChatMessage,
    })
    .await;
    let s::ServerEnvelope::ChatMessageEnvelope {
        sender_id,
        sender_name,
        message,
        ..
    } = bob.recv().await
    else {
        panic!("expected chat_message");
    };
    assert_eq!((sender_id.0.as_str(), sender_name.as_str()), ("ada", "Ada"));
    assert_eq!(message["text"], "hello Bob");
    bob.send(c::ClientEnvelope::TypingEnvelope {
        channel_id: c::ChannelId("general".into()),
        is_typing: true,
        server_id: c::ServerId("room".into()),
        type_: c::TypingEnvelopeType::Typing,
    })
    .await;
    let s::ServerEnvelope::TypingEnvelope {
        oder_id, is_typing, ..
    } = ada.recv().await
    else {
        panic!("expected typing");
    };
    assert_eq!(oder_id.0, "bob");
    assert!(is_typing);

    // Bob leaves by closing his socket.
    bob.socket.close(None).await.expect("close");
    let s::ServerEnvelope::UserLeftEnvelope {
        oder_id, server_id, ..
    } = ada.recv().await
    else {
        panic!("expected user_left");
    };
    assert_eq!((oder_id.0.as_str(), server_id.0.as_str()), ("bob", "room"));
}
