//! [`PgDirectory`]: the [`Directory`] on PostgreSQL (`directory.backend: "postgres"`), for
//! several signalbox nodes sharing one database.
//!
//! Owns the mapping of each trait method onto one transaction of [`commands`] and [`queries`]
//! (see [`super::transaction`] for isolation, retries and the idempotency scope lock), timed
//! under the call's `cx.op` like the SQLite backend. Applies the shared pure access rules of
//! [`access`]. Never decides HTTP statuses and never checks a password.

use async_trait::async_trait;
use signalbox_protocol::http::{
    Ban, CreateServerRequest, Game, Invite, InviteResolution, JoinRequest, JoinRequestStatus,
    MemberRole, Membership, OkResponse, PluginManifest, ServerSummary, ServerVisibility,
    UpdateServerRequest, UpsertGameRequest, UserProfile,
};
use signalbox_protocol::{AccessDeniedReason, PluginId, ServerId, TimestampMs, UserId};
use tokio_postgres::IsolationLevel;

use super::pool::{PgPool, PoolSettings};
use super::transaction::{ScopeLock, backoff, recycle, should_retry};
use super::{commands, queries};
use crate::config::{AuthMode, DirectorySettings};
use crate::directory::access::{
    self, Access, AdmissionRequest, Decision, Entry, IdentifyDenied, Staff, Step,
};
use crate::directory::db_metrics::DbMetrics;
use crate::directory::idempotency::{Claim, IdempotencyRecord, IdempotencyScope};
use crate::directory::idempotency::{OK, answer_text};
use crate::directory::queries::{InviteRecord, ServerRecord};
use crate::directory::store::{
    Cx, DirResult, Directory, DirectoryStats, NewUser, Outcome, PageQuery, Proven,
    owner_cap_reached, plugin_cap_reached,
};
use crate::directory::{DbError, DirectoryError, Page};

/// The directory on a PostgreSQL database (see the module docs).
pub struct PgDirectory {
    pool: PgPool,
    metrics: DbMetrics,
}

impl std::fmt::Debug for PgDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDirectory")
            .field("pool", &self.pool)
            .finish()
    }
}

impl PgDirectory {
    /// A directory over a new pool for `url` (connections open on first use; the schema must
    /// be migrated: see [`super::migrate`] or [`PgDirectory::open`]).
    pub fn new(url: &str, settings: &PoolSettings) -> Result<Self, DbError> {
        Ok(Self {
            pool: PgPool::new(url, settings)?,
            metrics: DbMetrics::new(settings.size),
        })
    }

    /// Migrates the database at `url` (under the migration lock), then builds the directory.
    pub async fn open(url: &str, settings: &PoolSettings) -> Result<Self, DbError> {
        super::migrate(url).await?;
        Self::new(url, settings)
    }

    /// Opens the directory the `directory` settings describe (`backend: "postgres"`): migrates,
    /// then builds a pool of `postgresPoolSize` connections. The URL is never logged.
    pub async fn from_settings(settings: &DirectorySettings) -> Result<Self, DbError> {
        let url = settings.postgres_url.as_ref().ok_or_else(|| {
            super::failure::pool_failure("directory.postgresUrl is not set".into())
        })?;
        let pool = PoolSettings {
            size: usize::try_from(settings.postgres_pool_size).unwrap_or(usize::MAX),
            statement_timeout: std::time::Duration::from_millis(u64::from(
                settings.postgres_statement_timeout_ms,
            )),
            ..PoolSettings::default()
        };
        Self::open(url.expose(), &pool).await
    }

    /// The pool underneath.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Runs `$body` (which may `.await` and `?`, with `$c` a `&tokio_postgres::Transaction`) in one
/// SERIALIZABLE transaction on `$conn`, again from the start after a serialization failure or a
/// deadlock (at most `MAX_ATTEMPTS` times). Evaluates to `DirResult<T>`.
macro_rules! serializable {
    ($conn:expr, |$c:ident| $body:expr) => {{
        let mut attempt = 1;
        loop {
            let result: DirResult<_> = async {
                let tx = $conn
                    .build_transaction()
                    .isolation_level(IsolationLevel::Serializable)
                    .start()
                    .await?;
                let $c: &tokio_postgres::Transaction<'_> = &tx;
                let value = $body;
                tx.commit().await?;
                Ok(value)
            }
            .await;
            match result {
                Err(e) if should_retry(&e, attempt) => {
                    attempt += 1;
                    backoff().await;
                }
                other => break other,
            }
        }
    }};
}

/// A write without a claim: one SERIALIZABLE transaction (see [`serializable!`]).
macro_rules! write {
    ($self:ident, $cx:expr, |$c:ident| $body:expr) => {{
        let mut timer = $self.metrics.start($cx.op);
        let mut conn = $self.pool.get().await?;
        timer.acquired();
        let result = serializable!(conn, |$c| $body);
        recycle(conn, &result);
        result
    }};
}

/// An idempotent write (the rules of [`Directory`]): with a claim, the scope's advisory lock is
/// held across the transaction, whose snapshot then sees any earlier duplicate's record.
macro_rules! idempotent {
    ($self:ident, $cx:expr, |$c:ident| $body:expr) => {{
        let cx: &Cx = $cx;
        let mut timer = $self.metrics.start(cx.op);
        let conn = $self.pool.get().await?;
        timer.acquired();
        let mut lock = ScopeLock::new(conn);
        if let Some(claim) = &cx.claim {
            lock.lock(&claim.scope).await?;
        }
        let result = serializable!(lock.conn(), |$c| {
            match lookup($c, cx.claim.as_ref()).await? {
                Some(replayed) => Outcome::Replayed(replayed),
                None => {
                    let value = $body;
                    if let Some(claim) = &cx.claim {
                        store($c, claim, cx.status, &answer_text(&value)?).await?;
                    }
                    Outcome::Done(value)
                }
            }
        });
        lock.release(&result).await;
        result
    }};
}

/// A read of several queries: one REPEATABLE READ READ ONLY snapshot.
macro_rules! snapshot {
    ($self:ident, $cx:expr, |$c:ident| $body:expr) => {{
        let mut timer = $self.metrics.start($cx.op);
        let mut conn = $self.pool.get().await?;
        timer.acquired();
        let result: DirResult<_> = async {
            let tx = conn
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let $c: &tokio_postgres::Transaction<'_> = &tx;
            let value = $body;
            tx.commit().await?;
            Ok(value)
        }
        .await;
        recycle(conn, &result);
        result
    }};
}

/// A read of one query (autocommit).
macro_rules! read {
    ($self:ident, $cx:expr, |$c:ident| $body:expr) => {{
        let mut timer = $self.metrics.start($cx.op);
        let conn = $self.pool.get().await?;
        timer.acquired();
        let $c: &tokio_postgres::Client = &conn;
        let result: DirResult<_> = async { Ok($body) }.await;
        recycle(conn, &result);
        result
    }};
}

/// Inside a write's transaction: the stored answer for `claim`, if still valid
/// (`IdempotencyMismatch` for another request). Marks the claim handled.
async fn lookup(
    c: &tokio_postgres::Transaction<'_>,
    claim: Option<&Claim>,
) -> DirResult<Option<crate::directory::idempotency::Replayed>> {
    let Some(claim) = claim else {
        return Ok(None);
    };
    claim.mark_handled();
    let since = claim.since(TimestampMs::now());
    queries::idempotency_record(c, &claim.scope, since)
        .await?
        .map(|previous| claim.replay(&previous))
        .transpose()
}

/// Inside a write's transaction: stores `claim`'s answer. Marks the claim handled.
async fn store(
    c: &tokio_postgres::Transaction<'_>,
    claim: &Claim,
    status: u16,
    response: &str,
) -> DirResult<()> {
    claim.mark_handled();
    let record = claim.record(status, response);
    commands::store_idempotency_record(c, &claim.scope, &record, TimestampMs::now()).await
}

#[async_trait]
impl Directory for PgDirectory {
    async fn create_server(
        &self,
        cx: &Cx,
        owner: NewUser,
        id: ServerId,
        request: CreateServerRequest,
        max_per_owner: u32,
        now: TimestampMs,
    ) -> DirResult<Outcome<ServerSummary>> {
        idempotent!(self, cx, |c| {
            // SERIALIZABLE: concurrent creations that each counted below the cap cannot both
            // commit (one retries and counts again), so the cap holds exactly.
            if queries::servers_owned_by(c, &owner.id).await? >= max_per_owner {
                return Err(owner_cap_reached(max_per_owner));
            }
            commands::upsert_user(
                c,
                &owner.id,
                owner.display_name.as_deref(),
                owner.public_key.as_deref(),
                owner.guest,
                now,
            )
            .await?;
            commands::create_server(c, id.clone(), &request, &owner.id, now).await?
        })
    }

    async fn update_server(
        &self,
        cx: &Cx,
        server: &ServerId,
        request: UpdateServerRequest,
    ) -> DirResult<Outcome<ServerSummary>> {
        idempotent!(self, cx, |c| commands::update_server(c, server, &request)
            .await?)
    }

    async fn delete_server(&self, cx: &Cx, server: &ServerId) -> DirResult<Outcome<OkResponse>> {
        idempotent!(self, cx, |c| {
            commands::delete_server(c, server).await?;
            OK
        })
    }

    async fn set_password_hash(
        &self,
        cx: &Cx,
        server: &ServerId,
        hash: Option<String>,
    ) -> DirResult<Outcome<OkResponse>> {
        idempotent!(self, cx, |c| {
            commands::set_password_hash(c, server, hash.as_deref()).await?;
            OK
        })
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
        idempotent!(self, cx, |c| {
            commands::ban(c, server, user, reason.as_deref(), by, now).await?
        })
    }

    async fn unban(
        &self,
        cx: &Cx,
        server: &ServerId,
        user: &UserId,
    ) -> DirResult<Outcome<OkResponse>> {
        idempotent!(self, cx, |c| {
            commands::unban(c, server, user).await?;
            OK
        })
    }

    async fn set_role(
        &self,
        cx: &Cx,
        server: &ServerId,
        user: &UserId,
        role: MemberRole,
    ) -> DirResult<Outcome<Membership>> {
        idempotent!(self, cx, |c| commands::set_role(c, server, user, role)
            .await?)
    }

    async fn remove_member(
        &self,
        cx: &Cx,
        server: &ServerId,
        user: &UserId,
    ) -> DirResult<Outcome<OkResponse>> {
        idempotent!(self, cx, |c| {
            commands::remove_member(c, server, user).await?;
            OK
        })
    }

    async fn upsert_game(
        &self,
        cx: &Cx,
        id: &str,
        request: UpsertGameRequest,
        now: TimestampMs,
    ) -> DirResult<Outcome<Game>> {
        idempotent!(self, cx, |c| commands::upsert_game(c, id, &request, now)
            .await?)
    }

    async fn delete_game(&self, cx: &Cx, id: &str) -> DirResult<Outcome<OkResponse>> {
        idempotent!(self, cx, |c| {
            commands::delete_game(c, id).await?;
            OK
        })
    }

    async fn create_invite(&self, cx: &Cx, invite: Invite) -> DirResult<Outcome<Invite>> {
        idempotent!(self, cx, |c| {
            commands::create_invite(c, &invite).await?;
            invite.clone()
        })
    }

    async fn accept_invite(
        &self,
        cx: &Cx,
        code: &str,
        user: &UserId,
        now: TimestampMs,
    ) -> DirResult<Outcome<Membership>> {
        idempotent!(self, cx, |c| commands::accept_invite(c, code, user, now)
            .await?)
    }

    async fn revoke_invite(&self, cx: &Cx, code: &str) -> DirResult<Outcome<OkResponse>> {
        idempotent!(self, cx, |c| {
            commands::revoke_invite(c, code).await?;
            OK
        })
    }

    async fn create_join_request(
        &self,
        cx: &Cx,
        request: JoinRequest,
    ) -> DirResult<Outcome<JoinRequest>> {
        idempotent!(self, cx, |c| {
            let server = &request.server_id;
            let record = queries::server(c, server)
                .await?
                .ok_or(DirectoryError::NotFound("server"))?;
            if queries::is_banned(c, server, &request.user_id).await? {
                return Err(DirectoryError::Forbidden("banned from this server".into()));
            }
            if record.summary.visibility == ServerVisibility::Public {
                return Err(DirectoryError::Conflict(
                    "the server is public: join it directly".into(),
                ));
            }
            commands::create_join_request(c, &request).await?;
            request.clone()
        })
    }

    async fn decide_join_request(
        &self,
        cx: &Cx,
        id: &str,
        status: JoinRequestStatus,
        by: &UserId,
        now: TimestampMs,
    ) -> DirResult<Outcome<JoinRequest>> {
        idempotent!(self, cx, |c| {
            commands::decide_join_request(c, id, status, by, now).await?
        })
    }

    async fn put_plugin(
        &self,
        cx: &Cx,
        server: &ServerId,
        manifest: PluginManifest,
        max_per_server: usize,
    ) -> DirResult<Outcome<PluginManifest>> {
        idempotent!(self, cx, |c| {
            let others = queries::plugin_manifests(c, server)
                .await?
                .into_iter()
                .filter(|m| m.plugin_id != manifest.plugin_id)
                .count();
            if others >= max_per_server {
                return Err(plugin_cap_reached(max_per_server));
            }
            commands::upsert_plugin(c, server, &manifest).await?;
            manifest.clone()
        })
    }

    async fn delete_plugin(
        &self,
        cx: &Cx,
        server: &ServerId,
        plugin: &PluginId,
    ) -> DirResult<Outcome<OkResponse>> {
        idempotent!(self, cx, |c| {
            commands::delete_plugin(c, server, plugin).await?;
            OK
        })
    }

    async fn store_idempotency(
        &self,
        cx: &Cx,
        claim: &Claim,
        status: u16,
        response: &str,
    ) -> DirResult<()> {
        write!(self, cx, |c| store(c, claim, status, response).await?)
    }

    async fn insert_challenge(
        &self,
        cx: &Cx,
        id: &str,
        public_key: &str,
        challenge: &str,
        expires_at: TimestampMs,
    ) -> DirResult<()> {
        write!(self, cx, |c| {
            commands::insert_challenge(c, id, public_key, challenge, expires_at).await?
        })
    }

    async fn consume_challenge(
        &self,
        cx: &Cx,
        id: &str,
        now: TimestampMs,
    ) -> DirResult<(String, String)> {
        write!(self, cx, |c| commands::consume_challenge(c, id, now)
            .await?)
    }

    async fn bind_key(
        &self,
        cx: &Cx,
        public_key: &str,
        derived: &UserId,
        now: TimestampMs,
    ) -> DirResult<UserId> {
        write!(self, cx, |c| {
            let user = queries::user_by_public_key(c, public_key)
                .await?
                .unwrap_or_else(|| derived.clone());
            commands::upsert_user(c, &user, None, Some(public_key), false, now).await?;
            user
        })
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
        write!(self, cx, |c| {
            let bound = queries::bound_public_key(c, claimed).await?.is_some();
            let decision =
                access::identify_rule(claimed, proven.as_ref().map(|p| &p.user_id), mode, || {
                    Ok(bound)
                })?;
            let key = proven.as_ref().and_then(|p| p.public_key.as_deref());
            match (&decision, key) {
                (Ok(()), Some(key)) => {
                    commands::upsert_user(c, claimed, Some(display_name), Some(key), false, now)
                        .await?;
                }
                (Ok(()), None) => commands::rename_known_user(c, claimed, display_name).await?,
                (Err(_), _) => {}
            }
            decision
        })
    }

    async fn record_admission(
        &self,
        cx: &Cx,
        request: &AdmissionRequest,
        access: Access,
        now: TimestampMs,
    ) -> DirResult<Decision> {
        write!(self, cx, |c| {
            commands::record_admission(c, request, access, now).await?
        })
    }

    async fn signing_key_or_insert(
        &self,
        cx: &Cx,
        fresh: Vec<u8>,
        now: TimestampMs,
    ) -> DirResult<Vec<u8>> {
        write!(self, cx, |c| {
            commands::signing_key_or_insert(c, &fresh, now).await?
        })
    }

    async fn purge_unused(
        &self,
        cx: &Cx,
        now: TimestampMs,
        idle_before: TimestampMs,
    ) -> DirResult<(usize, usize)> {
        write!(self, cx, |c| commands::purge_unused(c, now, idle_before)
            .await?)
    }

    async fn purge_idempotency(&self, cx: &Cx, cutoff: TimestampMs) -> DirResult<usize> {
        write!(self, cx, |c| {
            commands::purge_idempotency_records(c, cutoff).await?
        })
    }

    async fn admission_step(
        &self,
        cx: &Cx,
        request: &AdmissionRequest,
        now: TimestampMs,
    ) -> DirResult<Step> {
        snapshot!(self, cx, |c| {
            let facts = queries::facts(
                c,
                &request.server,
                Some(&request.user),
                request.invite_code.as_deref(),
            )
            .await?;
            access::admission_rule(&facts, request, now)
        })
    }

    async fn still_admitted(
        &self,
        cx: &Cx,
        server: &ServerId,
        entries: Vec<(UserId, Entry)>,
        _now: TimestampMs,
    ) -> DirResult<Vec<Decision>> {
        snapshot!(self, cx, |c| {
            let mut decisions = Vec::with_capacity(entries.len());
            for (user, entry) in &entries {
                let facts = queries::facts(c, server, Some(user), None).await?;
                decisions.push(access::still_admitted_rule(&facts, server, *entry));
            }
            decisions
        })
    }

    async fn staff(&self, cx: &Cx, server: &ServerId, user: &UserId) -> DirResult<Option<Staff>> {
        snapshot!(self, cx, |c| {
            access::staff_rule(&queries::facts(c, server, Some(user), None).await?)?
        })
    }

    async fn role(
        &self,
        cx: &Cx,
        server: &ServerId,
        user: &UserId,
    ) -> DirResult<Option<MemberRole>> {
        read!(self, cx, |c| queries::role(c, server, user).await?)
    }

    async fn server(&self, cx: &Cx, server: &ServerId) -> DirResult<Option<ServerRecord>> {
        read!(self, cx, |c| queries::server(c, server).await?)
    }

    async fn server_view(
        &self,
        cx: &Cx,
        server: &ServerId,
        viewer: Option<&UserId>,
    ) -> DirResult<Result<ServerSummary, AccessDeniedReason>> {
        snapshot!(self, cx, |c| {
            let facts = queries::facts(c, server, viewer, None).await?;
            match (access::view_rule(&facts), facts.server) {
                (Ok(_), Some(record)) => Ok(record.summary),
                (Ok(_), None) => Err(AccessDeniedReason::NotFound),
                (Err(reason), _) => Err(reason),
            }
        })
    }

    async fn list_public_servers(
        &self,
        cx: &Cx,
        q: Option<&str>,
        page: PageQuery,
    ) -> DirResult<Page<ServerSummary>> {
        read!(self, cx, |c| {
            queries::list_public_servers(c, q, page.limit, page.cursor.as_deref()).await?
        })
    }

    async fn list_members(
        &self,
        cx: &Cx,
        server: &ServerId,
        viewer: Option<&UserId>,
        page: PageQuery,
    ) -> DirResult<Result<Page<Membership>, AccessDeniedReason>> {
        snapshot!(self, cx, |c| {
            match access::view_rule(&queries::facts(c, server, viewer, None).await?) {
                Ok(_) => Ok(
                    queries::list_members(c, server, page.limit, page.cursor.as_deref()).await?,
                ),
                Err(reason) => Err(reason),
            }
        })
    }

    async fn list_bans(&self, cx: &Cx, server: &ServerId, page: PageQuery) -> DirResult<Page<Ban>> {
        read!(self, cx, |c| {
            queries::list_bans(c, server, page.limit, page.cursor.as_deref()).await?
        })
    }

    async fn invite(&self, cx: &Cx, code: &str) -> DirResult<Option<InviteRecord>> {
        read!(self, cx, |c| queries::invite(c, code).await?)
    }

    async fn resolve_invite(
        &self,
        cx: &Cx,
        code: &str,
        now: TimestampMs,
    ) -> DirResult<InviteResolution> {
        snapshot!(self, cx, |c| {
            let record = queries::invite(c, code)
                .await?
                .ok_or(DirectoryError::NotFound("invite"))?;
            if let Some(reason) = record.unusable_reason(now) {
                return Err(DirectoryError::Gone(reason.into()));
            }
            let server = queries::server(c, &record.invite.server_id)
                .await?
                .ok_or(DirectoryError::NotFound("server"))?;
            InviteResolution {
                code: code.to_owned(),
                server: server.summary,
                expires_at: record.invite.expires_at,
            }
        })
    }

    async fn join_request(&self, cx: &Cx, id: &str) -> DirResult<Option<JoinRequest>> {
        read!(self, cx, |c| queries::join_request(c, id).await?)
    }

    async fn pending_join_requests(
        &self,
        cx: &Cx,
        server: &ServerId,
        page: PageQuery,
    ) -> DirResult<Page<JoinRequest>> {
        read!(self, cx, |c| {
            queries::pending_join_requests(c, server, page.limit, page.cursor.as_deref()).await?
        })
    }

    async fn user_profile(&self, cx: &Cx, user: &UserId) -> DirResult<Option<UserProfile>> {
        read!(self, cx, |c| queries::user_profile(c, user).await?)
    }

    async fn list_games(&self, cx: &Cx, page: PageQuery) -> DirResult<Page<Game>> {
        read!(self, cx, |c| {
            queries::list_games(c, page.limit, page.cursor.as_deref()).await?
        })
    }

    async fn list_plugins(
        &self,
        cx: &Cx,
        server: &ServerId,
        viewer: Option<&UserId>,
    ) -> DirResult<Result<Vec<PluginManifest>, AccessDeniedReason>> {
        snapshot!(self, cx, |c| {
            match access::view_rule(&queries::facts(c, server, viewer, None).await?) {
                Ok(_) => Ok(queries::plugin_manifests(c, server).await?),
                Err(reason) => Err(reason),
            }
        })
    }

    async fn plugin_manifests(&self, cx: &Cx, server: &ServerId) -> DirResult<Vec<PluginManifest>> {
        read!(self, cx, |c| queries::plugin_manifests(c, server).await?)
    }

    async fn plugin_manifest(
        &self,
        cx: &Cx,
        server: &ServerId,
        plugin: &PluginId,
    ) -> DirResult<Option<PluginManifest>> {
        read!(self, cx, |c| queries::plugin_manifest(c, server, plugin)
            .await?)
    }

    async fn idempotency_record(
        &self,
        cx: &Cx,
        scope: &IdempotencyScope,
        since: TimestampMs,
    ) -> DirResult<Option<IdempotencyRecord>> {
        read!(self, cx, |c| queries::idempotency_record(c, scope, since)
            .await?)
    }

    async fn ping(&self) -> bool {
        let Ok(conn) = self.pool.get().await else {
            return false;
        };
        let result: DirResult<_> = conn.query_one("SELECT 1", &[]).await.map_err(Into::into);
        let answered = result.is_ok();
        recycle(conn, &result);
        answered
    }

    async fn stats(&self, cx: &Cx) -> DirResult<DirectoryStats> {
        snapshot!(self, cx, |c| {
            let row = c
                .query_one(
                    "SELECT (SELECT count(*) FROM idempotency_records), \
                       (SELECT coalesce(max(n), 0) FROM \
                         (SELECT count(*) AS n FROM servers GROUP BY owner_id) o), \
                       pg_database_size(current_database())",
                    &[],
                )
                .await?;
            let (records, most, bytes): (i64, i64, i64) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            DirectoryStats {
                idempotency_records: u64::try_from(records).unwrap_or(0),
                most_servers_per_owner: u64::try_from(most).unwrap_or(0),
                db_bytes: u64::try_from(bytes).unwrap_or(0),
                wal_bytes: 0,
            }
        })
    }

    fn metrics(&self) -> &DbMetrics {
        &self.metrics
    }
}
