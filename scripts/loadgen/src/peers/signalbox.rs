//! The signalbox adapter: `offer` envelopes through `signalbox-protocol` types (the wire names
//! are defined there, never here). A connection identifies with its name as `oderId` and joins
//! the benchmark's chat server when it will forward, because forwarding needs a shared server.

use futures_util::{SinkExt, StreamExt};
use signalbox_protocol::json::JsonObject;
use signalbox_protocol::ws::{
    Identify, JoinServer, Keepalive, SdpSignal, SdpType, SessionDescription,
};
use signalbox_protocol::{ClientEnvelope, ServerEnvelope, ServerId, UserId};
use tokio_tungstenite::tungstenite::Message;

use super::{Frame, Peer, next_text};
use crate::client;

/// The WebSocket URL on `addr` (`IP:port`).
pub fn url(addr: &str) -> String {
    format!("ws://{addr}/ws")
}

/// An `offer` to `to` whose SDP text is `body`.
pub fn signal(to: &str, body: &str) -> String {
    let envelope = ClientEnvelope::Offer(SdpSignal {
        target_user_id: UserId::from(to),
        sdp: SessionDescription {
            sdp_type: SdpType::Offer,
            sdp: Some(body.to_owned()),
            extra: JsonObject::new(),
        },
        extra: JsonObject::new(),
    });
    // Serializing a value built from strings cannot fail; an empty frame would be refused.
    serde_json::to_string(&envelope).unwrap_or_default()
}

/// The fields of a delivered `offer` the harness reads. Deserialized directly (other fields
/// skipped) rather than through `ServerEnvelope`, whose internally tagged enum buffers every
/// field before choosing a variant: the other adapters read their deliveries into small
/// structs too, so the generator's per-frame work stays comparable (BENCHMARKS.md). The
/// golden-example tests below keep these names equal to the protocol's.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct OfferDelivery {
    from_user_id: String,
    sdp: OfferSdp,
}

#[derive(serde::Deserialize)]
struct OfferSdp {
    sdp: Option<String>,
}

/// The start of every `offer` the server writes (its tag comes first).
const OFFER_HEAD: &str = r#"{"type":"offer","#;

/// What one server frame means: an `offer` is a signal, an `error` or `access_denied` is a
/// failure, every other envelope is bookkeeping.
pub fn parse(text: &str) -> Result<Frame, String> {
    if text.starts_with(OFFER_HEAD)
        && let Ok(offer) = serde_json::from_str::<OfferDelivery>(text)
    {
        return Ok(Frame::Signal {
            from: offer.from_user_id,
            body: offer.sdp.sdp.unwrap_or_default(),
        });
    }
    let envelope: ServerEnvelope =
        serde_json::from_str(text).map_err(|e| format!("not a signalbox envelope: {e}"))?;
    match envelope {
        ServerEnvelope::Offer(offer) => Ok(Frame::Signal {
            from: offer.from_user_id.to_string(),
            body: offer.sdp.sdp.unwrap_or_default(),
        }),
        ServerEnvelope::Error(error) => Err(format!("server error: {error:?}")),
        ServerEnvelope::AccessDenied(denied) => Err(format!("access denied: {denied:?}")),
        _ => Ok(Frame::Control),
    }
}

fn to_text(envelope: &ClientEnvelope) -> Result<Message, String> {
    serde_json::to_string(envelope)
        .map(Message::text)
        .map_err(|e| e.to_string())
}

/// Waits for an envelope of `wire_type`, failing on `error` / `access_denied`.
async fn expect(peer: &mut Peer, wire_type: &str) -> Result<(), String> {
    loop {
        let text = next_text(&mut peer.stream).await?;
        parse(&text)?;
        let envelope: ServerEnvelope = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        if envelope.wire_type() == wire_type {
            return Ok(());
        }
    }
}

/// `connected`, `identify` as `name`, a keepalive round trip (the server answers nothing to
/// `identify`), and `join_server` when `server_id` is given.
pub async fn handshake(
    addr: &str,
    source: u8,
    name: &str,
    server_id: Option<&str>,
) -> Result<Peer, String> {
    let (sink, stream) = client::open_socket(&url(addr), source).await?.split();
    let mut peer = Peer {
        id: name.to_owned(),
        sink,
        stream,
    };
    expect(&mut peer, "connected").await?;
    let identify = ClientEnvelope::Identify(Identify {
        oder_id: Some(UserId::from(name)),
        display_name: name.to_owned(),
        connection_scope: None,
        description: None,
        profile_updated_at: None,
        token: None,
    });
    peer.sink
        .feed(to_text(&identify)?)
        .await
        .map_err(|e| e.to_string())?;
    peer.sink
        .send(to_text(&ClientEnvelope::Keepalive(Keepalive {}))?)
        .await
        .map_err(|e| e.to_string())?;
    expect(&mut peer, "keepalive").await?;
    if let Some(server_id) = server_id {
        let join = ClientEnvelope::JoinServer(JoinServer {
            server_id: ServerId::from(server_id),
            password: None,
            invite_code: None,
        });
        peer.sink
            .send(to_text(&join)?)
            .await
            .map_err(|e| e.to_string())?;
        expect(&mut peer, "server_users").await?;
    }
    Ok(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The golden examples the protocol crate generates and checks: real frames of this protocol.
    const OFFER: &str = include_str!("../../../../schemas/examples/ServerEnvelope/offer.json");
    const CONNECTED: &str =
        include_str!("../../../../schemas/examples/ServerEnvelope/connected.json");
    const KEEPALIVE: &str =
        include_str!("../../../../schemas/examples/ServerEnvelope/keepalive.json");
    const ERROR: &str = include_str!("../../../../schemas/examples/ServerEnvelope/error.json");

    #[test]
    fn an_offer_is_a_signal_from_its_sender_carrying_the_sdp_text() {
        match parse(OFFER) {
            Ok(Frame::Signal { from, body }) => {
                assert_eq!(from, "a3c1e0f2-5b7d-4e8a-9c21-7f0e5d4b3a12");
                assert!(body.starts_with("v=0\r\n"), "{body}");
            }
            other => panic!("expected a signal, got {other:?}"),
        }
    }

    #[test]
    fn the_fast_path_reads_the_same_offer_as_the_full_envelope() {
        // Written the way the server writes it: the protocol type serialized, tag first.
        let golden: Option<ServerEnvelope> = serde_json::from_str(OFFER).ok();
        let compact = golden
            .and_then(|envelope| serde_json::to_string(&envelope).ok())
            .unwrap_or_default();
        assert!(compact.starts_with(OFFER_HEAD), "{compact}");
        let fast = serde_json::from_str::<OfferDelivery>(&compact).ok();
        let full: Option<ServerEnvelope> = serde_json::from_str(&compact).ok();
        match (fast, full) {
            (Some(fast), Some(ServerEnvelope::Offer(offer))) => {
                assert_eq!(fast.from_user_id, offer.from_user_id.to_string());
                assert_eq!(fast.sdp.sdp, offer.sdp.sdp);
            }
            _ => panic!("the golden offer must parse both ways: {compact}"),
        }
        assert_eq!(parse(&compact), parse(OFFER));
    }

    #[test]
    fn bookkeeping_envelopes_are_control_and_errors_fail() {
        assert_eq!(parse(CONNECTED), Ok(Frame::Control));
        assert_eq!(parse(KEEPALIVE), Ok(Frame::Control));
        assert!(parse(ERROR).is_err());
        assert!(parse(r#"{"type":"no_such_envelope"}"#).is_err());
    }

    #[test]
    fn the_offer_sent_round_trips_through_the_delivery_shape() {
        let sent: serde_json::Value =
            serde_json::from_str(&signal("bob", "1:2:xx")).unwrap_or_default();
        assert_eq!(sent["type"], "offer");
        assert_eq!(sent["targetUserId"], "bob");
        let mut delivered = sent.clone();
        delivered["fromUserId"] = "alice".into();
        assert_eq!(
            parse(&delivered.to_string()),
            Ok(Frame::Signal {
                from: "alice".into(),
                body: "1:2:xx".into()
            })
        );
    }
}
