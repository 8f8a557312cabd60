//! The PeerJS server adapter (peer 1.0.2): a client connects to
//! `/peerjs?key=peerjs&id=ID&token=TOKEN` and is answered `{"type":"OPEN"}` (or `ERROR` /
//! `ID-TAKEN`); it sends `{"type":"OFFER","dst":ID,"payload":...}` and the server forwards
//! `{"type":"OFFER","src":SENDER,"dst":ID,"payload":...}` (only those four fields); a client
//! sends `{"type":"HEARTBEAT"}` within `alive_timeout` (60 s) or is dropped. The payload has the
//! shape the PeerJS client sends for a data connection. Shapes read from peerjs-server's
//! webSocketServer, messageHandler and enums.

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::{Frame, Peer, next_text};
use crate::client;

/// The server's default key.
const KEY: &str = "peerjs";

/// The WebSocket URL for client `id` on `addr` (`IP:port`).
pub fn url(addr: &str, id: &str) -> String {
    format!("ws://{addr}/peerjs?key={KEY}&id={id}&token=bench-{id}")
}

/// An `OFFER` to `to` whose SDP text is `body`.
pub fn signal(to: &str, body: &str) -> String {
    json!({
        "type": "OFFER",
        "dst": to,
        "payload": {
            "sdp": { "type": "offer", "sdp": body },
            "type": "data",
            "connectionId": "dc_bench",
            "label": "dc_bench",
            "reliable": true,
            "serialization": "binary"
        }
    })
    .to_string()
}

/// The `HEARTBEAT` a client sends.
pub fn heartbeat() -> String {
    json!({ "type": "HEARTBEAT" }).to_string()
}

#[derive(Debug, Deserialize)]
struct ServerMessage {
    #[serde(rename = "type")]
    kind: String,
    src: Option<String>,
    payload: Option<Payload>,
}

#[derive(Debug, Deserialize)]
struct Payload {
    sdp: Option<Sdp>,
    candidate: Option<serde_json::Value>,
    msg: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Sdp {
    sdp: String,
}

/// What one server frame means: `OFFER`/`ANSWER` (the SDP text) and `CANDIDATE` (the candidate
/// as JSON) are signals; `OPEN`, `LEAVE`, `EXPIRE` are control; `ERROR` and `ID-TAKEN` fail.
pub fn parse(text: &str) -> Result<Frame, String> {
    let message: ServerMessage =
        serde_json::from_str(text).map_err(|e| format!("not a PeerJS message: {e}: {text:.80}"))?;
    let from = || {
        message
            .src
            .clone()
            .ok_or_else(|| format!("{} without src", message.kind))
    };
    match message.kind.as_str() {
        "OPEN" | "LEAVE" | "EXPIRE" => Ok(Frame::Control),
        "OFFER" | "ANSWER" => {
            let body = message
                .payload
                .as_ref()
                .and_then(|p| p.sdp.as_ref())
                .map(|sdp| sdp.sdp.clone())
                .ok_or_else(|| format!("{} without payload.sdp.sdp", message.kind))?;
            Ok(Frame::Signal {
                from: from()?,
                body,
            })
        }
        "CANDIDATE" => {
            let body = message
                .payload
                .as_ref()
                .and_then(|p| p.candidate.as_ref())
                .map(|c| c.to_string())
                .ok_or("CANDIDATE without payload.candidate")?;
            Ok(Frame::Signal {
                from: from()?,
                body,
            })
        }
        "ERROR" | "ID-TAKEN" => Err(format!(
            "server said {}: {}",
            message.kind,
            message.payload.and_then(|p| p.msg).unwrap_or_default()
        )),
        other => Err(format!("unknown PeerJS message type {other}")),
    }
}

/// Connects as `id`, waits for `OPEN` and sends one `HEARTBEAT`.
pub async fn handshake(addr: &str, source: u8, id: &str) -> Result<Peer, String> {
    let (mut sink, mut stream) = client::open_socket(&url(addr, id), source).await?.split();
    let first = next_text(&mut stream).await?;
    match parse(&first)? {
        Frame::Control if first.contains("\"OPEN\"") => {}
        _ => return Err(format!("expected OPEN first, got {first:.80}")),
    }
    sink.send(Message::text(heartbeat()))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Peer {
        id: id.to_owned(),
        sink,
        stream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: &str = include_str!("../../fixtures/peerjs/open.json");
    const OFFER: &str = include_str!("../../fixtures/peerjs/offer.json");
    const CANDIDATE: &str = include_str!("../../fixtures/peerjs/candidate.json");
    const LEAVE: &str = include_str!("../../fixtures/peerjs/leave.json");
    const EXPIRE: &str = include_str!("../../fixtures/peerjs/expire.json");
    const ID_TAKEN: &str = include_str!("../../fixtures/peerjs/id_taken.json");
    const ERROR_LIMIT: &str = include_str!("../../fixtures/peerjs/error_limit.json");

    #[test]
    fn an_offer_is_a_signal_from_src_carrying_the_sdp_text() {
        match parse(OFFER) {
            Ok(Frame::Signal { from, body }) => {
                assert_eq!(from, "alice-7d1f");
                assert!(body.starts_with("v=0\r\n"));
            }
            other => panic!("expected a signal, got {other:?}"),
        }
        assert!(matches!(parse(CANDIDATE), Ok(Frame::Signal { .. })));
    }

    #[test]
    fn open_leave_and_expire_are_control_and_refusals_fail() {
        for frame in [OPEN, LEAVE, EXPIRE] {
            assert_eq!(parse(frame), Ok(Frame::Control), "{frame}");
        }
        assert!(parse(ID_TAKEN).is_err_and(|e| e.contains("ID is taken")));
        assert!(parse(ERROR_LIMIT).is_err_and(|e| e.contains("concurrent user limit")));
        assert!(parse(r#"{"type":"SOMETHING"}"#).is_err());
        assert!(parse(r#"{"type":"OFFER","payload":{"sdp":{"sdp":"x"}}}"#).is_err());
    }

    #[test]
    fn the_offer_sent_is_what_the_server_forwards_with_src() {
        let mut sent: serde_json::Value =
            serde_json::from_str(&signal("bob", "1:2:x")).unwrap_or_default();
        assert_eq!(sent["dst"], "bob");
        sent["src"] = "alice".into();
        assert_eq!(
            parse(&sent.to_string()),
            Ok(Frame::Signal {
                from: "alice".into(),
                body: "1:2:x".into()
            })
        );
        assert_eq!(heartbeat(), r#"{"type":"HEARTBEAT"}"#);
    }
}
