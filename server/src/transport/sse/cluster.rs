//! SSE across nodes (cluster mode, issue 13; docs/design/cluster-plan.md §4): what the SSE
//! transport does when a session's stream, or a signal's target, is held by another node.
//!
//! Owns: the registration of this node's sessions in the cluster registry ([`Registered`]:
//! queued on create, removed when the session drops), the relay of a `POST /api/signal` or
//! `POST /api/leave` whose sender is held elsewhere (checked here first against the registry's
//! room and token hash, then checked again and run by the owner, whose token bucket counts
//! it), the owner's side of a relay ([`ClusterInbound`]), a signal's onward path when its
//! target is not a local SSE session (a raw signal to the node holding the target session, or
//! the hub's forward to a WebSocket member on any node), and `roster` events built from the
//! cluster roster (fetched once per change and room, one fetch in flight per room).
//!
//! Never: trusts a node id or a session's whereabouts sent by a client (only the registry's),
//! sends or stores a token (its SHA-256 only), waits without a bound (the backplane bounds every
//! relay with `cluster.relayTimeoutMs` and `cluster.maxPendingRelays`), or re-frames a signal
//! on its way to another node (the frame is built once, as standalone builds it).

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use bytes::{BufMut, Bytes, BytesMut};
use sha2::{Digest, Sha256};
use signalbox_protocol::sse::{self, SessionId, SseError, SseEvent, SseRoster};
use signalbox_protocol::{ServerId, UserId};

use super::{RosterFrame, Shared, SseTransport, TakenOver, frame_of, same_secret};
use crate::hub::sse_remote::{SseEntry, SseInbound, SseRelayAnswer, SseRemote};
use crate::hub::{ConnKey, RemoteForward};

/// What a node gives up with a session (the answer to a takeover): `1`, the principal's
/// length (u16) and the principal, then each kept event as its length (u32) and its bytes.
/// Empty: no such session here.
fn encode_taken(principal: Option<&UserId>, pending: &VecDeque<Bytes>) -> Bytes {
    let principal = principal.map(UserId::as_str).unwrap_or_default();
    let Ok(len) = u16::try_from(principal.len()) else {
        return Bytes::new();
    };
    let size = pending.iter().map(|f| 4 + f.len()).sum::<usize>();
    let mut out = BytesMut::with_capacity(3 + principal.len() + size);
    out.put_u8(1);
    out.put_u16(len);
    out.put_slice(principal.as_bytes());
    for frame in pending {
        let Ok(len) = u32::try_from(frame.len()) else {
            continue;
        };
        out.put_u32(len);
        out.put_slice(frame);
    }
    out.freeze()
}

fn decode_taken(bytes: &Bytes) -> Option<TakenOver> {
    if bytes.first() != Some(&1) {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*bytes.get(1)?, *bytes.get(2)?]));
    let principal = std::str::from_utf8(bytes.get(3..3 + len)?).ok()?;
    let mut at = 3 + len;
    let mut pending = Vec::new();
    while at < bytes.len() {
        let size: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        let size = usize::try_from(u32::from_be_bytes(size)).ok()?;
        pending.push(
            bytes
                .get(at + 4..at + 4 + size)
                .map(|_| bytes.slice(at + 4..at + 4 + size))?,
        );
        at += 4 + size;
    }
    Some(TakenOver {
        principal: (!principal.is_empty()).then(|| UserId(principal.to_owned())),
        pending,
    })
}

/// A resume of session `id` that this node does not hold: checked against the registry (the
/// room and the token's hash: 403 otherwise), then the holder gives it up.
pub(super) async fn take_over(
    remote: &Arc<dyn SseRemote>,
    id: &str,
    room: &str,
    token: &str,
) -> Result<Option<TakenOver>, SseError> {
    let Ok(Some(owner)) = remote.owner(id).await else {
        return Ok(None);
    };
    if owner.node == remote.node_id() {
        return Ok(None);
    }
    if owner.entry.room != room || !same_secret(&owner.entry.token_sha256, &token_sha256(token)) {
        return Err(SseError::InvalidToken);
    }
    match remote.takeover(&owner.node, id).await {
        SseRelayAnswer::Answered(answer) => Ok(decode_taken(&answer)),
        SseRelayAnswer::NoOwner => Ok(None),
        SseRelayAnswer::Unavailable => Err(SseError::Unavailable),
    }
}

/// A relayed request: which route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// `POST /api/signal`.
    Signal,
    /// `POST /api/leave`.
    Leave,
}

impl Op {
    fn byte(self) -> u8 {
        match self {
            Self::Signal => 1,
            Self::Leave => 2,
        }
    }

    fn of(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Signal),
            2 => Some(Self::Leave),
            _ => None,
        }
    }
}

/// A relayed request: `op`, the room's length (u16, big-endian), the room, the body as sent.
fn encode_request(op: Op, room: &str, body: &[u8]) -> Option<Bytes> {
    let len = u16::try_from(room.len()).ok()?;
    let mut out = BytesMut::with_capacity(3 + room.len() + body.len());
    out.put_u8(op.byte());
    out.put_u16(len);
    out.put_slice(room.as_bytes());
    out.put_slice(body);
    Some(out.freeze())
}

fn decode_request(bytes: &Bytes) -> Option<(Op, String, Bytes)> {
    let op = Op::of(*bytes.first()?)?;
    let len = usize::from(u16::from_be_bytes([*bytes.get(1)?, *bytes.get(2)?]));
    let room = std::str::from_utf8(bytes.get(3..3 + len)?).ok()?.to_owned();
    Some((op, room, bytes.slice(3 + len..)))
}

/// The answers a relayed request can have, by their one-byte code (0 is success).
const ANSWERS: [SseError; 8] = [
    SseError::MissingParameters,
    SseError::InvalidToken,
    SseError::TargetNotInRoom,
    SseError::BodyTooLarge,
    SseError::UnsupportedSignal,
    SseError::RateLimited,
    SseError::Full,
    SseError::Unavailable,
];

fn encode_answer(result: Result<(), SseError>) -> Bytes {
    let code = match result {
        Ok(()) => 0,
        Err(error) => ANSWERS
            .iter()
            .position(|e| *e == error)
            .and_then(|i| u8::try_from(i + 1).ok())
            // Signal and leave answer none of the connect route's errors.
            .unwrap_or(2),
    };
    Bytes::copy_from_slice(&[code])
}

fn decode_answer(bytes: &[u8]) -> Result<(), SseError> {
    match bytes {
        [0] => Ok(()),
        [code] => Err(ANSWERS
            .get(usize::from(*code).wrapping_sub(1))
            .copied()
            .unwrap_or(SseError::Unavailable)),
        _ => Err(SseError::Unavailable),
    }
}

/// Hex SHA-256 of a session token, as the cluster registry keeps it.
pub(super) fn token_sha256(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A session's entry in the cluster registry: queued when the session is created, removed
/// when it drops (leave, pruning, eviction, shutdown).
pub(super) struct Registered {
    remote: Arc<dyn SseRemote>,
    session: String,
}

impl Registered {
    pub(super) fn new(
        remote: &Arc<dyn SseRemote>,
        session: &SessionId,
        room: &str,
        token: &str,
        principal: Option<&UserId>,
    ) -> Self {
        remote.register(
            session.as_str(),
            Some(SseEntry {
                room: room.to_owned(),
                token_sha256: token_sha256(token),
                principal: principal.map(|p| p.as_str().to_owned()).unwrap_or_default(),
            }),
        );
        Self {
            remote: Arc::clone(remote),
            session: session.as_str().to_owned(),
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.remote.register(&self.session, None);
    }
}

/// A request whose sender is no session of this node: relayed to the node the registry names,
/// after checking here that the registry's room and token hash match the request's.
pub(super) async fn relay(
    remote: &Arc<dyn SseRemote>,
    op: Op,
    room: &str,
    sender: &SessionId,
    token: &str,
    body: &[u8],
) -> Result<(), SseError> {
    let owner = remote
        .owner(sender.as_str())
        .await
        .map_err(|_| SseError::Unavailable)?
        .ok_or(SseError::InvalidToken)?;
    if owner.node == remote.node_id()
        || owner.entry.room != room
        || !same_secret(&owner.entry.token_sha256, &token_sha256(token))
    {
        return Err(SseError::InvalidToken);
    }
    let request = encode_request(op, room, body).ok_or(SseError::MissingParameters)?;
    match remote.relay(&owner.node, sender.as_str(), request).await {
        SseRelayAnswer::Answered(answer) => decode_answer(&answer),
        SseRelayAnswer::NoOwner => Err(SseError::InvalidToken),
        SseRelayAnswer::Unavailable => Err(SseError::Unavailable),
    }
}

/// The signal of a local sender whose target is no local SSE session of the room: a WebSocket
/// member here or elsewhere (the hub's forward, local delivery first), or an SSE session on
/// another node (the signal event, framed here, put on its stream as it is).
pub(super) async fn signal_onward(
    shared: &Shared,
    remote: &Arc<dyn SseRemote>,
    sender_key: ConnKey,
    room: &str,
    request: &sse::SignalRequest,
    raw: &serde_json::value::RawValue,
) -> Result<(), SseError> {
    let sender_user = sse::session_user_id(&request.sender);
    let target_user = sse::session_user_id(&request.to);
    // A member of the room here needs no Redis (local delivery works through an outage).
    if !shared.hub.shares_server(&sender_user, &target_user) {
        let owner = remote
            .owner(request.to.as_str())
            .await
            .map_err(|_| SseError::Unavailable)?;
        if let Some(owner) = owner.filter(|o| o.entry.room == room && o.node != remote.node_id()) {
            let frame = SseEvent::raw_signal_frame(&request.sender, raw)
                .map_err(|_| SseError::MissingParameters)?;
            return match remote
                .raw_signal(
                    &owner.node,
                    request.sender.as_str(),
                    request.to.as_str(),
                    frame.into(),
                )
                .await
            {
                Ok(true) => Ok(()),
                Ok(false) => Err(SseError::TargetNotInRoom),
                Err(_) => Err(SseError::Unavailable),
            };
        }
        let member = remote
            .in_roster(room, target_user.as_str())
            .await
            .map_err(|_| SseError::Unavailable)?;
        if !member {
            return Err(SseError::TargetNotInRoom);
        }
    }
    let envelope =
        sse::signal_envelope(&request.to, &request.signal).ok_or(SseError::UnsupportedSignal)?;
    let hub = &shared.hub;
    let local = hub.forward(sender_key, envelope.clone());
    let Some(hook) = hub.remote() else {
        return local.map(|_| ()).map_err(|_| SseError::TargetNotInRoom);
    };
    let out = hub
        .forward_frame(sender_key, envelope)
        .map_err(|_| SseError::TargetNotInRoom)?;
    let outcome = hook
        .forward(&out.from, &out.target, &out.frame, out.shared)
        .await;
    match outcome {
        _ if local.is_ok() => Ok(()),
        RemoteForward::Delivered => Ok(()),
        RemoteForward::Unavailable => Err(SseError::Unavailable),
        RemoteForward::TargetNotFound | RemoteForward::Forbidden | RemoteForward::LocalOnly => {
            Err(SseError::TargetNotInRoom)
        }
    }
}

/// The SSE transport's side of other nodes' SSE traffic.
pub(super) struct ClusterInbound {
    pub(super) shared: Weak<Shared>,
}

impl SseInbound for ClusterInbound {
    fn relay(&self, corr: u64, reply_to: String, _session: String, request: Bytes) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let Some(remote) = shared.cluster.get().cloned() else {
            return;
        };
        tokio::spawn(async move {
            let transport = SseTransport { shared };
            let result = match decode_request(&request) {
                None => Err(SseError::MissingParameters),
                Some((Op::Signal, room, body)) => {
                    transport
                        .signal_as(Some(&room), &body, super::Via::Relay)
                        .await
                }
                Some((Op::Leave, room, body)) => {
                    transport
                        .leave_as(Some(&room), &body, super::Via::Relay)
                        .await
                }
            };
            remote.answer(&reply_to, corr, encode_answer(result));
        });
    }

    fn takeover(&self, corr: u64, reply_to: String, session: String) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let Some(remote) = shared.cluster.get().cloned() else {
            return;
        };
        let removed = shared.lock().remove(&SessionId(session));
        let answer = removed.as_ref().map_or_else(Bytes::new, |s| {
            encode_taken(s.principal.as_ref(), &s.pending)
        });
        // Dropped before answering: its registry entry's removal is queued ahead of the answer,
        // so the new holder's entry is written after it.
        drop(removed);
        remote.answer(&reply_to, corr, answer);
    }

    fn raw_signal(&self, _from: String, to: String, raw: Bytes) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let capacity = shared.settings.stream_buffer_events;
        let mut registry = shared.lock();
        if let Some(session) = registry.sessions.get_mut(&SessionId(to)) {
            session.deliver(raw, false, capacity, &shared.metrics);
        }
    }

    fn roster_changed(&self, server: &str) {
        if let Some(shared) = self.shared.upgrade() {
            let mut registry = shared.lock();
            shared.refresh_roster(&mut registry, server);
        }
    }
}

impl Shared {
    /// The membership of `room` changed somewhere: its sessions here get the cluster roster
    /// (fetched by one task per room; a change while it fetches makes it fetch once more).
    pub(super) fn refresh_roster(self: &Arc<Self>, registry: &mut super::Registry, room: &str) {
        if !registry.room_sizes.contains_key(room) {
            return;
        }
        if let Some(again) = registry.refreshing.get_mut(room) {
            *again = true;
            return;
        }
        registry.refreshing.insert(room.to_owned(), false);
        tokio::spawn(refresh_loop(Arc::downgrade(self), room.to_owned()));
    }
}

async fn refresh_loop(shared: Weak<Shared>, room: String) {
    let server = sse::room_server_id(&room);
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let remote = match strong.hub.remote() {
            Some(hook) => hook.roster(&server).await,
            None => None,
        };
        let frame = cluster_roster_frame(&strong, &server, remote.unwrap_or_default());
        let capacity = strong.settings.stream_buffer_events;
        let mut registry = strong.lock();
        if let Some(frame) = frame {
            let roster = RosterFrame { version: 0, frame };
            for session in registry.sessions.values_mut().filter(|s| s.room == room) {
                if session
                    .roster
                    .as_ref()
                    .is_some_and(|r| r.frame == roster.frame)
                {
                    continue;
                }
                session.deliver(roster.frame.clone(), true, capacity, &strong.metrics);
                session.roster = Some(roster.clone());
            }
            if registry.room_sizes.contains_key(&room) {
                registry.rosters.insert(room.clone(), roster);
            }
        }
        let live = registry.room_sizes.contains_key(&room);
        match registry.refreshing.get_mut(&room) {
            Some(again) if *again && live => *again = false,
            _ => {
                registry.refreshing.remove(&room);
                return;
            }
        }
    }
}

/// The room's `roster`: its members here, then the other nodes' (Redis's view; none while
/// Redis is unreachable), each once.
fn cluster_roster_frame(
    shared: &Shared,
    server: &ServerId,
    others: Vec<(UserId, String)>,
) -> Option<Bytes> {
    let mut ids: Vec<UserId> = shared
        .hub
        .roster(server)
        .map(|(_, users)| users)
        .unwrap_or_default();
    let local: std::collections::HashSet<UserId> = ids.iter().cloned().collect();
    ids.extend(
        others
            .into_iter()
            .map(|(user, _)| user)
            .filter(|u| !local.contains(u)),
    );
    shared
        .metrics
        .rosters_serialized
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    frame_of(&SseEvent::Roster(SseRoster(
        ids.into_iter().map(|u| SessionId(u.0)).collect(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_survives_its_encoding_and_a_short_one_is_refused() {
        let body = br#"{"sender":"a","to":"b","token":"t","signal":{}}"#;
        let bytes = encode_request(Op::Signal, "AGENT-ROOM", body).expect("fits");
        let (op, room, back) = decode_request(&bytes).expect("decodes");
        assert_eq!(
            (op, room.as_str(), &back[..]),
            (Op::Signal, "AGENT-ROOM", &body[..])
        );
        let leave = encode_request(Op::Leave, "", b"").expect("fits");
        assert_eq!(
            decode_request(&leave),
            Some((Op::Leave, String::new(), Bytes::new()))
        );
        assert_eq!(decode_request(&bytes.slice(..5)), None);
        assert_eq!(decode_request(&Bytes::from_static(&[9, 0, 0])), None);
        assert!(encode_request(Op::Signal, &"R".repeat(70_000), b"").is_none());
    }

    #[test]
    fn every_answer_survives_its_encoding() {
        assert_eq!(decode_answer(&encode_answer(Ok(()))), Ok(()));
        for error in ANSWERS {
            assert_eq!(decode_answer(&encode_answer(Err(error))), Err(error));
        }
        assert_eq!(decode_answer(&[200]), Err(SseError::Unavailable));
        assert_eq!(decode_answer(b""), Err(SseError::Unavailable));
    }

    #[test]
    fn what_a_node_gives_up_survives_its_encoding() {
        let pending: VecDeque<Bytes> = [&b"event: signal\ndata: {}\n\n"[..], b""]
            .into_iter()
            .map(Bytes::from_static)
            .collect();
        let taken =
            decode_taken(&encode_taken(Some(&UserId::from("ada")), &pending)).expect("decodes");
        assert_eq!(taken.principal, Some(UserId::from("ada")));
        assert_eq!(taken.pending, Vec::from(pending.clone()));
        let anonymous = decode_taken(&encode_taken(None, &VecDeque::new())).expect("decodes");
        assert_eq!((anonymous.principal, anonymous.pending.len()), (None, 0));
        assert!(decode_taken(&Bytes::new()).is_none(), "no such session");
        let cut = encode_taken(None, &pending);
        assert!(decode_taken(&cut.slice(..cut.len() - 3)).is_none());
    }

    #[test]
    fn a_token_is_kept_as_its_hex_sha256() {
        assert_eq!(
            token_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
