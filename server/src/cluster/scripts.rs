//! The backplane's Lua scripts (`lua/*.lua`), loaded once and called by SHA (`EVALSHA`).
//!
//! Owns: the script texts (each is `lua/common.lua` followed by its own file), the commands
//! that call them, and the parsing of what they return.
//!
//! Never: sends anything itself (the publisher sends every command, in queue order), builds a
//! key name (the scripts do, from the prefix in `ARGV[1]`; see `keys.rs`).

use bytes::Bytes;
use redis::{Cmd, Script, Value};

use super::ClusterError;

const COMMON: &str = include_str!("lua/common.lua");

/// One script: its name (for logs) and its text with the common prelude.
pub struct Lua {
    name: &'static str,
    code: String,
    script: Script,
}

impl Lua {
    fn new(name: &'static str, body: &str) -> Self {
        let code = format!("{COMMON}\n{body}");
        Self {
            name,
            script: Script::new(&code),
            code,
        }
    }

    /// The script's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `EVALSHA sha 0 prefix`; the caller appends the script's own arguments.
    pub fn call(&self, prefix: &str) -> Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.script.get_hash()).arg(0).arg(prefix);
        cmd
    }

    /// `SCRIPT LOAD` of the text (after a Redis restart the cache is empty).
    pub fn load_cmd(&self) -> Cmd {
        let mut cmd = redis::cmd("SCRIPT");
        cmd.arg("LOAD").arg(&self.code);
        cmd
    }
}

/// Every script of the backplane (docs/design/cluster-plan.md §3.3).
pub struct Scripts {
    /// Routing registry: a user's identified connections on a node.
    pub identify: Lua,
    /// Roster join, announced atomically; returns the snapshot.
    pub join: Lua,
    /// Roster leave, announced atomically.
    pub leave: Lua,
    /// Targeted envelope to the nodes of the target; returns receivers or -1.
    pub forward: Lua,
    /// Roster snapshot after purging dead nodes.
    pub snapshot: Lua,
    /// Heartbeat, lease renewal, epoch, dead nodes.
    pub heartbeat: Lua,
    /// A dead node's share of one server.
    pub reap: Lua,
    /// A dead node's routing entries and indexes.
    pub reap_node: Lua,
    /// A member's new roster entry in every server it joined, under one change id.
    pub status: Lua,
    /// Replaces this node's share of a server (resync); returns the snapshot.
    pub rejoin: Lua,
    /// Records or removes this node's SSE session in the registry.
    pub sse: Lua,
}

impl Scripts {
    /// Builds every script (hashing only; nothing is sent).
    pub fn new() -> Self {
        Self {
            identify: Lua::new("identify", include_str!("lua/identify.lua")),
            join: Lua::new("join", include_str!("lua/join.lua")),
            leave: Lua::new("leave", include_str!("lua/leave.lua")),
            forward: Lua::new("forward", include_str!("lua/forward.lua")),
            snapshot: Lua::new("snapshot", include_str!("lua/snapshot.lua")),
            heartbeat: Lua::new("heartbeat", include_str!("lua/heartbeat.lua")),
            reap: Lua::new("reap", include_str!("lua/reap.lua")),
            reap_node: Lua::new("reap_node", include_str!("lua/reap_node.lua")),
            status: Lua::new("status", include_str!("lua/status.lua")),
            rejoin: Lua::new("rejoin", include_str!("lua/rejoin.lua")),
            sse: Lua::new("sse", include_str!("lua/sse.lua")),
        }
    }

    /// Every script, for loading them all.
    pub fn all(&self) -> [&Lua; 11] {
        [
            &self.identify,
            &self.join,
            &self.leave,
            &self.forward,
            &self.snapshot,
            &self.heartbeat,
            &self.reap,
            &self.reap_node,
            &self.status,
            &self.rejoin,
            &self.sse,
        ]
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}

/// A server's roster as Redis holds it: what `server_users` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterSnapshot {
    /// The server.
    pub server: String,
    /// The roster version this snapshot is at.
    pub version: u64,
    /// Members and their roster entries (`UserSummary` JSON), in Redis's order.
    pub members: Vec<(String, Bytes)>,
}

/// What `heartbeat.lua` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beat {
    /// This node had been missing longer than the TTL (or was never seen).
    pub lost: bool,
    /// The epoch Redis holds now.
    pub epoch: String,
    /// Nodes whose last heartbeat is older than the TTL.
    pub dead: Vec<String>,
}

fn unexpected(what: &'static str) -> ClusterError {
    ClusterError::Reply(what)
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

fn array(v: Value) -> Option<Vec<Value>> {
    match v {
        Value::Array(items) | Value::Set(items) => Some(items),
        _ => None,
    }
}

/// Parses `{version, user, entry, ...}` (join.lua, snapshot.lua, rejoin.lua).
pub fn parse_roster(server: &str, value: Value) -> Result<RosterSnapshot, ClusterError> {
    let bad = || unexpected("roster snapshot");
    let mut items = array(value).ok_or_else(bad)?.into_iter();
    let version = items.next().as_ref().and_then(int).ok_or_else(bad)?;
    let flat = items.next().and_then(array).ok_or_else(bad)?;
    if flat.len() % 2 != 0 {
        return Err(bad());
    }
    let mut members = Vec::with_capacity(flat.len() / 2);
    let mut flat = flat.into_iter();
    while let (Some(user), Some(entry)) = (flat.next(), flat.next()) {
        let user = bytes(user)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(bad)?;
        members.push((user, Bytes::from(bytes(entry).ok_or_else(bad)?)));
    }
    Ok(RosterSnapshot {
        server: server.to_owned(),
        version: u64::try_from(version).map_err(|_| bad())?,
        members,
    })
}

/// Parses `{lost, epoch, dead nodes}` (heartbeat.lua).
pub fn parse_beat(value: Value) -> Result<Beat, ClusterError> {
    let bad = || unexpected("heartbeat");
    let mut items = array(value).ok_or_else(bad)?.into_iter();
    let lost = items.next().as_ref().and_then(int).ok_or_else(bad)? == 1;
    let epoch = items
        .next()
        .and_then(bytes)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let dead = items
        .next()
        .and_then(array)
        .ok_or_else(bad)?
        .into_iter()
        .map(|v| bytes(v).and_then(|b| String::from_utf8(b).ok()))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(bad)?;
    Ok(Beat { lost, epoch, dead })
}

/// Parses an integer reply (identify, leave, forward, reap).
pub fn parse_int(value: &Value) -> Result<i64, ClusterError> {
    int(value).ok_or(unexpected("integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_carries_the_prelude_and_a_distinct_hash() {
        let scripts = Scripts::new();
        let mut hashes: Vec<&str> = scripts.all().iter().map(|l| l.script.get_hash()).collect();
        for lua in scripts.all() {
            assert!(lua.code.starts_with(COMMON), "{}", lua.name());
        }
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), scripts.all().len());
    }

    #[test]
    fn a_roster_reply_parses_and_a_malformed_one_is_an_error() {
        let reply = Value::Array(vec![
            Value::Int(3),
            Value::Array(vec![
                Value::BulkString(b"alice".to_vec()),
                Value::BulkString(b"{}".to_vec()),
            ]),
        ]);
        let snap = parse_roster("S", reply).expect("parses");
        assert_eq!(snap.version, 3);
        assert_eq!(
            snap.members,
            vec![("alice".to_owned(), Bytes::from_static(b"{}"))]
        );
        let odd = Value::Array(vec![
            Value::Int(3),
            Value::Array(vec![Value::BulkString(b"alice".to_vec())]),
        ]);
        assert!(parse_roster("S", odd).is_err());
        assert!(parse_roster("S", Value::Nil).is_err());
        assert!(
            parse_roster(
                "S",
                Value::Array(vec![Value::Int(-1), Value::Array(vec![])])
            )
            .is_err()
        );
    }

    #[test]
    fn a_beat_reply_parses() {
        let reply = Value::Array(vec![
            Value::Int(1),
            Value::BulkString(b"e1".to_vec()),
            Value::Array(vec![Value::BulkString(b"n2".to_vec())]),
        ]);
        assert_eq!(
            parse_beat(reply).expect("parses"),
            Beat {
                lost: true,
                epoch: "e1".into(),
                dead: vec!["n2".into()]
            }
        );
        assert!(parse_beat(Value::Int(0)).is_err());
    }
}
