//! The subscriber: what arrives from Redis for this node, decoded and handed to the [`Sink`].
//!
//! Owns: the RESP3 push sender of the subscribing `ConnectionManager` (which resubscribes by
//! itself after a reconnect), the bounded input queue behind it, and the task that decodes
//! each message, filters it (own broadcasts, roster versions: `versions.rs`; the first copy of
//! a status change fans out: `seen.rs`) and delivers it. Devices hints update the node's
//! [`Elsewhere`] set and relay answers go to their waiter ([`Relays`]) without reaching the
//! sink. A `PushKind::Disconnection` marks the node for a resync.
//!
//! Never: awaits Redis or a client inside the task (a gap's snapshot is fetched by a spawned
//! task that feeds its answer back into the same queue), lets Redis's output buffer for this
//! node grow (the push sender only `try_send`s; an overflow drops and marks a resync).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;

use super::elsewhere::Elsewhere;
use super::metrics::{Metrics, bump};
use super::relay::Relays;
use super::scripts::{RosterSnapshot, parse_roster};
use super::seen::{REMEMBERED_CHANGES, Seen};
use super::versions::{Action, Change, RosterEvent, Versions};
use super::wire::{Kind, Message};
use super::{Inbound, Sink};
use super::{keys::Keys, publisher::Publisher, scripts::Scripts};

/// Most roster events held back per server while its snapshot is pending.
pub const PENDING_EVENTS_PER_SERVER: usize = 1_024;

/// What the subscriber task consumes, in order.
pub enum Input {
    /// A push from Redis.
    Push(PushInfo),
    /// The first local join of a server is about to run.
    Expect(String),
    /// Resync: forget the server's version; the next snapshot sets it.
    Restart(String),
    /// A snapshot; `deliver` hands it to the sink first (a refetch or a resync).
    Snapshot(RosterSnapshot, bool),
    /// The last local member of a server left.
    Forget(String),
    /// Roster versions read from Redis by the periodic check (silent loss).
    Check(Vec<(String, u64)>),
}

/// Flags shared with the node.
#[derive(Default)]
pub struct Health {
    /// Set on a disconnection or a dropped push; the heartbeat resyncs and clears it.
    pub needs_resync: AtomicBool,
    /// The node's counters.
    pub metrics: Arc<Metrics>,
}

/// The push sender handed to the `ConnectionManager`: never blocks the connection's reader.
pub fn push_sender(
    tx: mpsc::Sender<Input>,
    health: Arc<Health>,
) -> impl Fn(PushInfo) -> Result<(), ()> + Send + Sync + 'static {
    move |info: PushInfo| {
        if info.kind == PushKind::Disconnection {
            health.needs_resync.store(true, Ordering::Relaxed);
            return Ok(());
        }
        if info.kind != PushKind::Message {
            return Ok(());
        }
        if tx.try_send(Input::Push(info)).is_err() {
            bump(&health.metrics.pushes_dropped);
            health.needs_resync.store(true, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// What the task needs to refetch a snapshot.
pub struct Refetcher {
    /// The node's publisher.
    pub publisher: Publisher,
    /// The scripts.
    pub scripts: Arc<Scripts>,
    /// The names.
    pub keys: Keys,
    /// This node.
    pub node: String,
    /// Where the answer goes.
    pub input: mpsc::Sender<Input>,
    /// Counts refetches.
    pub metrics: Arc<Metrics>,
}

impl Refetcher {
    fn spawn(self: &Arc<Self>, server: String) {
        bump(&self.metrics.roster_refetches);
        let this = self.clone();
        tokio::spawn(async move {
            let mut cmd = this.scripts.snapshot.call(this.keys.prefix());
            cmd.arg(&this.node).arg(&server);
            // Redis gone: nothing to do here; the resync after it returns sends fresh rosters.
            if let Ok(value) = this.publisher.call(cmd).await {
                match parse_roster(&server, value) {
                    Ok(snap) => {
                        let _ = this.input.send(Input::Snapshot(snap, true)).await;
                    }
                    Err(error) => tracing::warn!(%error, "cluster: snapshot reply"),
                }
            }
        });
    }
}

/// The task: decode, filter, deliver.
pub async fn run(
    node: String,
    mut rx: mpsc::Receiver<Input>,
    sink: Arc<dyn Sink>,
    health: Arc<Health>,
    refetcher: Arc<Refetcher>,
    elsewhere: Arc<Mutex<Elsewhere>>,
    relays: Arc<Relays>,
) {
    let mut versions = Versions::new(PENDING_EVENTS_PER_SERVER);
    let mut seen = Seen::new(REMEMBERED_CHANGES);
    while let Some(input) = rx.recv().await {
        let actions = match input {
            Input::Push(info) => match decode(info) {
                Some(message) if message.kind == Kind::Devices => {
                    elsewhere.lock().unwrap_or_else(|p| p.into_inner()).hint(
                        &message.user,
                        &message.origin,
                        message.payload.as_ref() == b"1",
                    );
                    Vec::new()
                }
                Some(message) if message.kind == Kind::RelayReply => {
                    // Late or unknown answers (the waiter gave up) are dropped.
                    relays.complete(message.change_id, message.payload);
                    Vec::new()
                }
                Some(message) => handle(&node, message, &mut versions, sink.as_ref()),
                None => {
                    bump(&health.metrics.undecodable);
                    Vec::new()
                }
            },
            Input::Expect(server) => {
                versions.expect_snapshot(&server);
                Vec::new()
            }
            Input::Restart(server) => {
                versions.restart(&server);
                Vec::new()
            }
            Input::Snapshot(snap, deliver) => {
                let (server, version) = (snap.server.clone(), snap.version);
                if deliver && versions.tracks(&server) {
                    sink.deliver(Inbound::Snapshot(snap));
                }
                versions.on_snapshot(&server, version)
            }
            Input::Forget(server) => {
                versions.forget(&server);
                Vec::new()
            }
            Input::Check(read) => read
                .into_iter()
                .flat_map(|(server, version)| versions.on_check(&server, version))
                .collect(),
        };
        for action in actions {
            match action {
                Action::Apply(event) => sink.deliver(Inbound::Roster(first_copy(event, &mut seen))),
                Action::Refetch(server) => refetcher.spawn(server),
            }
        }
    }
}

/// Marks a status event as the first copy of its change id, or not.
fn first_copy(mut event: RosterEvent, seen: &mut Seen) -> RosterEvent {
    if let Change::Status {
        change_id, fan_out, ..
    } = &mut event.change
    {
        *fan_out = seen.first(*change_id);
    }
    event
}

/// `message` pushes carry `[channel, payload]`.
fn decode(info: PushInfo) -> Option<Message> {
    let payload = info.data.into_iter().nth(1)?;
    let bytes = match payload {
        Value::BulkString(b) => Bytes::from(b),
        _ => return None,
    };
    Message::decode(bytes).ok()
}

fn handle(node: &str, message: Message, versions: &mut Versions, sink: &dyn Sink) -> Vec<Action> {
    match message.kind {
        // Already delivered locally by the node that published it.
        Kind::Broadcast if message.origin == node => Vec::new(),
        Kind::Broadcast => {
            sink.deliver(Inbound::Broadcast {
                server: message.server,
                sender: message.user,
                frame: message.payload,
            });
            Vec::new()
        }
        Kind::Forward => {
            sink.deliver(Inbound::Forward {
                target: message.user,
                frame: message.payload,
            });
            Vec::new()
        }
        Kind::UserJoined => versions.on_event(RosterEvent {
            server: message.server,
            version: message.roster_version,
            change: Change::Joined {
                user: message.user,
                entry: message.payload,
            },
        }),
        Kind::UserLeft => versions.on_event(RosterEvent {
            server: message.server,
            version: message.roster_version,
            change: Change::Left {
                user: message.user,
                entry: message.payload,
            },
        }),
        // Handled before (they change no roster and reach no sink).
        Kind::Devices | Kind::RelayReply => Vec::new(),
        Kind::Relay => {
            sink.deliver(Inbound::Relay {
                corr: message.change_id,
                reply_to: message.origin,
                session: message.user,
                request: message.payload,
            });
            Vec::new()
        }
        Kind::Takeover => {
            sink.deliver(Inbound::Takeover {
                corr: message.change_id,
                reply_to: message.origin,
                session: message.user,
            });
            Vec::new()
        }
        Kind::RawSignal => {
            sink.deliver(Inbound::RawSignal {
                from: message.server,
                to: message.user,
                raw: message.payload,
            });
            Vec::new()
        }
        // Applied where it was made, before it was published.
        Kind::Withdraw if message.origin == node => Vec::new(),
        Kind::Withdraw => {
            sink.deliver(Inbound::Withdraw {
                server: message.server,
                user: message.user,
                order: message.payload,
            });
            Vec::new()
        }
        Kind::Status => versions.on_event(RosterEvent {
            server: message.server,
            version: message.roster_version,
            change: Change::Status {
                user: message.user,
                entry: message.payload,
                change_id: message.change_id,
                fan_out: false,
                origin: message.origin,
            },
        }),
    }
}
