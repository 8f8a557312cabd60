//! [`SqliteDirectory`]: the [`Directory`] on the embedded SQLite file, the default backend.
//!
//! Owns the mapping of each trait method onto one [`Db`] call: writes in one `BEGIN IMMEDIATE`
//! transaction ([`Db::write_as`], which serializes writers, so an idempotency lookup, the
//! command and the record's store happen with no other writer in between), reads on a pooled
//! connection ([`Db::call_as`]), each timed under the call's `cx.op`. Calls the typed functions
//! of [`commands`], [`queries`], [`credentials`], [`plugin_manifests`] and the rules of
//! [`access`]; holds no SQL of its own beyond the two counts of [`Directory::stats`].
//!
//! Never decides HTTP statuses and never checks a password.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use rusqlite::Connection;
use serde::Serialize;
use signalbox_protocol::http::{
    Ban, CreateServerRequest, Game, Invite, InviteResolution, JoinRequest, JoinRequestStatus,
    MemberRole, Membership, OkResponse, PluginManifest, ServerSummary, ServerVisibility,
    UpdateServerRequest, UpsertGameRequest, UserProfile,
};
use signalbox_protocol::{AccessDeniedReason, PluginId, ServerId, TimestampMs, UserId};

use super::access::{self, Access, AdmissionRequest, Decision, Entry, IdentifyDenied, Staff, Step};
use super::db_metrics::DbMetrics;
use super::idempotency::{Claim, IdempotencyRecord, IdempotencyScope, OK, answer_text};
use super::queries::{InviteRecord, ServerRecord};
use super::store::{
    Cx, DirResult, Directory, DirectoryStats, NewUser, Outcome, PageQuery, Proven,
    owner_cap_reached, plugin_cap_reached,
};
use super::{Db, DbError, DirectoryError, Page, commands, credentials, plugin_manifests, queries};
use crate::config::AuthMode;
use crate::config::database::DatabaseSettings;

/// The directory on one SQLite file (see the module docs).
#[derive(Debug, Clone)]
pub struct SqliteDirectory {
    db: Db,
    path: PathBuf,
}

impl SqliteDirectory {
    /// The directory over an open pool of the file at `path`.
    pub fn new(db: Db, path: PathBuf) -> Self {
        Self { db, path }
    }

    /// Opens (creating and migrating) the file at `path` with `size` pooled connections. Blocks:
    /// call it off the async executor.
    pub fn open(path: &Path, size: usize, settings: &DatabaseSettings) -> Result<Self, DbError> {
        Ok(Self::new(Db::open(path, size, settings)?, path.to_owned()))
    }

    /// The pool underneath (the `signalbox migrate` command and tests).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// One idempotent write: the claim's record looked up, `f` run, the answer stored, all in
    /// one `BEGIN IMMEDIATE` transaction.
    async fn idempotent<T, F>(&self, cx: &Cx, f: F) -> DirResult<Outcome<T>>
    where
        T: Serialize + Send + 'static,
        F: FnOnce(&Connection) -> DirResult<T> + Send + 'static,
    {
        let (claim, status) = (cx.claim.clone(), cx.status);
        self.db
            .write_as(cx.op, move |c| {
                if let Some(claim) = &claim
                    && let Some(replayed) = lookup(c, claim)?
                {
                    return Ok(Outcome::Replayed(replayed));
                }
                let value = f(c)?;
                if let Some(claim) = &claim {
                    store(c, claim, status, &answer_text(&value)?)?;
                }
                Ok(Outcome::Done(value))
            })
            .await
    }

    async fn read<T, F>(&self, cx: &Cx, f: F) -> DirResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DirResult<T> + Send + 'static,
    {
        self.db.call_as(cx.op, move |c| f(c)).await
    }

    async fn write<T, F>(&self, cx: &Cx, f: F) -> DirResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DirResult<T> + Send + 'static,
    {
        self.db.write_as(cx.op, f).await
    }
}

/// Inside a write's transaction: the stored answer for `claim`, if there is one still valid
/// (`IdempotencyMismatch` for another request). Marks the claim handled.
pub fn lookup(conn: &Connection, claim: &Claim) -> DirResult<Option<super::idempotency::Replayed>> {
    claim.mark_handled();
    let since = claim.since(TimestampMs::now());
    credentials::idempotency_record(conn, &claim.scope, since)?
        .map(|previous| claim.replay(&previous))
        .transpose()
}

/// Inside a write's transaction: stores `status` and `response` as `claim`'s answer. Marks the
/// claim handled.
pub fn store(conn: &Connection, claim: &Claim, status: u16, response: &str) -> DirResult<()> {
    claim.mark_handled();
    let record = claim.record(status, response);
    credentials::store_idempotency_record(conn, &claim.scope, &record, TimestampMs::now())
}

#[async_trait]
impl Directory for SqliteDirectory {
    async fn create_server(
        &self,
        cx: &Cx,
        owner: NewUser,
        id: ServerId,
        request: CreateServerRequest,
        max_per_owner: u32,
        now: TimestampMs,
    ) -> DirResult<Outcome<ServerSummary>> {
        self.idempotent(cx, move |c| {
            // Inside the IMMEDIATE transaction: concurrent creations by one owner are counted
            // one after another, so the cap holds exactly.
            if queries::servers_owned_by(c, &owner.id)? >= max_per_owner {
                return Err(owner_cap_reached(max_per_owner));
            }
            // Owning something makes an ephemeral (guest) identity durable: its row now.
            commands::upsert_user(
                c,
                &owner.id,
                owner.display_name.as_deref(),
                owner.public_key.as_deref(),
                owner.guest,
                now,
            )?;
            commands::create_server(c, id, &request, &owner.id, now)
        })
        .await
    }

    async fn update_server(
        &self,
        cx: &Cx,
        server: &ServerId,
        request: UpdateServerRequest,
    ) -> DirResult<Outcome<ServerSummary>> {
        let server = server.clone();
        self.idempotent(cx, move |c| commands::update_server(c, &server, &request))
            .await
    }

    async fn delete_server(&self, cx: &Cx, server: &ServerId) -> DirResult<Outcome<OkResponse>> {
        let server = server.clone();
        self.idempotent(cx, move |c| {
            commands::delete_server(c, &server).map(|()| OK)
        })
        .await
    }

    async fn set_password_hash(
        &self,
        cx: &Cx,
        server: &ServerId,
        hash: Option<String>,
    ) -> DirResult<Outcome<OkResponse>> {
        let server = server.clone();
        self.idempotent(cx, move |c| {
            commands::set_password_hash(c, &server, hash.as_deref()).map(|()| OK)
        })
        .await
    }

    async fn ban(
        &self,
        cx: &Cx,
        server: &ServerId,
        user: &UserId,
        reason: Option<String>,
        by: &UserId,
        now: TimestampMs,
    ) -> DirResult<Outcome<Ban>> {
        let (server, user, by) = (server.clone(), user.clone(), by.clone());
        self.idempotent(cx, move |c| {
            commands::ban(c, &server, &user, reason.as_deref(), &by, now)
        })
        .await
    }

    async fn unban(
        &self,
        cx: &Cx,
        server: &ServerId,
        user: &UserId,
    ) -> DirResult<Outcome<OkResponse>> {
        let (server, user) = (server.clone(), user.clone());
        self.idempotent(cx, move |c| commands::unban(c, &server, &user).map(|()| OK))
            .await
    }

    async fn set_role(
        &self,
        cx: &Cx,
        server: &ServerId,
        user: &UserId,
        role: MemberRole,
    ) -> DirResult<Outcome<Membership>> {
        let (server, user) = (server.clone(), user.clone());
        self.idempotent(cx, move |c| commands::set_role(c, &server, &user, role))
            .await
    }

    async fn remove_member(
        &self,
        cx: &Cx,
        server: &ServerId,
        user: &UserId,
    ) -> DirResult<Outcome<OkResponse>> {
        let (server, user) = (server.clone(), user.clone());
        self.idempotent(cx, move |c| {
            commands::remove_member(c, &server, &user).map(|()| OK)
        })
        .await
    }

    async fn upsert_game(
        &self,
        cx: &Cx,
        id: &str,
        request: UpsertGameRequest,
        now: TimestampMs,
    ) -> DirResult<Outcome<Game>> {
        let id = id.to_owned();
        self.idempotent(cx, move |c| commands::upsert_game(c, &id, &request, now))
            .await
    }

    async fn delete_game(&self, cx: &Cx, id: &str) -> DirResult<Outcome<OkResponse>> {
        let id = id.to_owned();
        self.idempotent(cx, move |c| commands::delete_game(c, &id).map(|()| OK))
            .await
    }

    async fn create_invite(&self, cx: &Cx, invite: Invite) -> DirResult<Outcome<Invite>> {
        self.idempotent(cx, move |c| {
            commands::create_invite(c, &invite).map(|()| invite)
        })
        .await
    }

    async fn accept_invite(
        &self,
        cx: &Cx,
        code: &str,
        user: &UserId,
        now: TimestampMs,
    ) -> DirResult<Outcome<Membership>> {
        let (code, user) = (code.to_owned(), user.clone());
        self.idempotent(cx, move |c| commands::accept_invite(c, &code, &user, now))
            .await
    }

    async fn revoke_invite(&self, cx: &Cx, code: &str) -> DirResult<Outcome<OkResponse>> {
        let code = code.to_owned();
        self.idempotent(cx, move |c| commands::revoke_invite(c, &code).map(|()| OK))
            .await
    }

    async fn create_join_request(
        &self,
        cx: &Cx,
        request: JoinRequest,
    ) -> DirResult<Outcome<JoinRequest>> {
        self.idempotent(cx, move |c| {
            let server = &request.server_id;
            let record = queries::server(c, server)?.ok_or(DirectoryError::NotFound("server"))?;
            if queries::is_banned(c, server, &request.user_id)? {
                return Err(DirectoryError::Forbidden("banned from this server".into()));
            }
            if record.summary.visibility == ServerVisibility::Public {
                return Err(DirectoryError::Conflict(
                    "the server is public: join it directly".into(),
                ));
            }
            commands::create_join_request(c, &request)?;
            Ok(request)
        })
        .await
    }

    async fn decide_join_request(
        &self,
        cx: &Cx,
        id: &str,
        status: JoinRequestStatus,
        by: &UserId,
        now: TimestampMs,
    ) -> DirResult<Outcome<JoinRequest>> {
        let (id, by) = (id.to_owned(), by.clone());
        self.idempotent(cx, move |c| {
            commands::decide_join_request(c, &id, status, &by, now)
        })
        .await
    }

    async fn put_plugin(
        &self,
        cx: &Cx,
        server: &ServerId,
        manifest: PluginManifest,
        max_per_server: usize,
    ) -> DirResult<Outcome<PluginManifest>> {
        let server = server.clone();
        self.idempotent(cx, move |c| {
            let others = plugin_manifests::list(c, &server)?
                .into_iter()
                .filter(|m| m.plugin_id != manifest.plugin_id)
                .count();
            if others >= max_per_server {
                return Err(plugin_cap_reached(max_per_server));
            }
            plugin_manifests::upsert(c, &server, &manifest)?;
            Ok(manifest)
        })
        .await
    }

    async fn delete_plugin(
        &self,
        cx: &Cx,
        server: &ServerId,
        plugin: &PluginId,
    ) -> DirResult<Outcome<OkResponse>> {
        let (server, plugin) = (server.clone(), plugin.clone());
        self.idempotent(cx, move |c| {
            plugin_manifests::delete(c, &server, &plugin).map(|()| OK)
        })
        .await
    }

    async fn store_idempotency(
        &self,
        cx: &Cx,
        claim: &Claim,
        status: u16,
        response: &str,
    ) -> DirResult<()> {
        let (claim, response) = (claim.clone(), response.to_owned());
        self.write(cx, move |c| store(c, &claim, status, &response))
            .await
    }

    async fn insert_challenge(
        &self,
        cx: &Cx,
        id: &str,
        public_key: &str,
        challenge: &str,
        expires_at: TimestampMs,
    ) -> DirResult<()> {
        let (id, key, challenge) = (id.to_owned(), public_key.to_owned(), challenge.to_owned());
        self.write(cx, move |c| {
            credentials::insert_challenge(c, &id, &key, &challenge, expires_at)
        })
        .await
    }

    async fn consume_challenge(
        &self,
        cx: &Cx,
        id: &str,
        now: TimestampMs,
    ) -> DirResult<(String, String)> {
        let id = id.to_owned();
        self.write(cx, move |c| credentials::consume_challenge(c, &id, now))
            .await
    }

    async fn bind_key(
        &self,
        cx: &Cx,
        public_key: &str,
        derived: &UserId,
        now: TimestampMs,
    ) -> DirResult<UserId> {
        let (key, derived) = (public_key.to_owned(), derived.clone());
        self.write(cx, move |c| {
            let user = queries::user_by_public_key(c, &key)?.unwrap_or(derived);
            commands::upsert_user(c, &user, None, Some(&key), false, now)?;
            Ok(user)
        })
        .await
    }

    async fn identify(
        &self,
        cx: &Cx,
        claimed: &UserId,
        proven: Option<Proven>,
        mode: AuthMode,
        display_name: &str,
        now: TimestampMs,
    ) -> DirResult<Result<(), IdentifyDenied>> {
        let (claimed, name) = (claimed.clone(), display_name.to_owned());
        self.write(cx, move |c| {
            let decision =
                access::identify_rule(&claimed, proven.as_ref().map(|p| &p.user_id), mode, || {
                    Ok(queries::bound_public_key(c, &claimed)?.is_some())
                })?;
            let key = proven.as_ref().and_then(|p| p.public_key.as_deref());
            match (&decision, key) {
                // A key-bound identity is durable: its row exists since `verify`.
                (Ok(()), Some(key)) => {
                    commands::upsert_user(c, &claimed, Some(&name), Some(key), false, now)?;
                }
                // An ephemeral one (guest, token-less) gets a row only when it owns or joins
                // something; a row it already has keeps its profile fresh.
                (Ok(()), None) => commands::rename_known_user(c, &claimed, &name)?,
                (Err(_), _) => {}
            }
            Ok(decision)
        })
        .await
    }

    async fn record_admission(
        &self,
        cx: &Cx,
        request: &AdmissionRequest,
        access: Access,
        now: TimestampMs,
    ) -> DirResult<Decision> {
        let request = request.clone();
        self.write(cx, move |c| {
            access::record_admission(c, &request, access, now)
        })
        .await
    }

    async fn signing_key_or_insert(
        &self,
        cx: &Cx,
        fresh: Vec<u8>,
        now: TimestampMs,
    ) -> DirResult<Vec<u8>> {
        self.write(cx, move |c| {
            credentials::signing_key_or_insert(c, &fresh, now)
        })
        .await
    }

    async fn purge_unused(
        &self,
        cx: &Cx,
        now: TimestampMs,
        idle_before: TimestampMs,
    ) -> DirResult<(usize, usize)> {
        self.write(cx, move |c| commands::purge_unused(c, now, idle_before))
            .await
    }

    async fn purge_idempotency(&self, cx: &Cx, cutoff: TimestampMs) -> DirResult<usize> {
        self.write(cx, move |c| {
            credentials::purge_idempotency_records(c, cutoff)
        })
        .await
    }

    async fn admission_step(
        &self,
        cx: &Cx,
        request: &AdmissionRequest,
        now: TimestampMs,
    ) -> DirResult<Step> {
        let request = request.clone();
        self.read(cx, move |c| {
            access::decide_without_password(c, &request, now)
        })
        .await
    }

    async fn still_admitted(
        &self,
        cx: &Cx,
        server: &ServerId,
        entries: Vec<(UserId, Entry)>,
        _now: TimestampMs,
    ) -> DirResult<Vec<Decision>> {
        let server = server.clone();
        self.read(cx, move |c| {
            entries
                .iter()
                .map(|(user, entry)| access::still_admitted(c, &server, user, *entry))
                .collect()
        })
        .await
    }

    async fn staff(&self, cx: &Cx, server: &ServerId, user: &UserId) -> DirResult<Option<Staff>> {
        let (server, user) = (server.clone(), user.clone());
        self.read(cx, move |c| access::staff(c, &server, &user))
            .await
    }

    async fn role(
        &self,
        cx: &Cx,
        server: &ServerId,
        user: &UserId,
    ) -> DirResult<Option<MemberRole>> {
        let (server, user) = (server.clone(), user.clone());
        self.read(cx, move |c| Ok(queries::role(c, &server, &user)?))
            .await
    }

    async fn server(&self, cx: &Cx, server: &ServerId) -> DirResult<Option<ServerRecord>> {
        let server = server.clone();
        self.read(cx, move |c| Ok(queries::server(c, &server)?))
            .await
    }

    async fn server_view(
        &self,
        cx: &Cx,
        server: &ServerId,
        viewer: Option<&UserId>,
    ) -> DirResult<Result<ServerSummary, AccessDeniedReason>> {
        let (server, viewer) = (server.clone(), viewer.cloned());
        self.read(cx, move |c| {
            let facts = access::facts(c, &server, viewer.as_ref(), None)?;
            Ok(match (access::view_rule(&facts), facts.server) {
                (Ok(_), Some(record)) => Ok(record.summary),
                (Ok(_), None) => Err(AccessDeniedReason::NotFound),
                (Err(reason), _) => Err(reason),
            })
        })
        .await
    }

    async fn list_public_servers(
        &self,
        cx: &Cx,
        q: Option<&str>,
        page: PageQuery,
    ) -> DirResult<Page<ServerSummary>> {
        let q = q.map(str::to_owned);
        self.read(cx, move |c| {
            Ok(queries::list_public_servers(
                c,
                q.as_deref(),
                page.limit,
                page.cursor.as_deref(),
            )?)
        })
        .await
    }

    async fn list_members(
        &self,
        cx: &Cx,
        server: &ServerId,
        viewer: Option<&UserId>,
        page: PageQuery,
    ) -> DirResult<Result<Page<Membership>, AccessDeniedReason>> {
        let (server, viewer) = (server.clone(), viewer.cloned());
        self.read(cx, move |c| {
            Ok(match access::view(c, &server, viewer.as_ref())? {
                Ok(_) => Ok(queries::list_members(
                    c,
                    &server,
                    page.limit,
                    page.cursor.as_deref(),
                )?),
                Err(reason) => Err(reason),
            })
        })
        .await
    }

    async fn list_bans(&self, cx: &Cx, server: &ServerId, page: PageQuery) -> DirResult<Page<Ban>> {
        let server = server.clone();
        self.read(cx, move |c| {
            Ok(queries::list_bans(
                c,
                &server,
                page.limit,
                page.cursor.as_deref(),
            )?)
        })
        .await
    }

    async fn invite(&self, cx: &Cx, code: &str) -> DirResult<Option<InviteRecord>> {
        let code = code.to_owned();
        self.read(cx, move |c| Ok(queries::invite(c, &code)?)).await
    }

    async fn resolve_invite(
        &self,
        cx: &Cx,
        code: &str,
        now: TimestampMs,
    ) -> DirResult<InviteResolution> {
        let code = code.to_owned();
        self.read(cx, move |c| {
            let record = queries::invite(c, &code)?.ok_or(DirectoryError::NotFound("invite"))?;
            if let Some(reason) = record.unusable_reason(now) {
                return Err(DirectoryError::Gone(reason.into()));
            }
            let server = queries::server(c, &record.invite.server_id)?
                .ok_or(DirectoryError::NotFound("server"))?;
            Ok(InviteResolution {
                code,
                server: server.summary,
                expires_at: record.invite.expires_at,
            })
        })
        .await
    }

    async fn join_request(&self, cx: &Cx, id: &str) -> DirResult<Option<JoinRequest>> {
        let id = id.to_owned();
        self.read(cx, move |c| Ok(queries::join_request(c, &id)?))
            .await
    }

    async fn pending_join_requests(
        &self,
        cx: &Cx,
        server: &ServerId,
        page: PageQuery,
    ) -> DirResult<Page<JoinRequest>> {
        let server = server.clone();
        self.read(cx, move |c| {
            Ok(queries::pending_join_requests(
                c,
                &server,
                page.limit,
                page.cursor.as_deref(),
            )?)
        })
        .await
    }

    async fn user_profile(&self, cx: &Cx, user: &UserId) -> DirResult<Option<UserProfile>> {
        let user = user.clone();
        self.read(cx, move |c| Ok(queries::user_profile(c, &user)?))
            .await
    }

    async fn list_games(&self, cx: &Cx, page: PageQuery) -> DirResult<Page<Game>> {
        self.read(cx, move |c| {
            Ok(queries::list_games(c, page.limit, page.cursor.as_deref())?)
        })
        .await
    }

    async fn list_plugins(
        &self,
        cx: &Cx,
        server: &ServerId,
        viewer: Option<&UserId>,
    ) -> DirResult<Result<Vec<PluginManifest>, AccessDeniedReason>> {
        let (server, viewer) = (server.clone(), viewer.cloned());
        self.read(cx, move |c| {
            Ok(match access::view(c, &server, viewer.as_ref())? {
                Ok(_) => Ok(plugin_manifests::list(c, &server)?),
                Err(reason) => Err(reason),
            })
        })
        .await
    }

    async fn plugin_manifests(&self, cx: &Cx, server: &ServerId) -> DirResult<Vec<PluginManifest>> {
        let server = server.clone();
        self.read(cx, move |c| plugin_manifests::list(c, &server))
            .await
    }

    async fn plugin_manifest(
        &self,
        cx: &Cx,
        server: &ServerId,
        plugin: &PluginId,
    ) -> DirResult<Option<PluginManifest>> {
        let (server, plugin) = (server.clone(), plugin.clone());
        self.read(cx, move |c| plugin_manifests::get(c, &server, &plugin))
            .await
    }

    async fn idempotency_record(
        &self,
        cx: &Cx,
        scope: &IdempotencyScope,
        since: TimestampMs,
    ) -> DirResult<Option<IdempotencyRecord>> {
        let scope = scope.clone();
        self.read(cx, move |c| {
            credentials::idempotency_record(c, &scope, since)
        })
        .await
    }

    async fn ping(&self) -> bool {
        self.db.ping().await
    }

    async fn stats(&self, cx: &Cx) -> DirResult<DirectoryStats> {
        let path = self.path.clone();
        self.read(cx, move |c| {
            let idempotency_records: i64 =
                c.query_row("SELECT count(*) FROM idempotency_records", [], |r| r.get(0))?;
            let most_servers_per_owner: i64 = c.query_row(
                "SELECT coalesce(max(n), 0) FROM \
                 (SELECT count(*) AS n FROM servers GROUP BY owner_id)",
                [],
                |r| r.get(0),
            )?;
            let (db_bytes, wal_bytes) = super::db_metrics::file_sizes(&path);
            Ok(DirectoryStats {
                idempotency_records: u64::try_from(idempotency_records).unwrap_or(0),
                most_servers_per_owner: u64::try_from(most_servers_per_owner).unwrap_or(0),
                db_bytes,
                wal_bytes,
            })
        })
        .await
    }

    fn metrics(&self) -> &DbMetrics {
        self.db.metrics()
    }
}
