//! The SSE transport: rooms over Server-Sent Events and plain POSTs (`docs/` and the protocol
//! crate's `sse` module describe the wire; this module implements it).
//!
//! Owns: SSE sessions (id, secret token, room, token bucket, last activity), their streams and
//! the per-session event buffer, the `GET /api/connect`, `POST /api/signal` and
//! `POST /api/leave` handlers ([`http`]), and the pruning of idle sessions.
//! Never: touches the database (the connect route in [`http`] admits a session through
//! `directory::access::admit` before this module creates it), routes between users by itself
//! (the [`Hub`] does, for both transports), or logs a token.
//!
//! # Admission
//! A room that names a directory server (its normalized name is a server id) obeys that
//! server's access rules, checked by [`http`] through the one admission path; a room that names
//! no directory server is an ad-hoc room (anyone may enter, as in the source service). Either
//! way `auth: required` needs a token. Each session holds a [`ConnectionPermit`] for its whole
//! life, so SSE sessions count against the same per-address and total caps as WebSockets. A
//! session remembers who it was admitted as (its *principal*, the token's identity) so a withdrawal (ban,
//! kick, the server going private or changing its password, deletion) can remove it
//! ([`SseTransport::sessions_in`], [`SseTransport::evict`]).
//!
//! # One session, one hub connection
//! A session is one [`Hub::connect`] connection, identified as its session id and joined to the
//! hub server scope named like the room (the mapping is defined in
//! `signalbox_protocol::sse`). The hub therefore knows SSE agents and WebSocket clients alike:
//! membership changes reach both, and a WebSocket client's `offer` to a session id reaches it.
//! Each session has a *pump* task that drains the hub connection's [`OutboundReceiver`] for the
//! session's whole life (stream or not), turns hub envelopes into SSE events
//! ([`SseView`]: `server_users`/`user_joined`/`user_left` into `roster`, forwarded envelopes into
//! `signal`) and hands them to the session's stream. A room's `roster` is serialized once per
//! membership change ([`Hub::roster_version`]) and that one text is shared by all its sessions.
//!
//! # Delta streams (`roster=delta`)
//! A stream opened with `roster=delta` ([`RosterMode::Delta`]) gets one `roster` when it starts
//! and then `roster_joined`/`roster_left` per change, built from the session's own hub
//! connection, whose frames are ordered and lossless (a hub queue that overflows closes the
//! connection, which ends the session): `server_users` becomes a full `roster`, and each later
//! `user_joined`/`user_left` one change. The full `roster` a delta stream starts from is
//! therefore never read from the hub's current state (which may be ahead of or behind what the
//! pump has handed over) but requested *in band*: attaching a stream to an existing session
//! joins its room again, which only queues a fresh `server_users` behind the frames already
//! queued ([`Hub::join_server`]). Until that `roster` has been handed to the stream, changes
//! are dropped (the roster includes them); a stream that loses a frame is dropped as a whole
//! and never fed again, so whatever a delta stream shows is a prefix of an exact history.
//! Standalone only: in cluster mode a delta stream gets full rosters (docs/sse.md).
//!
//! Signals between two SSE sessions of a room are delivered directly to the target's buffer,
//! untouched (any JSON, wire-exact with the source service); a signal to a WebSocket member is
//! a hub `forward` of the envelope the signal names.
//!
//! # Cluster mode
//! In `cluster.mode: "redis"` the `cluster` submodule registers each session in the cluster's
//! session registry, relays a POST whose sender another node holds to that node, reaches
//! targets on other nodes, takes over a session resumed here from another node, and builds
//! `roster` from the cluster roster (docs/sse.md, "Cluster mode"). Standalone, none of it runs.
//!
//! # Bounds
//! Sessions in total and per room (503), the POST body (413), the per-session token bucket
//! (429), and the events buffered per session: a stream's channel holds at most
//! `streamBufferEvents`; when it is full the stream is *dropped* (the server stops feeding it and
//! ends it at its next poll; the session stays resumable and buffers for its return), and a
//! session without a stream keeps at most `streamBufferEvents` events, dropping newer ones.
//!
//! # Locking
//! One `std::sync::Mutex` over the registry, held for map lookups and non-blocking channel
//! sends only; hub calls made under it take the hub's lock after it (never the other way: the
//! hub never calls back into this module, its frames arrive through the pump tasks).

mod cluster;
pub mod http;
pub use crate::config::sse as settings;
mod stream;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use signalbox_protocol::sse::{
    self, RosterMode, SessionId, SessionToken, SseError, SseEvent, SseJoined, SseRoster,
    SseRosterChange, SseView,
};
use signalbox_protocol::{ServerId, TimestampMs};
use tokio::sync::mpsc;

use crate::config::Variables;
use crate::hub::sse_remote::{SseInbound, SseRemote};
use crate::hub::{ConnectionHandle, Hub, Outbound, OutboundReceiver, Profile};
use crate::transport::connection_gate::ConnectionPermit;
use crate::transport::rate_limit::TokenBucket;
use signalbox_protocol::UserId;

pub use crate::config::SseSettings;
pub use stream::SseStream;

/// The `connectionScope` SSE sessions are identified with in the hub, so WebSocket clients can
/// tell an SSE agent in a roster.
pub const SSE_CONNECTION_SCOPE: &str = "sse";

/// Counters of the SSE transport (for tests and `/metrics`).
#[derive(Debug, Default)]
pub struct SseMetrics {
    /// Sessions created.
    pub sessions_created: AtomicU64,
    /// Sessions resumed with `session_id` and `token`.
    pub sessions_resumed: AtomicU64,
    /// Sessions removed by pruning.
    pub sessions_pruned: AtomicU64,
    /// Streams dropped because their buffer was full (a client not reading).
    pub streams_dropped_slow: AtomicU64,
    /// Events dropped because a session without a stream had a full buffer.
    pub events_dropped: AtomicU64,
    /// `roster` events serialized: at most one per membership change of a room, shared by all
    /// of the room's sessions.
    pub rosters_serialized: AtomicU64,
    /// `roster` events serialized for one delta stream each (its starting point).
    pub delta_rosters_serialized: AtomicU64,
    /// `roster_joined` and `roster_left` events handed to delta streams.
    pub roster_changes_sent: AtomicU64,
}

/// Sizes of the SSE registry at one instant (see [`SseTransport::gauges`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SseGauges {
    /// Sessions held (bounded by `sse.maxSessions`).
    pub sessions: usize,
    /// Sessions with an open stream.
    pub streams: usize,
    /// Rooms with at least one session.
    pub rooms: usize,
    /// Sessions in the fullest room (bounded by `sse.maxSessionsPerRoom`).
    pub largest_room: usize,
    /// Events waiting for the furthest-behind session, in its stream or its buffer (bounded by
    /// `sse.streamBufferEvents`).
    pub largest_buffer: usize,
}

/// The SSE transport: cheap to clone, shared by the HTTP handlers, the pumps and the pruner.
#[derive(Clone)]
pub struct SseTransport {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SseTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseTransport")
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

struct Shared {
    hub: Hub,
    settings: SseSettings,
    variables: Variables,
    registry: Mutex<Registry>,
    metrics: SseMetrics,
    /// The other nodes, in cluster mode (set once, before any session).
    cluster: OnceLock<Arc<dyn SseRemote>>,
}

#[derive(Default)]
struct Registry {
    sessions: HashMap<SessionId, Session>,
    room_sizes: HashMap<String, usize>,
    /// Per room with sessions: its latest `roster` frame and the hub roster version it shows.
    rosters: HashMap<String, RosterFrame>,
    /// Cluster mode: rooms whose roster is being fetched, and whether to fetch it once more.
    refreshing: HashMap<String, bool>,
    next_stream: u64,
    closed: bool,
}

/// One serialized `roster` event and the hub roster version it shows.
#[derive(Clone)]
struct RosterFrame {
    version: u64,
    frame: Bytes,
}

struct StreamSlot {
    id: u64,
    tx: mpsc::Sender<Bytes>,
}

struct Session {
    token: SessionToken,
    room: String,
    /// The identity a token proved when the session was admitted (`None`: anonymous).
    principal: Option<UserId>,
    /// The connection slot; released when the session ends.
    _permit: Option<ConnectionPermit>,
    conn: ConnectionHandle,
    bucket: TokenBucket,
    last_seen: Instant,
    stream: Option<StreamSlot>,
    pending: VecDeque<Bytes>,
    /// The last `roster` handed to the session (shared with its room), for a resumed stream.
    /// Always `None` while the session streams in delta mode.
    roster: Option<RosterFrame>,
    /// Whether the current stream is a delta stream (standalone only; see the module docs).
    delta: bool,
    /// Delta mode: the current stream has been handed the `roster` that later changes apply to.
    delta_synced: bool,
    pump: tokio::task::AbortHandle,
    /// Cluster mode: the session's entry in the cluster registry (removed on drop).
    _registered: Option<cluster::Registered>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

/// How a request reached this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// From a client: a sender held by another node is relayed there.
    Client,
    /// Relayed by another node: the sender must be held here.
    Relay,
}

/// What the sync part of `POST /api/signal` leaves to do.
enum SignalStep {
    /// Delivered to a local SSE session.
    Done,
    /// The sender is no session of this node.
    NotHere,
    /// The sender is local; the target is no local SSE session of the room.
    Onward(crate::hub::ConnKey),
}

/// `POST /api/signal`'s `signal`, as the sender's JSON text.
#[derive(serde::Deserialize)]
struct RawSignal<'a> {
    #[serde(borrow)]
    signal: &'a serde_json::value::RawValue,
}

/// What the connect route established before a new session may be created: who it is (if a
/// token said so) and its connection slot.
#[derive(Debug)]
pub struct Admitted {
    /// The identity a valid token proved, if any.
    pub principal: Option<UserId>,
    /// The slot taken from the shared connection gate.
    pub permit: Option<ConnectionPermit>,
}

/// What another node kept for a session it gave up (cluster mode, see
/// [`SseTransport::take_over`]).
#[derive(Debug, Default)]
pub struct TakenOver {
    /// Who the session was admitted as.
    pub principal: Option<UserId>,
    /// The events buffered for its return.
    pub pending: Vec<Bytes>,
}

/// A parsed `GET /api/connect` query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectParams {
    /// `room`, as given.
    pub room: Option<String>,
    /// `session_id`, as given.
    pub session_id: Option<String>,
    /// `token`, as given: the session's secret on a resume, else possibly an auth token
    /// (redacted in `Debug`).
    pub token: Option<signalbox_protocol::Secret>,
    /// `roster`: how the stream shows membership changes (in cluster mode always full).
    pub roster: RosterMode,
}

fn frame_of(event: &SseEvent) -> Option<Bytes> {
    match event.to_frame() {
        Ok(text) => Some(Bytes::from(text)),
        Err(e) => {
            tracing::error!(error = %e, event = event.name(), "could not serialize an SSE event");
            None
        }
    }
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The normalized room of a request, or 400 when it is missing or too long.
pub(crate) fn room_of(raw: Option<&str>) -> Result<String, SseError> {
    let room = sse::normalize_room(raw.unwrap_or_default());
    if room.is_empty() || room.len() > signalbox_protocol::limits::MAX_ID_BYTES {
        return Err(SseError::MissingParameters);
    }
    Ok(room)
}

fn non_empty(s: &str) -> bool {
    !s.trim().is_empty()
}

impl Session {
    /// Stops feeding the current stream (it ends once its client has read what it was given);
    /// the session stays, resumable.
    fn end_stream(&mut self) {
        if self.stream.take().is_some() {
            self.last_seen = Instant::now();
        }
        self.delta_synced = false;
    }

    /// Hands one event to the stream, or keeps it for the session's return. A full stream
    /// channel drops the stream (a client that stopped reading). A `roster` that finds no
    /// stream is not kept: a resumed stream starts with the current roster anyway.
    fn deliver(&mut self, frame: Bytes, is_roster: bool, capacity: usize, metrics: &SseMetrics) {
        let frame = match &self.stream {
            Some(slot) => match slot.tx.try_send(frame) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(frame)) => {
                    metrics.streams_dropped_slow.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(room = %self.room, "SSE stream not reading; dropped");
                    frame
                }
                Err(mpsc::error::TrySendError::Closed(frame)) => frame,
            },
            None => frame,
        };
        self.end_stream();
        if is_roster {
            return;
        }
        if self.pending.len() < capacity {
            self.pending.push_back(frame);
        } else {
            metrics.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl SseTransport {
    /// The transport over `hub`, configured by `variables` (its `sse` object and ICE keys).
    /// Starts the pruning task; call from within the Tokio runtime.
    pub fn new(hub: Hub, variables: Variables) -> Self {
        let shared = Arc::new(Shared {
            hub,
            settings: variables.sse.clone(),
            variables,
            registry: Mutex::new(Registry::default()),
            metrics: SseMetrics::default(),
            cluster: OnceLock::new(),
        });
        tokio::spawn(prune_loop(Arc::downgrade(&shared)));
        Self { shared }
    }

    /// Cluster mode: the other nodes (set once, before any session; see the `cluster` module).
    pub fn attach_cluster(&self, remote: Arc<dyn SseRemote>) {
        let _ = self.shared.cluster.set(remote);
    }

    /// Cluster mode: what the cluster glue hands other nodes' SSE traffic to.
    pub fn cluster_inbound(&self) -> Arc<dyn SseInbound> {
        Arc::new(cluster::ClusterInbound {
            shared: Arc::downgrade(&self.shared),
        })
    }

    /// Cluster mode: resolves once the sessions created so far are in the cluster registry
    /// (so a `POST` landing on another node finds them); at once standalone.
    pub async fn settled(&self) {
        let Some(remote) = self.shared.cluster.get().cloned() else {
            return;
        };
        if !remote.settled().await {
            tracing::debug!("SSE session not in the cluster registry yet (Redis unreachable)");
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &SseSettings {
        &self.shared.settings
    }

    /// The counters.
    pub fn metrics(&self) -> &SseMetrics {
        &self.shared.metrics
    }

    /// Sessions held now.
    pub fn session_count(&self) -> usize {
        self.shared.lock().sessions.len()
    }

    /// Sizes of the registry now, in one pass under its lock (for gauges).
    pub fn gauges(&self) -> SseGauges {
        let registry = self.shared.lock();
        let buffered = |s: &Session| match &s.stream {
            Some(slot) => slot.tx.max_capacity() - slot.tx.capacity(),
            None => s.pending.len(),
        };
        SseGauges {
            sessions: registry.sessions.len(),
            streams: registry
                .sessions
                .values()
                .filter(|s| s.stream.is_some())
                .count(),
            rooms: registry.room_sizes.len(),
            largest_room: registry.room_sizes.values().copied().max().unwrap_or(0),
            largest_buffer: registry.sessions.values().map(buffered).max().unwrap_or(0),
        }
    }

    /// Sessions with an open stream now.
    pub fn open_streams(&self) -> usize {
        self.shared
            .lock()
            .sessions
            .values()
            .filter(|s| s.stream.is_some())
            .count()
    }

    /// Whether `oder_id` is the hub identity of a live SSE session. The WebSocket transport must
    /// refuse an `identify` with such an id (in `auth: open` a client picks its own `oderId`, and
    /// would otherwise receive the session's signals, since the hub delivers to every connection
    /// of a user).
    pub fn is_session(&self, oder_id: &str) -> bool {
        self.shared
            .lock()
            .sessions
            .contains_key(&SessionId(oder_id.to_owned()))
    }

    /// [`Self::is_session`] over the whole cluster: in cluster mode an id that is no session
    /// here is looked up in the cluster registry (only when it has a session id's shape, a
    /// UUID). While Redis is unreachable only this node's sessions are known.
    pub async fn is_session_anywhere(&self, oder_id: &str) -> bool {
        if self.is_session(oder_id) {
            return true;
        }
        let Some(remote) = self.shared.cluster.get() else {
            return false;
        };
        if uuid::Uuid::parse_str(oder_id).is_err() {
            return false;
        }
        matches!(remote.owner(oder_id).await, Ok(Some(_)))
    }

    /// Whether `params` name a live session of `room` with its right token: such a connect
    /// resumes it and needs no new admission.
    pub fn resumes(&self, params: &ConnectParams, room: &str) -> bool {
        let (Some(id), Some(token)) = (&params.session_id, &params.token) else {
            return false;
        };
        self.shared
            .lock()
            .sessions
            .get(&SessionId(id.clone()))
            .is_some_and(|s| s.room == room && same_secret(&s.token.0, token.expose()))
    }

    /// The sessions of the room that is `server`'s scope, with who each was admitted as.
    pub fn sessions_in(&self, server: &ServerId) -> Vec<(SessionId, Option<UserId>)> {
        self.shared
            .lock()
            .sessions
            .iter()
            .filter(|(_, s)| s.room == server.as_str())
            .map(|(id, s)| (id.clone(), s.principal.clone()))
            .collect()
    }

    /// Ends the sessions `ids` now (access withdrawn): each leaves the room (the others get
    /// `user_left` / a new `roster`) and its stream ends. Returns how many were live.
    pub fn evict(&self, ids: &[SessionId]) -> usize {
        let mut registry = self.shared.lock();
        let removed: Vec<Session> = ids.iter().filter_map(|id| registry.remove(id)).collect();
        drop(registry);
        let count = removed.len();
        drop(removed);
        count
    }

    /// `GET /api/connect`: a new session (only with `admitted`, which the connect route gives
    /// after the access rules and the connection gate let it in), or the session `session_id`
    /// back with its `token`. The stream starts with `joined`, then `roster`.
    pub fn connect(
        &self,
        params: ConnectParams,
        admitted: Option<Admitted>,
    ) -> Result<SseStream, SseError> {
        let room = room_of(params.room.as_deref())?;
        let shared = &self.shared;
        let mut registry = shared.lock();
        if registry.closed {
            return Err(SseError::Full);
        }
        let resume = match (params.session_id, params.token) {
            (Some(id), Some(token)) if non_empty(&id) && non_empty(token.expose()) => {
                Some((SessionId(id), token.into_inner()))
            }
            (Some(_), _) => return Err(SseError::MissingParameters),
            (None, _) => None,
        };
        let known = resume
            .as_ref()
            .is_some_and(|(id, _)| registry.sessions.contains_key(id));
        let id = match resume {
            Some((id, token)) if known => {
                let session = registry.sessions.get(&id).ok_or(SseError::InvalidToken)?;
                if !same_secret(&session.token.0, &token) || session.room != room {
                    return Err(SseError::InvalidToken);
                }
                shared
                    .metrics
                    .sessions_resumed
                    .fetch_add(1, Ordering::Relaxed);
                id
            }
            // An unknown (pruned) session id starts a new session: the client learns its new
            // id from `joined`.
            _ => shared.create(
                &mut registry,
                &room,
                admitted.ok_or(SseError::InvalidToken)?,
                None,
            )?,
        };
        registry.next_stream += 1;
        let stream_id = registry.next_stream;
        let capacity = shared.settings.stream_buffer_events;
        let delta = params.roster == RosterMode::Delta && shared.cluster.get().is_none();
        let session = registry
            .sessions
            .get_mut(&id)
            .ok_or(SseError::InvalidToken)?;
        let was_delta = std::mem::replace(&mut session.delta, delta);
        if delta {
            // The stream's starting roster comes in band through the pump (module docs): a new
            // session's from its join, an existing one's from joining its room again.
            session.roster = None;
            session.delta_synced = false;
            if known {
                let server = sse::room_server_id(&room);
                if let Err(e) = shared.hub.join_server(session.conn.key(), &server) {
                    tracing::error!(error = %e, "could not request a roster for an SSE stream");
                    // A previous delta stream would miss changes from now on: it ends.
                    session.end_stream();
                    return Err(SseError::Full);
                }
            }
        }
        let joined = SseEvent::Joined(SseJoined {
            id: id.clone(),
            token: session.token.clone(),
            ice_servers: crate::ice::ice_servers(
                &shared.variables,
                id.as_str(),
                TimestampMs::now(),
            ),
        });
        // Room for `joined`, `roster` and the whole backlog, so the hand-over cannot fail.
        let (tx, rx) = mpsc::channel(capacity + 2);
        let mut first = Vec::with_capacity(2 + session.pending.len());
        first.extend(frame_of(&joined));
        // A new session's roster comes from the hub (`server_users`) through the pump.
        first.extend(session.roster.as_ref().map(|r| r.frame.clone()));
        first.extend(session.pending.drain(..));
        for frame in first {
            let _ = tx.try_send(frame);
        }
        // Replacing the slot drops the previous stream's sender: that stream ends.
        session.stream = Some(StreamSlot { id: stream_id, tx });
        session.last_seen = Instant::now();
        if was_delta && !delta {
            // Back to full rosters: the session kept none while it streamed deltas.
            shared.show_roster(&mut registry, &id, &sse::room_server_id(&room));
        }
        drop(registry);
        Ok(SseStream::new(
            rx,
            Duration::from_millis(shared.settings.keepalive_interval_ms),
            Arc::downgrade(shared),
            id,
            stream_id,
        ))
    }

    /// Cluster mode: a resume (`session_id` + `token`) of a session another node holds. That
    /// node gives the session up (its stream ends, the room sees it leave) and answers with
    /// what it kept for the session; `Ok(None)` when no other node holds it (standalone, an
    /// unknown id, a dead holder, Redis unreachable: the connect goes on as for a pruned id).
    /// Checked first against the cluster registry: a wrong token or room is 403.
    pub async fn take_over(
        &self,
        params: &ConnectParams,
        room: &str,
    ) -> Result<Option<TakenOver>, SseError> {
        let (Some(remote), Some(id), Some(token)) = (
            self.shared.cluster.get(),
            params.session_id.as_deref(),
            params.token.as_ref(),
        ) else {
            return Ok(None);
        };
        if self.is_session(id) {
            return Ok(None);
        }
        cluster::take_over(remote, id, room, token.expose()).await
    }

    /// Cluster mode: the session `taken` over from another node, recreated here under its id
    /// and token with what it kept (`admitted`: this node's connection slot), and its stream.
    pub fn adopt(
        &self,
        params: ConnectParams,
        admitted: Admitted,
        taken: TakenOver,
    ) -> Result<SseStream, SseError> {
        let room = room_of(params.room.as_deref())?;
        let (Some(id), Some(token)) = (&params.session_id, &params.token) else {
            return Err(SseError::MissingParameters);
        };
        let identity = (
            SessionId(id.clone()),
            SessionToken(token.expose().to_owned()),
        );
        {
            let shared = &self.shared;
            let mut registry = shared.lock();
            if registry.closed {
                return Err(SseError::Full);
            }
            if registry.sessions.contains_key(&identity.0) {
                return Err(SseError::InvalidToken);
            }
            let admitted = Admitted {
                principal: taken.principal,
                permit: admitted.permit,
            };
            let id = shared.create(&mut registry, &room, admitted, Some(identity))?;
            let capacity = shared.settings.stream_buffer_events;
            if let Some(session) = registry.sessions.get_mut(&id) {
                session
                    .pending
                    .extend(taken.pending.into_iter().take(capacity));
            }
        }
        self.connect(params, None)
    }

    /// `POST /api/signal?room=ROOM` with `body` (a `SignalRequest`). In cluster mode a sender
    /// held by another node is relayed there, and a target held by another node is reached
    /// there (see the `cluster` module).
    pub async fn signal(&self, room: Option<&str>, body: &[u8]) -> Result<(), SseError> {
        self.signal_as(room, body, Via::Client).await
    }

    async fn signal_as(&self, room: Option<&str>, body: &[u8], via: Via) -> Result<(), SseError> {
        let room = room_of(room)?;
        let request: sse::SignalRequest =
            serde_json::from_slice(body).map_err(|_| SseError::MissingParameters)?;
        // The same body again, for the signal's own bytes (delivered to SSE targets as sent).
        let raw: RawSignal<'_> =
            serde_json::from_slice(body).map_err(|_| SseError::MissingParameters)?;
        if !non_empty(&request.sender.0)
            || !non_empty(&request.to.0)
            || !non_empty(&request.token.0)
            || request.signal.is_null()
        {
            return Err(SseError::MissingParameters);
        }
        let shared = &self.shared;
        let remote = shared.cluster.get();
        match self.signal_here(&room, &request, raw.signal)? {
            SignalStep::Done => Ok(()),
            SignalStep::NotHere => match (via, remote) {
                (Via::Client, Some(remote)) => {
                    cluster::relay(
                        remote,
                        cluster::Op::Signal,
                        &room,
                        &request.sender,
                        &request.token.0,
                        body,
                    )
                    .await
                }
                _ => Err(SseError::InvalidToken),
            },
            SignalStep::Onward(sender_key) => match remote {
                Some(remote) => {
                    cluster::signal_onward(shared, remote, sender_key, &room, &request, raw.signal)
                        .await
                }
                None => self.signal_standalone(sender_key, &request),
            },
        }
    }

    /// The sender's checks and a delivery to a local SSE session of the room, under the lock.
    fn signal_here(
        &self,
        room: &str,
        request: &sse::SignalRequest,
        raw: &serde_json::value::RawValue,
    ) -> Result<SignalStep, SseError> {
        let shared = &self.shared;
        let mut registry = shared.lock();
        let now = Instant::now();
        let Some(sender) = registry.sessions.get_mut(&request.sender) else {
            return Ok(SignalStep::NotHere);
        };
        if !same_secret(&sender.token.0, &request.token.0) || sender.room != room {
            return Err(SseError::InvalidToken);
        }
        sender.last_seen = now;
        if !sender.bucket.try_take(now) {
            return Err(SseError::RateLimited);
        }
        let sender_key = sender.conn.key();
        let capacity = shared.settings.stream_buffer_events;
        if let Some(target) = registry
            .sessions
            .get_mut(&request.to)
            .filter(|t| t.room == room)
        {
            match SseEvent::raw_signal_frame(&request.sender, raw) {
                Ok(frame) => target.deliver(Bytes::from(frame), false, capacity, &shared.metrics),
                Err(e) => tracing::error!(error = %e, "could not frame a signal"),
            }
            return Ok(SignalStep::Done);
        }
        Ok(SignalStep::Onward(sender_key))
    }

    /// Not an SSE session of this room: a WebSocket member of the room's scope, or no one.
    fn signal_standalone(
        &self,
        sender_key: crate::hub::ConnKey,
        request: &sse::SignalRequest,
    ) -> Result<(), SseError> {
        let shared = &self.shared;
        let sender_user = sse::session_user_id(&request.sender);
        let target_user = sse::session_user_id(&request.to);
        if !shared.hub.shares_server(&sender_user, &target_user) {
            return Err(SseError::TargetNotInRoom);
        }
        let envelope = sse::signal_envelope(&request.to, &request.signal)
            .ok_or(SseError::UnsupportedSignal)?;
        shared
            .hub
            .forward(sender_key, envelope)
            .map(|_| ())
            .map_err(|_| SseError::TargetNotInRoom)
    }

    /// `POST /api/leave?room=ROOM` with `body` (a `LeaveRequest`): removes the session now (in
    /// cluster mode on the node holding it).
    pub async fn leave(&self, room: Option<&str>, body: &[u8]) -> Result<(), SseError> {
        self.leave_as(room, body, Via::Client).await
    }

    async fn leave_as(&self, room: Option<&str>, body: &[u8], via: Via) -> Result<(), SseError> {
        let room = room_of(room)?;
        let request: sse::LeaveRequest =
            serde_json::from_slice(body).map_err(|_| SseError::MissingParameters)?;
        if !non_empty(&request.sender.0) || !non_empty(&request.token.0) {
            return Err(SseError::MissingParameters);
        }
        if self.leave_here(&room, &request)? {
            return Ok(());
        }
        match (via, self.shared.cluster.get()) {
            (Via::Client, Some(remote)) => {
                let (op, token) = (cluster::Op::Leave, &request.token.0);
                cluster::relay(remote, op, &room, &request.sender, token, body).await
            }
            _ => Err(SseError::InvalidToken),
        }
    }

    /// Removes the sender's session when this node holds it (true), after its checks.
    fn leave_here(&self, room: &str, request: &sse::LeaveRequest) -> Result<bool, SseError> {
        let mut registry = self.shared.lock();
        let Some(session) = registry.sessions.get(&request.sender) else {
            return Ok(false);
        };
        if !same_secret(&session.token.0, &request.token.0) || session.room != room {
            return Err(SseError::InvalidToken);
        }
        let removed = registry.remove(&request.sender);
        drop(registry);
        // Dropping the session disconnects it from the hub: `user_left`, then new rosters.
        drop(removed);
        Ok(true)
    }

    /// Removes every session with no stream and no request for `sessionIdleTimeoutMs`; returns
    /// how many. Runs every `pruneScanIntervalMs` on its own.
    pub fn prune(&self) -> usize {
        self.shared.prune(Instant::now())
    }

    /// Ends every stream and session and refuses new ones (503): graceful shutdown.
    pub fn shutdown(&self) {
        let mut registry = self.shared.lock();
        registry.closed = true;
        let sessions: Vec<Session> = registry.sessions.drain().map(|(_, s)| s).collect();
        registry.room_sizes.clear();
        registry.rosters.clear();
        drop(registry);
        drop(sessions);
    }
}

impl Registry {
    fn remove(&mut self, id: &SessionId) -> Option<Session> {
        let session = self.sessions.remove(id)?;
        if let Some(size) = self.room_sizes.get_mut(&session.room) {
            *size = size.saturating_sub(1);
            if *size == 0 {
                self.room_sizes.remove(&session.room);
                self.rosters.remove(&session.room);
            }
        }
        Some(session)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        // Every critical section leaves the maps consistent; keep serving after a panic.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new session in `room`: a hub connection identified as its id and joined to the room's
    /// scope, and its pump. Refused with 503 past the session limits.
    /// `identity`: the id and token of a session taken over from another node (cluster mode),
    /// else a fresh pair.
    fn create(
        self: &Arc<Self>,
        registry: &mut Registry,
        room: &str,
        admitted: Admitted,
        identity: Option<(SessionId, SessionToken)>,
    ) -> Result<SessionId, SseError> {
        let room_size = registry.room_sizes.get(room).copied().unwrap_or(0);
        if registry.sessions.len() >= self.settings.max_sessions
            || room_size >= self.settings.max_sessions_per_room
        {
            return Err(SseError::Full);
        }
        let (id, token) = identity.unwrap_or_else(|| {
            (
                SessionId(uuid::Uuid::new_v4().to_string()),
                SessionToken(uuid::Uuid::new_v4().to_string()),
            )
        });
        let (conn, receiver) = self.hub.connect();
        let profile = Profile {
            display_name: id.0.clone(),
            description: None,
            profile_updated_at: None,
            connection_scope: Some(SSE_CONNECTION_SCOPE.into()),
        };
        let joined = self
            .hub
            .identify(conn.key(), sse::session_user_id(&id), profile)
            .and_then(|_| self.hub.join_server(conn.key(), &sse::room_server_id(room)));
        if let Err(e) = joined {
            tracing::error!(error = %e, "could not register an SSE session with the hub");
            return Err(SseError::Full);
        }
        let pump = tokio::spawn(pump(Arc::downgrade(self), id.clone(), receiver)).abort_handle();
        let registered = self.cluster.get().map(|remote| {
            cluster::Registered::new(remote, &id, room, &token.0, admitted.principal.as_ref())
        });
        let now = Instant::now();
        registry.sessions.insert(
            id.clone(),
            Session {
                token,
                room: room.to_owned(),
                principal: admitted.principal,
                _permit: admitted.permit,
                conn,
                bucket: TokenBucket::new(self.settings.rate_limit(), now),
                last_seen: now,
                stream: None,
                pending: VecDeque::new(),
                roster: None,
                delta: false,
                delta_synced: false,
                pump,
                _registered: registered,
            },
        );
        *registry.room_sizes.entry(room.to_owned()).or_insert(0) += 1;
        self.metrics
            .sessions_created
            .fetch_add(1, Ordering::Relaxed);
        Ok(id)
    }

    /// One hub frame for session `id`, shown on its stream as [`SseView`] says.
    fn on_hub_frame(self: &Arc<Self>, id: &SessionId, text: &str) {
        let view = match SseView::of_frame(text) {
            Ok(view) => view,
            Err(e) => {
                tracing::error!(error = %e, "hub frame is not a server envelope");
                return;
            }
        };
        if view == SseView::Ignored {
            return;
        }
        let capacity = self.settings.stream_buffer_events;
        let mut registry = self.lock();
        let Some(session) = registry.sessions.get_mut(id) else {
            return;
        };
        let in_room = match &view {
            SseView::RosterIs(server, _)
            | SseView::Joined(server, _)
            | SseView::Left(server, _) => server.as_str() == session.room,
            _ => false,
        };
        let delta = in_room && session.delta;
        match view {
            SseView::RosterIs(_, ids) if delta => self.show_delta_start(session, ids),
            SseView::Joined(_, id) if delta => {
                self.show_delta(session, SseEvent::RosterJoined(SseRosterChange { id }));
            }
            SseView::Left(_, id) if delta => {
                self.show_delta(session, SseEvent::RosterLeft(SseRosterChange { id }));
            }
            SseView::RosterIs(server, _)
            | SseView::Joined(server, _)
            | SseView::Left(server, _)
                if in_room =>
            {
                self.show_roster(&mut registry, id, &server);
            }
            SseView::Signal(signal) => {
                if let Some(frame) = frame_of(&SseEvent::Signal(signal)) {
                    session.deliver(frame, false, capacity, &self.metrics);
                }
            }
            _ => {}
        }
    }

    /// A membership event of session `id`'s room arrived: the session is shown the room's
    /// current roster, unless it already has it. The roster is serialized once per hub roster
    /// version and shared by every session of the room, so a join or leave in a room of N
    /// sessions costs N frame clones and one serialization, not N serializations of N ids.
    /// (A burst of changes may therefore reach a session as fewer `roster` events, each the
    /// room as it is now; the last one is always the room's current membership.)
    ///
    /// In cluster mode the roster is the whole cluster's, built by the `cluster` module.
    fn show_roster(self: &Arc<Self>, registry: &mut Registry, id: &SessionId, server: &ServerId) {
        if self.cluster.get().is_some() {
            self.refresh_roster(registry, server.as_str());
            return;
        }
        let Some(version) = self.hub.roster_version(server) else {
            return;
        };
        let Some(session) = registry.sessions.get(id) else {
            return;
        };
        if session
            .roster
            .as_ref()
            .is_some_and(|r| r.version == version)
        {
            return;
        }
        let cached = registry
            .rosters
            .get(&session.room)
            .filter(|r| r.version == version)
            .cloned();
        let roster = match cached {
            Some(roster) => roster,
            None => {
                let Some((version, users)) = self.hub.roster(server) else {
                    return;
                };
                let ids = users.into_iter().map(|u| SessionId(u.0)).collect();
                let Some(frame) = frame_of(&SseEvent::Roster(SseRoster(ids))) else {
                    return;
                };
                self.metrics
                    .rosters_serialized
                    .fetch_add(1, Ordering::Relaxed);
                let roster = RosterFrame { version, frame };
                registry
                    .rosters
                    .insert(session.room.clone(), roster.clone());
                roster
            }
        };
        let capacity = self.settings.stream_buffer_events;
        if let Some(session) = registry.sessions.get_mut(id) {
            session.deliver(roster.frame.clone(), true, capacity, &self.metrics);
            session.roster = Some(roster);
        }
    }

    /// Delta mode: the room's members as the session's hub connection stands now
    /// (`server_users`), the `roster` later changes apply to.
    fn show_delta_start(&self, session: &mut Session, ids: Vec<SessionId>) {
        let Some(frame) = frame_of(&SseEvent::Roster(SseRoster(ids))) else {
            session.end_stream();
            return;
        };
        self.metrics
            .delta_rosters_serialized
            .fetch_add(1, Ordering::Relaxed);
        let capacity = self.settings.stream_buffer_events;
        session.deliver(frame, true, capacity, &self.metrics);
        // A stream dropped by this delivery is never fed again; the next one starts over.
        session.delta_synced = session.stream.is_some();
    }

    /// Delta mode: one membership change, shown only on a stream that has the roster it
    /// applies to (otherwise that stream's coming `roster` includes it).
    fn show_delta(&self, session: &mut Session, change: SseEvent) {
        if !session.delta_synced {
            return;
        }
        let Some(frame) = frame_of(&change) else {
            // Never shown a wrong list: the stream ends and the next one starts over.
            session.end_stream();
            return;
        };
        self.metrics
            .roster_changes_sent
            .fetch_add(1, Ordering::Relaxed);
        let capacity = self.settings.stream_buffer_events;
        // A stream that cannot take it is dropped (and `delta_synced` cleared) by `deliver`.
        session.deliver(frame, true, capacity, &self.metrics);
    }

    /// The hub closed session `id`'s connection (shutdown): the session ends.
    fn on_hub_close(&self, id: &SessionId) {
        let removed = self.lock().remove(id);
        drop(removed);
    }

    /// A stream of session `id` ended (client gone): the session stays, resumable.
    fn stream_ended(&self, id: &SessionId, stream_id: u64) {
        let mut registry = self.lock();
        if let Some(session) = registry.sessions.get_mut(id)
            && session.stream.as_ref().is_some_and(|s| s.id == stream_id)
        {
            session.stream = None;
            session.last_seen = Instant::now();
        }
    }

    fn prune(&self, now: Instant) -> usize {
        let idle = Duration::from_millis(self.settings.session_idle_timeout_ms);
        let mut registry = self.lock();
        let expired: Vec<SessionId> = registry
            .sessions
            .iter()
            .filter(|(_, s)| {
                // A stream whose client is gone but not yet noticed counts as no stream.
                let streaming = s.stream.as_ref().is_some_and(|slot| !slot.tx.is_closed());
                !streaming && now.saturating_duration_since(s.last_seen) >= idle
            })
            .map(|(id, _)| id.clone())
            .collect();
        let removed: Vec<Session> = expired
            .iter()
            .filter_map(|id| registry.remove(id))
            .collect();
        drop(registry);
        let count = removed.len();
        self.metrics
            .sessions_pruned
            .fetch_add(count as u64, Ordering::Relaxed);
        drop(removed);
        count
    }
}

async fn pump(shared: Weak<Shared>, id: SessionId, mut receiver: OutboundReceiver) {
    loop {
        let next = receiver.recv().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match next {
            Outbound::Frame(frame) => shared.on_hub_frame(&id, frame.as_str()),
            Outbound::Close(_) => {
                // Remove from another task: removing aborts this pump.
                tokio::spawn(async move { shared.on_hub_close(&id) });
                return;
            }
        }
    }
}

async fn prune_loop(shared: Weak<Shared>) {
    let period = match shared.upgrade() {
        Some(shared) => Duration::from_millis(shared.settings.prune_scan_interval_ms),
        None => return,
    };
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let pruned = shared.prune(Instant::now());
        if pruned > 0 {
            tracing::debug!(pruned, "pruned idle SSE sessions");
        }
    }
}
