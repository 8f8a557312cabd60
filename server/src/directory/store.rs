//! THE directory interface: [`Directory`], one method per transaction the server runs, so a
//! backend (SQLite: [`super::sqlite::SqliteDirectory`]; PostgreSQL) can replace another and one
//! conformance suite (`server/tests/directory_conformance.rs`) proves them equal.
//!
//! Owns the shape of every directory command and query, the [`Cx`] each call carries (the
//! latency label and an optional `Idempotency-Key` claim), what an idempotent write answers
//! ([`Outcome`]) and the facts the gauges read ([`DirectoryStats`]). The access rules both
//! backends apply live in [`super::access`] as pure functions over [`super::access::AccessFacts`].
//!
//! Rules every implementation keeps:
//! - A write is one transaction. With `cx.claim`, the same transaction first looks the claim's
//!   record up (a record made after `claim.since(now)` answers [`Outcome::Replayed`], or
//!   [`DirectoryError::IdempotencyMismatch`] for another request), then runs the command and
//!   stores the answer (`serde_json::to_value(&value)`, then its text, with `cx.status`) with the
//!   change, and calls [`Claim::mark_handled`]. Concurrent writes with one claim make one change.
//! - A refusal (`Err`) changes nothing; an infrastructure failure is [`DirectoryError::Db`],
//!   answered 503 when [`super::DbError::is_unavailable`].
//! - Every call is timed under `cx.op` in [`DbMetrics`].
//!
//! Never decides HTTP statuses, never checks a password (it hands back the hash, see
//! [`Step::CheckPassword`]), never does network I/O other than to its own database.

use async_trait::async_trait;
use signalbox_protocol::http::{
    Ban, CreateServerRequest, Game, Invite, InviteResolution, JoinRequest, JoinRequestStatus,
    MemberRole, Membership, OkResponse, PluginManifest, ServerSummary, UpdateServerRequest,
    UpsertGameRequest, UserProfile,
};
use signalbox_protocol::{AccessDeniedReason, PluginId, ServerId, TimestampMs, UserId};

use super::access::{Access, AdmissionRequest, Decision, Entry, IdentifyDenied, Staff, Step};
use super::db_metrics::DbMetrics;
use super::idempotency::{Claim, IdempotencyRecord, IdempotencyScope, Replayed};
use super::queries::{InviteRecord, ServerRecord};
use super::{DirectoryError, Page};
use crate::config::AuthMode;

/// The result of a directory call.
pub type DirResult<T> = Result<T, DirectoryError>;

/// What every directory call carries.
#[derive(Debug, Clone)]
pub struct Cx {
    /// The operation label of `signalbox_db_query_seconds{operation=…}`: the calling function's
    /// path without the crate name (`routes::servers::create`); see [`op!`](crate::op).
    pub op: &'static str,
    /// The `Idempotency-Key` claim of a write that sent one (ignored by reads).
    pub claim: Option<Claim>,
    /// The HTTP status stored with the claim's answer (201 for a creation, else 200).
    pub status: u16,
}

impl Cx {
    /// A call labelled `op` (a leading `signalbox::` is dropped), no claim.
    pub fn new(op: &'static str) -> Self {
        Self {
            op: op.strip_prefix("signalbox::").unwrap_or(op),
            claim: None,
            status: 200,
        }
    }

    /// The same call, idempotent under `claim` when there is one, its answer stored as `status`.
    pub fn with_claim(mut self, claim: Option<Claim>, status: u16) -> Self {
        self.claim = claim;
        self.status = status;
        self
    }
}

/// `Cx::new` labelled with the calling module's path and `name`:
/// `op!("create")` in `routes::servers` is `Cx::new("routes::servers::create")`.
#[macro_export]
macro_rules! op {
    ($name:literal) => {
        $crate::directory::store::Cx::new(concat!(module_path!(), "::", $name))
    };
}

/// What an idempotent write answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    /// The command ran; this is its value.
    Done(T),
    /// The claim's key had answered this request before: its stored answer, sent again.
    Replayed(Replayed),
}

impl<T> Outcome<T> {
    /// The value of a command that ran, `None` for a replay.
    pub fn done(self) -> Option<T> {
        match self {
            Self::Done(value) => Some(value),
            Self::Replayed(_) => None,
        }
    }
}

/// One page to read: at most `limit` items after `cursor` (exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    /// Items per page (already capped by the caller).
    pub limit: u32,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Who a directory row is written for (a token's facts: the directory does not know tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The id.
    pub id: UserId,
    /// The display name, if known (an existing name is kept when `None`).
    pub display_name: Option<String>,
    /// The bound public key, if any (an existing binding is never replaced).
    pub public_key: Option<String>,
    /// Whether the identity is a guest's.
    pub guest: bool,
}

/// What a valid token proved on a realtime `identify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    /// The identity the token proves.
    pub user_id: UserId,
    /// The key it is bound to, if any.
    pub public_key: Option<String>,
}

/// Facts the gauges read from the directory once per scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectoryStats {
    /// Rows of `idempotency_records`.
    pub idempotency_records: u64,
    /// Servers owned by the owner with the most.
    pub most_servers_per_owner: u64,
    /// Size of the database on disk (SQLite: the file; PostgreSQL: the database).
    pub db_bytes: u64,
    /// Size of the write-ahead log (SQLite's `-wal` file; 0 where there is none of our own).
    pub wal_bytes: u64,
}

/// The message of the owner cap, shared by the backends.
pub fn owner_cap_reached(max: u32) -> DirectoryError {
    DirectoryError::Forbidden(format!(
        "you own {max} servers, the most allowed (security.maxServersPerOwner)"
    ))
}

/// The message of the plugin cap, shared by the backends.
pub fn plugin_cap_reached(max: usize) -> DirectoryError {
    DirectoryError::Conflict(format!("a server registers at most {max} plugins"))
}

/// Every directory command and query (see the module docs for the rules all of them keep).
#[async_trait]
pub trait Directory: Send + Sync + std::fmt::Debug {
    // ---- idempotent writes (one transaction each; `cx.claim` honoured) ----

    /// Creates `id` owned by `owner` (whose row is written: owning makes a guest durable),
    /// unless `owner` already owns `max_per_owner` servers ([`owner_cap_reached`]); counted
    /// inside the transaction so concurrent creations respect the cap exactly. An id in use is
    /// `Conflict`.
    async fn create_server(
        &self,
        cx: &Cx,
        owner: NewUser,
        id: ServerId,
        request: CreateServerRequest,
        max_per_owner: u32,
        now: TimestampMs,
    ) -> DirResult<Outcome<ServerSummary>>;

    /// Changes the given fields. `NotFound("server")`.
    async fn update_server(
        &self,
        cx: &Cx,
        server: &ServerId,
        request: UpdateServerRequest,
    ) -> DirResult<Outcome<ServerSummary>>;

    /// Deletes a server and everything of it (members, bans, invites, join requests, plugins).
    /// `NotFound("server")`.
    async fn delete_server(&self, cx: &Cx, server: &ServerId) -> DirResult<Outcome<OkResponse>>;

    /// Sets (`Some`, an Argon2 hash) or clears the join password. `NotFound("server")`.
    async fn set_password_hash(
        &self,
        cx: &Cx,
        server: &ServerId,
        hash: Option<String>,
    ) -> DirResult<Outcome<OkResponse>>;

    /// Bans `user` (removing their membership). The owner cannot be banned (`Forbidden`).
    async fn ban(
        &self,
        cx: &Cx,
        server: &ServerId,
        user: &UserId,
        reason: Option<String>,
        by: &UserId,
        now: TimestampMs,
    ) -> DirResult<Outcome<Ban>>;

    /// Lifts a ban. `NotFound("ban")`.
    async fn unban(
        &self,
        cx: &Cx,
        server: &ServerId,
        user: &UserId,
    ) -> DirResult<Outcome<OkResponse>>;

    /// Sets a member's role: `Forbidden` to make an owner or change the owner's role,
    /// `NotFound("member")`.
    async fn set_role(
        &self,
        cx: &Cx,
        server: &ServerId,
        user: &UserId,
        role: MemberRole,
    ) -> DirResult<Outcome<Membership>>;

    /// Removes a member (never the owner: `Forbidden`). `NotFound("member")`.
    async fn remove_member(
        &self,
        cx: &Cx,
        server: &ServerId,
        user: &UserId,
    ) -> DirResult<Outcome<OkResponse>>;

    /// Creates or replaces a game.
    async fn upsert_game(
        &self,
        cx: &Cx,
        id: &str,
        request: UpsertGameRequest,
        now: TimestampMs,
    ) -> DirResult<Outcome<Game>>;

    /// Deletes a game. `NotFound("game")`.
    async fn delete_game(&self, cx: &Cx, id: &str) -> DirResult<Outcome<OkResponse>>;

    /// Stores a new invite and answers it (the caller checked the server exists; codes are
    /// random, a collision is a database error).
    async fn create_invite(&self, cx: &Cx, invite: Invite) -> DirResult<Outcome<Invite>>;

    /// Uses an invite: `user` becomes a member (a use is counted only for a new member).
    /// `NotFound("invite")`, `Gone` (expired, revoked, used up), `Forbidden` (banned).
    async fn accept_invite(
        &self,
        cx: &Cx,
        code: &str,
        user: &UserId,
        now: TimestampMs,
    ) -> DirResult<Outcome<Membership>>;

    /// Revokes an invite. `NotFound("invite")`.
    async fn revoke_invite(&self, cx: &Cx, code: &str) -> DirResult<Outcome<OkResponse>>;

    /// Files a join request for a private server: `NotFound("server")`, `Forbidden` (banned),
    /// `Conflict` (the server is public; a pending request of this user exists; a member).
    async fn create_join_request(
        &self,
        cx: &Cx,
        request: JoinRequest,
    ) -> DirResult<Outcome<JoinRequest>>;

    /// Approves (the requester becomes a member), rejects or withdraws a pending request.
    /// `NotFound("join request")`, `Conflict` when already decided.
    async fn decide_join_request(
        &self,
        cx: &Cx,
        id: &str,
        status: JoinRequestStatus,
        by: &UserId,
        now: TimestampMs,
    ) -> DirResult<Outcome<JoinRequest>>;

    /// Registers or replaces a plugin manifest, unless the server already has `max_per_server`
    /// other plugins ([`plugin_cap_reached`]). The caller checked the server exists.
    async fn put_plugin(
        &self,
        cx: &Cx,
        server: &ServerId,
        manifest: PluginManifest,
        max_per_server: usize,
    ) -> DirResult<Outcome<PluginManifest>>;

    /// Removes a plugin manifest. `NotFound("plugin")`.
    async fn delete_plugin(
        &self,
        cx: &Cx,
        server: &ServerId,
        plugin: &PluginId,
    ) -> DirResult<Outcome<OkResponse>>;

    /// Stores `claim`'s answer after the fact (a route that changed nothing in the directory),
    /// replacing an expired record.
    async fn store_idempotency(
        &self,
        cx: &Cx,
        claim: &Claim,
        status: u16,
        response: &str,
    ) -> DirResult<()>;

    // ---- auth and realtime writes (no claim) ----

    /// Stores a login challenge for `public_key`.
    async fn insert_challenge(
        &self,
        cx: &Cx,
        id: &str,
        public_key: &str,
        challenge: &str,
        expires_at: TimestampMs,
    ) -> DirResult<()>;

    /// Takes a challenge (once): its public key and challenge text. `NotFound("challenge")`,
    /// `Gone` when expired.
    async fn consume_challenge(
        &self,
        cx: &Cx,
        id: &str,
        now: TimestampMs,
    ) -> DirResult<(String, String)>;

    /// The user bound to `public_key` (a new binding to `derived` when there is none), its row
    /// written (not a guest).
    async fn bind_key(
        &self,
        cx: &Cx,
        public_key: &str,
        derived: &UserId,
        now: TimestampMs,
    ) -> DirResult<UserId>;

    /// May a realtime connection identify as `claimed` (see `access::identify`)? When it may,
    /// a key-bound identity's row is refreshed with `display_name`, and an existing row of an
    /// ephemeral one is renamed; nothing is written for a refusal.
    async fn identify(
        &self,
        cx: &Cx,
        claimed: &UserId,
        proven: Option<Proven>,
        mode: AuthMode,
        display_name: &str,
        now: TimestampMs,
    ) -> DirResult<Result<(), IdentifyDenied>>;

    /// Records what an admission implies (`access::admit`): re-checks the ban, writes the
    /// applicant's row, uses the invite or adds the public member.
    async fn record_admission(
        &self,
        cx: &Cx,
        request: &AdmissionRequest,
        access: Access,
        now: TimestampMs,
    ) -> DirResult<Decision>;

    /// The server's signing secret, `fresh` stored first when there is none.
    async fn signing_key_or_insert(
        &self,
        cx: &Cx,
        fresh: Vec<u8>,
        now: TimestampMs,
    ) -> DirResult<Vec<u8>>;

    /// Deletes expired challenges and unused identities idle since `idle_before`: how many of
    /// each.
    async fn purge_unused(
        &self,
        cx: &Cx,
        now: TimestampMs,
        idle_before: TimestampMs,
    ) -> DirResult<(usize, usize)>;

    /// Deletes idempotency records made at or before `cutoff`: how many.
    async fn purge_idempotency(&self, cx: &Cx, cutoff: TimestampMs) -> DirResult<usize>;

    // ---- reads ----

    /// The database half of an admission: the decision, or the hash a password must be
    /// checked against.
    async fn admission_step(
        &self,
        cx: &Cx,
        request: &AdmissionRequest,
        now: TimestampMs,
    ) -> DirResult<Step>;

    /// For each `(user, entry)`, whether it would still be admitted to `server` now without
    /// credentials (one read transaction).
    async fn still_admitted(
        &self,
        cx: &Cx,
        server: &ServerId,
        entries: Vec<(UserId, Entry)>,
        now: TimestampMs,
    ) -> DirResult<Vec<Decision>>;

    /// Is `user` owner or moderator of `server`? `NotFound("server")`.
    async fn staff(&self, cx: &Cx, server: &ServerId, user: &UserId) -> DirResult<Option<Staff>>;

    /// `user`'s role in `server`, if a member.
    async fn role(
        &self,
        cx: &Cx,
        server: &ServerId,
        user: &UserId,
    ) -> DirResult<Option<MemberRole>>;

    /// The whole server row (with its password hash), if it exists.
    async fn server(&self, cx: &Cx, server: &ServerId) -> DirResult<Option<ServerRecord>>;

    /// The server as `viewer` may see it (`access::view`).
    async fn server_view(
        &self,
        cx: &Cx,
        server: &ServerId,
        viewer: Option<&UserId>,
    ) -> DirResult<Result<ServerSummary, AccessDeniedReason>>;

    /// Public servers by id; with `q`, those whose name starts with `q` (ASCII
    /// case-insensitive).
    async fn list_public_servers(
        &self,
        cx: &Cx,
        q: Option<&str>,
        page: PageQuery,
    ) -> DirResult<Page<ServerSummary>>;

    /// The members by user id, if `viewer` may view the server.
    async fn list_members(
        &self,
        cx: &Cx,
        server: &ServerId,
        viewer: Option<&UserId>,
        page: PageQuery,
    ) -> DirResult<Result<Page<Membership>, AccessDeniedReason>>;

    /// The bans by user id.
    async fn list_bans(&self, cx: &Cx, server: &ServerId, page: PageQuery) -> DirResult<Page<Ban>>;

    /// An invite row, if it exists.
    async fn invite(&self, cx: &Cx, code: &str) -> DirResult<Option<InviteRecord>>;

    /// A usable invite with its server. `NotFound("invite")`, `Gone`, `NotFound("server")`.
    async fn resolve_invite(
        &self,
        cx: &Cx,
        code: &str,
        now: TimestampMs,
    ) -> DirResult<InviteResolution>;

    /// A join request, if it exists.
    async fn join_request(&self, cx: &Cx, id: &str) -> DirResult<Option<JoinRequest>>;

    /// The pending join requests of a server by id.
    async fn pending_join_requests(
        &self,
        cx: &Cx,
        server: &ServerId,
        page: PageQuery,
    ) -> DirResult<Page<JoinRequest>>;

    /// A user's public profile, if the user has a row.
    async fn user_profile(&self, cx: &Cx, user: &UserId) -> DirResult<Option<UserProfile>>;

    /// The games by id.
    async fn list_games(&self, cx: &Cx, page: PageQuery) -> DirResult<Page<Game>>;

    /// A server's plugin manifests, if `viewer` may view the server.
    async fn list_plugins(
        &self,
        cx: &Cx,
        server: &ServerId,
        viewer: Option<&UserId>,
    ) -> DirResult<Result<Vec<PluginManifest>, AccessDeniedReason>>;

    /// A server's plugin manifests by plugin id.
    async fn plugin_manifests(&self, cx: &Cx, server: &ServerId) -> DirResult<Vec<PluginManifest>>;

    /// One plugin manifest, if registered.
    async fn plugin_manifest(
        &self,
        cx: &Cx,
        server: &ServerId,
        plugin: &PluginId,
    ) -> DirResult<Option<PluginManifest>>;

    /// The record of `scope` made after `since`, if any.
    async fn idempotency_record(
        &self,
        cx: &Cx,
        scope: &IdempotencyScope,
        since: TimestampMs,
    ) -> DirResult<Option<IdempotencyRecord>>;

    /// Whether the database answers (`GET /api/ready`).
    async fn ping(&self) -> bool;

    /// The facts the gauges read (one scrape).
    async fn stats(&self, cx: &Cx) -> DirResult<DirectoryStats>;

    /// The pool's gauges and the per-operation latency histograms.
    fn metrics(&self) -> &DbMetrics;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_labelled_with_its_path_without_the_crate_name() {
        assert_eq!(crate::op!("create").op, "directory::store::tests::create");
        let cx = Cx::new("signalbox::routes::servers::create");
        assert_eq!(cx.op, "routes::servers::create");
        assert!(cx.claim.is_none());
        let claim = Claim::new(
            "u",
            "POST /x".into(),
            "k".into(),
            ("POST", "/x", b""),
            true,
            1,
        );
        let cx = cx.with_claim(Some(claim), 201);
        assert_eq!((cx.status, cx.claim.is_some()), (201, true));
    }
}
