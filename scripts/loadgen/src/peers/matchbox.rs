//! The matchbox_server adapter (matchbox 0.15): a peer connects to `/ROOM`, the server sends
//! `{"IdAssigned":ID}` first and `{"NewPeer":ID}` to the peers already in the room; a peer sends
//! `{"Signal":{"receiver":ID,"data":...}}` and its partner receives
//! `{"Signal":{"sender":ID,"data":...}}`; `"KeepAlive"` keeps an idle socket open. `data` is
//! matchbox_socket's `PeerSignal`, externally tagged: `{"Offer":SDP}`. Shapes read from
//! matchbox_protocol's `PeerRequest`/`PeerEvent` and matchbox_server's topology.

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::{Frame, Peer, next_text};
use crate::client;

/// The WebSocket URL of `room` on `addr` (`IP:port`).
pub fn url(addr: &str, room: &str) -> String {
    format!("ws://{addr}/{room}")
}

/// A `Signal` request carrying an offer whose SDP text is `body`.
pub fn signal(to: &str, body: &str) -> String {
    json!({ "Signal": { "receiver": to, "data": { "Offer": body } } }).to_string()
}

/// `PeerEvent` as matchbox_server serializes it.
#[derive(Debug, Deserialize)]
enum Event {
    IdAssigned(String),
    NewPeer(IgnoredAny),
    PeerLeft(IgnoredAny),
    Signal { sender: String, data: PeerSignal },
}

/// matchbox_socket's `PeerSignal`.
#[derive(Debug, Deserialize)]
enum PeerSignal {
    Offer(String),
    Answer(String),
    IceCandidate(String),
}

/// What one server frame means; `IdAssigned`'s id is returned by [`assigned_id`].
pub fn parse(text: &str) -> Result<Frame, String> {
    let event: Event =
        serde_json::from_str(text).map_err(|e| format!("not a matchbox event: {e}: {text:.80}"))?;
    Ok(match event {
        Event::Signal { sender, data } => Frame::Signal {
            from: sender,
            body: match data {
                PeerSignal::Offer(body)
                | PeerSignal::Answer(body)
                | PeerSignal::IceCandidate(body) => body,
            },
        },
        Event::IdAssigned(_) | Event::NewPeer(_) | Event::PeerLeft(_) => Frame::Control,
    })
}

/// The id in an `IdAssigned` event.
pub fn assigned_id(text: &str) -> Result<String, String> {
    match serde_json::from_str(text) {
        Ok(Event::IdAssigned(id)) => Ok(id),
        _ => Err(format!("expected IdAssigned first, got {text:.80}")),
    }
}

/// Connects to `room`, takes the assigned id and sends one `KeepAlive`.
pub async fn handshake(addr: &str, source: u8, room: &str) -> Result<Peer, String> {
    let (mut sink, mut stream) = client::open_socket(&url(addr, room), source).await?.split();
    let id = assigned_id(&next_text(&mut stream).await?)?;
    sink.send(Message::text(json!("KeepAlive").to_string()))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Peer { id, sink, stream })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID_ASSIGNED: &str = include_str!("../../fixtures/matchbox/id_assigned.json");
    const NEW_PEER: &str = include_str!("../../fixtures/matchbox/new_peer.json");
    const PEER_LEFT: &str = include_str!("../../fixtures/matchbox/peer_left.json");
    const SIGNAL_OFFER: &str = include_str!("../../fixtures/matchbox/signal_offer.json");
    const SIGNAL_ICE: &str = include_str!("../../fixtures/matchbox/signal_ice_candidate.json");

    #[test]
    fn the_first_frame_assigns_the_id() {
        assert_eq!(
            assigned_id(ID_ASSIGNED).as_deref(),
            Ok("3f0c9a52-8d3e-4b6f-9a41-2c7e5d1b8f06")
        );
        assert!(assigned_id(NEW_PEER).is_err());
    }

    #[test]
    fn room_events_are_control() {
        for frame in [ID_ASSIGNED, NEW_PEER, PEER_LEFT] {
            assert_eq!(parse(frame), Ok(Frame::Control), "{frame}");
        }
    }

    #[test]
    fn a_signal_is_from_its_sender_and_carries_the_peer_signal_text() {
        let from = "b14e7d20-5a9c-4f3b-8e62-91d0c3a7f5e4".to_owned();
        match parse(SIGNAL_OFFER) {
            Ok(Frame::Signal { from: f, body }) => {
                assert_eq!(f, from);
                assert!(body.starts_with("v=0\r\n"));
            }
            other => panic!("expected a signal, got {other:?}"),
        }
        assert!(matches!(parse(SIGNAL_ICE), Ok(Frame::Signal { .. })));
    }

    #[test]
    fn the_request_sent_is_what_the_server_forwards_as_data() {
        let sent: serde_json::Value =
            serde_json::from_str(&signal("peer-b", "1:2:x")).unwrap_or_default();
        assert_eq!(sent["Signal"]["receiver"], "peer-b");
        let delivered = json!({ "Signal": { "sender": "peer-a", "data": sent["Signal"]["data"] } });
        assert_eq!(
            parse(&delivered.to_string()),
            Ok(Frame::Signal {
                from: "peer-a".into(),
                body: "1:2:x".into()
            })
        );
    }

    #[test]
    fn foreign_frames_fail() {
        assert!(parse(r#"{"type":"OPEN"}"#).is_err());
        assert!(parse("KeepAlive").is_err());
    }
}
