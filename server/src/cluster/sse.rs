//! SSE across nodes, backplane part (docs/design/cluster-plan.md §4): the session registry
//! `sse:{session}` and the messages between the node a request landed on and the node that
//! holds the session's stream.
//!
//! Owns: registering and removing this node's sessions (mirrored for resync), looking up a
//! session's owner, relaying a request or a takeover to it and waiting (bounded, with a
//! timeout) for its answer, answering relays addressed to this node, and sending a raw
//! signal to a session on another node.
//!
//! Never: interprets a request, an answer or a signal (opaque bytes made and read by the SSE
//! transport), checks a token (the owner does, against its own session), stores a token
//! (only its SHA-256, which the transport computes), or waits without a bound.

use std::time::Duration;

use bytes::Bytes;
use redis::Value;

use super::ClusterError;
use super::inner::Inner;
use super::metrics::bump;
use super::node::Backplane;
use super::wire::{Kind, Message};

/// What the registry holds for a session besides its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseSession {
    /// The room the session joined.
    pub room: String,
    /// Hex SHA-256 of the session's token (never the token).
    pub token_sha256: String,
    /// Who the session belongs to.
    pub principal: String,
}

/// A session as the registry lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseOwner {
    /// The node holding the stream.
    pub node: String,
    /// The rest of the entry.
    pub session: SseSession,
}

/// What became of a relayed request or takeover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayOutcome {
    /// The owner answered.
    Answered(Bytes),
    /// No subscriber on the owner's channel (the owner is dead): `403`, as for an unknown
    /// session.
    NoOwner,
    /// No answer within the relay timeout: `503`.
    TimedOut,
    /// Too many relays wait already: `503` at once.
    Busy,
    /// Redis is unreachable: `503`.
    Unavailable,
}

impl Inner {
    pub(super) async fn put_sse(
        &self,
        session: &str,
        entry: &SseSession,
    ) -> Result<(), ClusterError> {
        let mut cmd = self.scripts.sse.call(self.keys.prefix());
        cmd.arg(self.node_id())
            .arg("put")
            .arg(session)
            .arg(&entry.room)
            .arg(&entry.token_sha256)
            .arg(&entry.principal);
        self.publisher.call(cmd).await.map(|_| ())
    }

    pub(super) async fn del_sse(&self, session: &str) -> Result<(), ClusterError> {
        let mut cmd = self.scripts.sse.call(self.keys.prefix());
        cmd.arg(self.node_id()).arg("del").arg(session);
        self.publisher.call(cmd).await.map(|_| ())
    }
}

fn field(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn parse_owner(value: Value) -> Result<Option<SseOwner>, ClusterError> {
    let bad = || ClusterError::Reply("sse entry");
    let pairs: Vec<(String, String)> = match value {
        Value::Map(pairs) => pairs
            .into_iter()
            .map(|(k, v)| Ok((redis::from_redis_value(k)?, redis::from_redis_value(v)?)))
            .collect::<Result<_, redis::ParsingError>>()
            .map_err(|_| bad())?,
        Value::Array(flat) if flat.len() % 2 == 0 => flat
            .chunks(2)
            .map(|kv| {
                Ok((
                    redis::from_redis_value(kv[0].clone())?,
                    redis::from_redis_value(kv[1].clone())?,
                ))
            })
            .collect::<Result<_, redis::ParsingError>>()
            .map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    if pairs.is_empty() {
        return Ok(None);
    }
    Ok(Some(SseOwner {
        node: field(&pairs, "node").ok_or_else(bad)?,
        session: SseSession {
            room: field(&pairs, "room").ok_or_else(bad)?,
            token_sha256: field(&pairs, "token_sha256").ok_or_else(bad)?,
            principal: field(&pairs, "principal").ok_or_else(bad)?,
        },
    }))
}

impl Backplane {
    /// This node holds the stream of `session` (created, or taken over from another node).
    pub async fn register_sse(&self, session: &str, entry: SseSession) -> Result<(), ClusterError> {
        self.inner()
            .lock_mirror()
            .sse
            .insert(session.to_owned(), entry.clone());
        let sent = self.inner().put_sse(session, &entry).await;
        self.inner().resync_unless_sent(sent)
    }

    /// The stream of `session` is gone from this node (the entry stays when another node
    /// took the session over).
    pub async fn remove_sse(&self, session: &str) -> Result<(), ClusterError> {
        self.inner().lock_mirror().sse.remove(session);
        let sent = self.inner().del_sse(session).await;
        self.inner().resync_unless_sent(sent)
    }

    /// [`Self::register_sse`] (`Some`) or [`Self::remove_sse`] (`None`) without waiting:
    /// queued in order with everything else this node sends (a registration followed by a
    /// removal reaches Redis in that order). A queue that refused it leaves the mirror ahead
    /// of Redis, and the next heartbeat resyncs.
    pub fn queue_sse(&self, session: &str, entry: Option<SseSession>) -> Result<(), ClusterError> {
        let inner = self.inner();
        let mut cmd = inner.scripts.sse.call(inner.keys.prefix());
        cmd.arg(self.node_id());
        match entry {
            Some(entry) => {
                cmd.arg("put")
                    .arg(session)
                    .arg(&entry.room)
                    .arg(&entry.token_sha256)
                    .arg(&entry.principal);
                inner.lock_mirror().sse.insert(session.to_owned(), entry);
            }
            None => {
                cmd.arg("del").arg(session);
                inner.lock_mirror().sse.remove(session);
            }
        }
        inner.resync_unless_sent(inner.publisher.enqueue(cmd))
    }

    /// Resolves once everything this node queued before the call reached Redis (one `PING`
    /// through the ordered publisher).
    pub async fn settled(&self) -> Result<(), ClusterError> {
        self.inner()
            .publisher
            .call(redis::cmd("PING"))
            .await
            .map(|_| ())
    }

    /// Whether `user` is in the cluster roster of `server` (`HEXISTS`).
    pub async fn in_roster(&self, server: &str, user: &str) -> Result<bool, ClusterError> {
        let mut cmd = redis::cmd("HEXISTS");
        cmd.arg(self.keys().roster(server)).arg(user);
        match self.inner().publisher.call(cmd).await? {
            Value::Int(n) => Ok(n > 0),
            Value::Boolean(b) => Ok(b),
            _ => Err(ClusterError::Reply("integer")),
        }
    }

    /// Where the stream of `session` lives, when any node holds it.
    pub async fn sse_owner(&self, session: &str) -> Result<Option<SseOwner>, ClusterError> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.keys().sse(session));
        parse_owner(self.inner().publisher.call(cmd).await?)
    }

    async fn ask(&self, node: &str, kind: Kind, session: &str, request: Bytes) -> RelayOutcome {
        let inner = self.inner();
        let Ok(waiting) = inner.relays.open() else {
            bump(&inner.metrics.relays_refused);
            return RelayOutcome::Busy;
        };
        let message = Message {
            kind,
            origin: self.node_id().to_owned(),
            roster_version: 0,
            change_id: waiting.corr,
            server: String::new(),
            user: session.to_owned(),
            payload: request,
        };
        let Ok(encoded) = message.encode() else {
            return RelayOutcome::NoOwner;
        };
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.keys().node_channel(node))
            .arg(encoded.as_ref());
        match inner.publisher.call(cmd).await {
            Ok(Value::Int(0)) => return RelayOutcome::NoOwner,
            Ok(Value::Int(_)) => {}
            Ok(_) | Err(_) => return RelayOutcome::Unavailable,
        }
        let timeout = Duration::from_millis(inner.settings.relay_timeout_ms);
        match waiting.answer(timeout).await {
            Some(result) => RelayOutcome::Answered(result),
            None => {
                bump(&inner.metrics.relay_timeouts);
                RelayOutcome::TimedOut
            }
        }
    }

    /// Relays an SSE request (`POST /api/signal`, `/api/leave`) for `session` to `node`,
    /// which holds its stream, and waits for the answer (bounded, with the relay timeout).
    pub async fn relay(&self, node: &str, session: &str, request: Bytes) -> RelayOutcome {
        self.ask(node, Kind::Relay, session, request).await
    }

    /// Asks `node` to give `session` up (a resume landed here); the answer is the session's
    /// state as the owner's transport encodes it.
    pub async fn takeover(&self, node: &str, session: &str) -> RelayOutcome {
        self.ask(node, Kind::Takeover, session, Bytes::new()).await
    }

    /// Answers relay or takeover `corr` from `reply_to`. Queued: returns at once.
    pub fn answer_relay(
        &self,
        reply_to: &str,
        corr: u64,
        result: Bytes,
    ) -> Result<(), ClusterError> {
        let message = Message {
            kind: Kind::RelayReply,
            origin: self.node_id().to_owned(),
            roster_version: 0,
            change_id: corr,
            server: String::new(),
            user: String::new(),
            payload: result,
        }
        .encode()?;
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.keys().node_channel(reply_to))
            .arg(message.as_ref());
        self.inner().publisher.enqueue(cmd)
    }

    /// Sends `raw` (an SSE event, wire-exact) from session `from` to session `to`, whose
    /// stream `node` holds; false when no node listened (the owner is dead).
    pub async fn raw_signal(
        &self,
        node: &str,
        from: &str,
        to: &str,
        raw: Bytes,
    ) -> Result<bool, ClusterError> {
        let message = Message {
            kind: Kind::RawSignal,
            origin: self.node_id().to_owned(),
            roster_version: 0,
            change_id: 0,
            server: from.to_owned(),
            user: to.to_owned(),
            payload: raw,
        }
        .encode()?;
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.keys().node_channel(node))
            .arg(message.as_ref());
        match self.inner().publisher.call(cmd).await? {
            Value::Int(n) => Ok(n > 0),
            _ => Err(ClusterError::Reply("integer")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn an_entry_parses_from_resp2_and_resp3_and_an_empty_one_is_none() {
        let flat = [
            "node",
            "n1",
            "room",
            "r",
            "token_sha256",
            "ab",
            "principal",
            "p",
        ];
        let owner = parse_owner(Value::Array(flat.iter().map(|s| bulk(s)).collect()))
            .expect("parses")
            .expect("present");
        assert_eq!(owner.node, "n1");
        assert_eq!(owner.session.token_sha256, "ab");
        let map = Value::Map(
            flat.chunks(2)
                .map(|kv| (bulk(kv[0]), bulk(kv[1])))
                .collect(),
        );
        assert_eq!(parse_owner(map).expect("parses"), Some(owner));
        assert_eq!(parse_owner(Value::Map(Vec::new())).expect("parses"), None);
        let partial = Value::Map(vec![(bulk("node"), bulk("n1"))]);
        assert!(parse_owner(partial).is_err());
        assert!(parse_owner(Value::Int(1)).is_err());
    }
}
