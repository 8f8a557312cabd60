//! The directory's writes on PostgreSQL: the same commands as [`crate::directory::commands`],
//! [`crate::directory::credentials`] and [`crate::directory::plugin_manifests`], in this dialect.
//! Each runs inside the caller's transaction ([`GenericClient`]); the caller decides isolation
//! and retries (see [`super::directory`]).
//!
//! Owns write statements only; never opens or commits a transaction itself.

use signalbox_protocol::http::{
    Ban, CreateServerRequest, Game, Invite, JoinRequest, JoinRequestStatus, MemberRole, Membership,
    PluginManifest, ServerSummary, ServerVisibility, UpdateServerRequest, UpsertGameRequest,
};
use signalbox_protocol::{AccessDeniedReason, PluginId, ServerId, TimestampMs, UserId};
use tokio_postgres::GenericClient;

use super::queries::{self, storable};
use crate::directory::DirectoryError;
use crate::directory::access::{Access, AdmissionRequest, Decision};
use crate::directory::idempotency::{IdempotencyRecord, IdempotencyScope};

type Result<T> = std::result::Result<T, DirectoryError>;

fn visibility_text(v: ServerVisibility) -> &'static str {
    match v {
        ServerVisibility::Public => "public",
        ServerVisibility::Private => "private",
    }
}

fn role_text(r: MemberRole) -> &'static str {
    match r {
        MemberRole::Owner => "owner",
        MemberRole::Moderator => "moderator",
        MemberRole::Member => "member",
    }
}

fn status_text(s: JoinRequestStatus) -> &'static str {
    match s {
        JoinRequestStatus::Pending => "pending",
        JoinRequestStatus::Approved => "approved",
        JoinRequestStatus::Rejected => "rejected",
        JoinRequestStatus::Withdrawn => "withdrawn",
    }
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Creates a user row or fills in what it lacks (a name given replaces the old one; a bound
/// key is never replaced).
pub async fn upsert_user(
    c: &impl GenericClient,
    user: &UserId,
    display_name: Option<&str>,
    public_key: Option<&str>,
    guest: bool,
    now: TimestampMs,
) -> Result<()> {
    c.execute(
        "INSERT INTO users (id, display_name, public_key, guest, created_at, profile_updated_at) \
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $2::text IS NULL THEN NULL::bigint ELSE $5::bigint END) \
         ON CONFLICT (id) DO UPDATE SET \
           display_name = coalesce(excluded.display_name, users.display_name), \
           public_key = coalesce(users.public_key, excluded.public_key)",
        &[&user.as_str(), &display_name, &public_key, &guest, &now.0],
    )
    .await?;
    Ok(())
}

/// Renames a user that has a row (nothing for one without).
pub async fn rename_known_user(
    c: &impl GenericClient,
    user: &UserId,
    display_name: &str,
) -> Result<()> {
    c.execute(
        "UPDATE users SET display_name = $2 WHERE id = $1",
        &[&user.as_str(), &display_name],
    )
    .await?;
    Ok(())
}

fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Deletes expired or used challenges and unused ephemeral identities created before
/// `idle_before`: how many of each.
pub async fn purge_unused(
    c: &impl GenericClient,
    now: TimestampMs,
    idle_before: TimestampMs,
) -> Result<(usize, usize)> {
    let challenges = c
        .execute(
            "DELETE FROM auth_challenges WHERE expires_at <= $1 OR used_at IS NOT NULL",
            &[&now.0],
        )
        .await?;
    let users = c
        .execute(
            "DELETE FROM users WHERE guest AND public_key IS NULL AND created_at < $1 \
               AND NOT EXISTS (SELECT 1 FROM members m WHERE m.user_id = users.id) \
               AND NOT EXISTS (SELECT 1 FROM servers s WHERE s.owner_id = users.id)",
            &[&idle_before.0],
        )
        .await?;
    Ok((count(challenges), count(users)))
}

/// Creates a server owned by `owner` (who becomes its owner member). `Conflict` if the id exists.
pub async fn create_server(
    c: &impl GenericClient,
    id: ServerId,
    request: &CreateServerRequest,
    owner: &UserId,
    now: TimestampMs,
) -> Result<ServerSummary> {
    let exists: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM servers WHERE id = $1)",
            &[&id.as_str()],
        )
        .await?
        .try_get(0)?;
    if exists {
        return Err(DirectoryError::Conflict(format!(
            "server `{id}` already exists"
        )));
    }
    let visibility = request.visibility.unwrap_or(ServerVisibility::Public);
    let tags = request.tags.clone().unwrap_or_default();
    c.execute(
        "INSERT INTO servers (id, name, description, tags, visibility, owner_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &id.as_str(),
            &request.name,
            &request.description,
            &json_list(&tags),
            &visibility_text(visibility),
            &owner.as_str(),
            &now.0,
        ],
    )
    .await?;
    c.execute(
        "INSERT INTO members (server_id, user_id, role, joined_at) VALUES ($1, $2, 'owner', $3)",
        &[&id.as_str(), &owner.as_str(), &now.0],
    )
    .await?;
    queries::server(c, &id)
        .await?
        .map(|r| r.summary)
        .ok_or(DirectoryError::NotFound("server"))
}

/// Changes the given fields. `NotFound("server")`.
pub async fn update_server(
    c: &impl GenericClient,
    id: &ServerId,
    request: &UpdateServerRequest,
) -> Result<ServerSummary> {
    if !storable(id.as_str()) {
        return Err(DirectoryError::NotFound("server"));
    }
    let changed = c
        .execute(
            "UPDATE servers SET name = coalesce($2, name), \
               description = coalesce($3, description), tags = coalesce($4, tags), \
               visibility = coalesce($5, visibility) WHERE id = $1",
            &[
                &id.as_str(),
                &request.name,
                &request.description,
                &request.tags.as_deref().map(json_list),
                &request.visibility.map(visibility_text),
            ],
        )
        .await?;
    if changed == 0 {
        return Err(DirectoryError::NotFound("server"));
    }
    queries::server(c, id)
        .await?
        .map(|r| r.summary)
        .ok_or(DirectoryError::NotFound("server"))
}

fn one_row(changed: u64, what: &'static str) -> Result<()> {
    if changed == 0 {
        Err(DirectoryError::NotFound(what))
    } else {
        Ok(())
    }
}

/// Deletes a server (everything of it cascades). `NotFound("server")`.
pub async fn delete_server(c: &impl GenericClient, id: &ServerId) -> Result<()> {
    if !storable(id.as_str()) {
        return Err(DirectoryError::NotFound("server"));
    }
    let n = c
        .execute("DELETE FROM servers WHERE id = $1", &[&id.as_str()])
        .await?;
    one_row(n, "server")
}

/// Sets or clears the join password hash. `NotFound("server")`.
pub async fn set_password_hash(
    c: &impl GenericClient,
    id: &ServerId,
    hash: Option<&str>,
) -> Result<()> {
    if !storable(id.as_str()) {
        return Err(DirectoryError::NotFound("server"));
    }
    let n = c
        .execute(
            "UPDATE servers SET password_hash = $2 WHERE id = $1",
            &[&id.as_str(), &hash],
        )
        .await?;
    one_row(n, "server")
}

/// Adds a member (an existing membership is kept as it is) and answers the membership.
pub async fn add_member(
    c: &impl GenericClient,
    server: &ServerId,
    user: &UserId,
    role: MemberRole,
    now: TimestampMs,
) -> Result<Membership> {
    c.execute(
        "INSERT INTO members (server_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (server_id, user_id) DO NOTHING",
        &[&server.as_str(), &user.as_str(), &role_text(role), &now.0],
    )
    .await?;
    let role = queries::role(c, server, user)
        .await?
        .ok_or(DirectoryError::NotFound("member"))?;
    Ok(Membership {
        server_id: server.clone(),
        user_id: user.clone(),
        role,
    })
}

/// Sets a member's role (never to or from owner: `Forbidden`). `NotFound("member")`.
pub async fn set_role(
    c: &impl GenericClient,
    server: &ServerId,
    user: &UserId,
    role: MemberRole,
) -> Result<Membership> {
    if role == MemberRole::Owner {
        return Err(DirectoryError::Forbidden(
            "ownership cannot be given".into(),
        ));
    }
    match queries::role(c, server, user).await? {
        None => return Err(DirectoryError::NotFound("member")),
        Some(MemberRole::Owner) => {
            return Err(DirectoryError::Forbidden(
                "the owner's role cannot change".into(),
            ));
        }
        Some(_) => {}
    }
    c.execute(
        "UPDATE members SET role = $3 WHERE server_id = $1 AND user_id = $2",
        &[&server.as_str(), &user.as_str(), &role_text(role)],
    )
    .await?;
    Ok(Membership {
        server_id: server.clone(),
        user_id: user.clone(),
        role,
    })
}

/// Removes a member (never the owner: `Forbidden`). `NotFound("member")`.
pub async fn remove_member(c: &impl GenericClient, server: &ServerId, user: &UserId) -> Result<()> {
    match queries::role(c, server, user).await? {
        None => Err(DirectoryError::NotFound("member")),
        Some(MemberRole::Owner) => Err(DirectoryError::Forbidden(
            "the owner cannot leave; delete the server instead".into(),
        )),
        Some(_) => {
            c.execute(
                "DELETE FROM members WHERE server_id = $1 AND user_id = $2",
                &[&server.as_str(), &user.as_str()],
            )
            .await?;
            Ok(())
        }
    }
}

/// Bans `user` and removes their membership (never the owner: `Forbidden`).
pub async fn ban(
    c: &impl GenericClient,
    server: &ServerId,
    user: &UserId,
    reason: Option<&str>,
    by: &UserId,
    now: TimestampMs,
) -> Result<Ban> {
    if queries::role(c, server, user).await? == Some(MemberRole::Owner) {
        return Err(DirectoryError::Forbidden(
            "the owner cannot be banned".into(),
        ));
    }
    c.execute(
        "INSERT INTO bans (server_id, user_id, reason, banned_by, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (server_id, user_id) \
         DO UPDATE SET reason = excluded.reason, banned_by = excluded.banned_by",
        &[
            &server.as_str(),
            &user.as_str(),
            &reason,
            &by.as_str(),
            &now.0,
        ],
    )
    .await?;
    c.execute(
        "DELETE FROM members WHERE server_id = $1 AND user_id = $2",
        &[&server.as_str(), &user.as_str()],
    )
    .await?;
    Ok(Ban {
        user_id: user.clone(),
        reason: reason.map(str::to_owned),
        banned_by: by.clone(),
        created_at: now,
    })
}

/// Lifts a ban. `NotFound("ban")`.
pub async fn unban(c: &impl GenericClient, server: &ServerId, user: &UserId) -> Result<()> {
    if !(storable(server.as_str()) && storable(user.as_str())) {
        return Err(DirectoryError::NotFound("ban"));
    }
    let n = c
        .execute(
            "DELETE FROM bans WHERE server_id = $1 AND user_id = $2",
            &[&server.as_str(), &user.as_str()],
        )
        .await?;
    one_row(n, "ban")
}

/// Stores a new invite.
pub async fn create_invite(c: &impl GenericClient, invite: &Invite) -> Result<()> {
    c.execute(
        "INSERT INTO invites (code, server_id, created_by, created_at, expires_at, max_uses) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &invite.code,
            &invite.server_id.as_str(),
            &invite.created_by.as_str(),
            &invite.created_at.0,
            &invite.expires_at.map(|t| t.0),
            &invite.max_uses.map(i64::from),
        ],
    )
    .await?;
    Ok(())
}

/// Uses an invite: `user` becomes a member (a use counted only for a new member).
pub async fn accept_invite(
    c: &impl GenericClient,
    code: &str,
    user: &UserId,
    now: TimestampMs,
) -> Result<Membership> {
    let record = queries::invite(c, code)
        .await?
        .ok_or(DirectoryError::NotFound("invite"))?;
    if let Some(reason) = record.unusable_reason(now) {
        return Err(DirectoryError::Gone(reason.into()));
    }
    let server = record.invite.server_id;
    if queries::is_banned(c, &server, user).await? {
        return Err(DirectoryError::Forbidden("banned from this server".into()));
    }
    if queries::role(c, &server, user).await?.is_none() {
        c.execute(
            "UPDATE invites SET uses = uses + 1 WHERE code = $1",
            &[&code],
        )
        .await?;
    }
    add_member(c, &server, user, MemberRole::Member, now).await
}

/// Revokes an invite. `NotFound("invite")`.
pub async fn revoke_invite(c: &impl GenericClient, code: &str) -> Result<()> {
    if !storable(code) {
        return Err(DirectoryError::NotFound("invite"));
    }
    let n = c
        .execute(
            "UPDATE invites SET revoked = TRUE WHERE code = $1",
            &[&code],
        )
        .await?;
    one_row(n, "invite")
}

/// Files a pending join request: `Conflict` for a member or a request already pending.
pub async fn create_join_request(c: &impl GenericClient, request: &JoinRequest) -> Result<()> {
    if queries::role(c, &request.server_id, &request.user_id)
        .await?
        .is_some()
    {
        return Err(DirectoryError::Conflict("already a member".into()));
    }
    let inserted = c
        .execute(
            "INSERT INTO join_requests (id, server_id, user_id, message, status, created_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5) ON CONFLICT DO NOTHING",
            &[
                &request.id,
                &request.server_id.as_str(),
                &request.user_id.as_str(),
                &request.message,
                &request.created_at.0,
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(DirectoryError::Conflict(
            "a join request is already pending".into(),
        ));
    }
    Ok(())
}

/// Decides a pending join request (approval adds the member). `Conflict` when decided.
pub async fn decide_join_request(
    c: &impl GenericClient,
    id: &str,
    status: JoinRequestStatus,
    by: &UserId,
    now: TimestampMs,
) -> Result<JoinRequest> {
    let request = queries::join_request(c, id)
        .await?
        .ok_or(DirectoryError::NotFound("join request"))?;
    if request.status != JoinRequestStatus::Pending {
        return Err(DirectoryError::Conflict(format!(
            "the join request is already {}",
            status_text(request.status)
        )));
    }
    c.execute(
        "UPDATE join_requests SET status = $2, decided_at = $3, decided_by = $4 WHERE id = $1",
        &[&id, &status_text(status), &now.0, &by.as_str()],
    )
    .await?;
    if status == JoinRequestStatus::Approved {
        add_member(
            c,
            &request.server_id,
            &request.user_id,
            MemberRole::Member,
            now,
        )
        .await?;
    }
    queries::join_request(c, id)
        .await?
        .ok_or(DirectoryError::NotFound("join request"))
}

/// Creates or replaces a game.
pub async fn upsert_game(
    c: &impl GenericClient,
    id: &str,
    request: &UpsertGameRequest,
    now: TimestampMs,
) -> Result<Game> {
    let executables = request.executables.clone().unwrap_or_default();
    c.execute(
        "INSERT INTO games (id, name, executables, icon_url, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
         executables = excluded.executables, icon_url = excluded.icon_url, \
         updated_at = excluded.updated_at",
        &[
            &id,
            &request.name,
            &json_list(&executables),
            &request.icon_url,
            &now.0,
        ],
    )
    .await?;
    Ok(Game {
        id: id.to_owned(),
        name: request.name.clone(),
        executables,
        icon_url: request.icon_url.clone(),
        updated_at: now,
    })
}

/// Deletes a game. `NotFound("game")`.
pub async fn delete_game(c: &impl GenericClient, id: &str) -> Result<()> {
    if !storable(id) {
        return Err(DirectoryError::NotFound("game"));
    }
    let n = c.execute("DELETE FROM games WHERE id = $1", &[&id]).await?;
    one_row(n, "game")
}

/// Registers or replaces a plugin manifest.
pub async fn upsert_plugin(
    c: &impl GenericClient,
    server: &ServerId,
    manifest: &PluginManifest,
) -> Result<()> {
    let json = serde_json::to_string(manifest)
        .map_err(|e| DirectoryError::Conflict(format!("manifest does not serialize: {e}")))?;
    c.execute(
        "INSERT INTO plugin_manifests (server_id, plugin_id, manifest, updated_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (server_id, plugin_id) DO UPDATE SET \
           manifest = excluded.manifest, updated_at = excluded.updated_at",
        &[
            &server.as_str(),
            &manifest.plugin_id.as_str(),
            &json,
            &manifest.updated_at.0,
        ],
    )
    .await?;
    Ok(())
}

/// Removes a plugin manifest. `NotFound("plugin")`.
pub async fn delete_plugin(
    c: &impl GenericClient,
    server: &ServerId,
    plugin: &PluginId,
) -> Result<()> {
    if !(storable(server.as_str()) && storable(plugin.as_str())) {
        return Err(DirectoryError::NotFound("plugin"));
    }
    let n = c
        .execute(
            "DELETE FROM plugin_manifests WHERE server_id = $1 AND plugin_id = $2",
            &[&server.as_str(), &plugin.as_str()],
        )
        .await?;
    one_row(n, "plugin")
}

/// The signing secret, `fresh` stored first when there is none.
pub async fn signing_key_or_insert(
    c: &impl GenericClient,
    fresh: &[u8],
    now: TimestampMs,
) -> Result<Vec<u8>> {
    c.execute(
        "INSERT INTO signing_keys (id, secret, created_at) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO NOTHING",
        &[&fresh, &now.0],
    )
    .await?;
    Ok(
        c.query_one("SELECT secret FROM signing_keys WHERE id = 1", &[])
            .await?
            .try_get(0)?,
    )
}

/// Stores a login challenge.
pub async fn insert_challenge(
    c: &impl GenericClient,
    id: &str,
    public_key: &str,
    challenge: &str,
    expires_at: TimestampMs,
) -> Result<()> {
    c.execute(
        "INSERT INTO auth_challenges (id, public_key, challenge, expires_at) \
         VALUES ($1, $2, $3, $4)",
        &[&id, &public_key, &challenge, &expires_at.0],
    )
    .await?;
    Ok(())
}

/// Takes a challenge once: its public key and text. `NotFound`, `Gone` (used, expired).
pub async fn consume_challenge(
    c: &impl GenericClient,
    id: &str,
    now: TimestampMs,
) -> Result<(String, String)> {
    if !storable(id) {
        return Err(DirectoryError::NotFound("challenge"));
    }
    let row = c
        .query_opt(
            "SELECT public_key, challenge, expires_at, used_at FROM auth_challenges WHERE id = $1",
            &[&id],
        )
        .await?
        .ok_or(DirectoryError::NotFound("challenge"))?;
    let (public_key, challenge): (String, String) = (row.try_get(0)?, row.try_get(1)?);
    let (expires_at, used_at): (i64, Option<i64>) = (row.try_get(2)?, row.try_get(3)?);
    if used_at.is_some() {
        return Err(DirectoryError::Gone(
            "the challenge was already used".into(),
        ));
    }
    if expires_at <= now.0 {
        return Err(DirectoryError::Gone("the challenge has expired".into()));
    }
    let updated = c
        .execute(
            "UPDATE auth_challenges SET used_at = $2 WHERE id = $1 AND used_at IS NULL",
            &[&id, &now.0],
        )
        .await?;
    if updated == 0 {
        return Err(DirectoryError::Gone(
            "the challenge was already used".into(),
        ));
    }
    c.execute(
        "DELETE FROM auth_challenges WHERE expires_at < $1",
        &[&(now.0 - 24 * 3600 * 1000)],
    )
    .await?;
    Ok((public_key, challenge))
}

/// Stores `record` for `scope` (replacing an older one).
pub async fn store_idempotency_record(
    c: &impl GenericClient,
    scope: &IdempotencyScope,
    record: &IdempotencyRecord,
    now: TimestampMs,
) -> Result<()> {
    c.execute(
        "INSERT INTO idempotency_records \
         (user_id, route, key, request_hash, status, response, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (user_id, route, key) DO UPDATE SET request_hash = excluded.request_hash, \
           status = excluded.status, response = excluded.response, \
           created_at = excluded.created_at",
        &[
            &scope.user,
            &scope.route,
            &scope.key,
            &record.request_hash,
            &i32::from(record.status),
            &record.response,
            &now.0,
        ],
    )
    .await?;
    Ok(())
}

/// Deletes idempotency records made at or before `cutoff`: how many.
pub async fn purge_idempotency_records(
    c: &impl GenericClient,
    cutoff: TimestampMs,
) -> Result<usize> {
    Ok(count(
        c.execute(
            "DELETE FROM idempotency_records WHERE created_at <= $1",
            &[&cutoff.0],
        )
        .await?,
    ))
}

/// What an admission implies (see [`crate::directory::access::record_admission`]).
pub async fn record_admission(
    c: &impl GenericClient,
    request: &AdmissionRequest,
    access: Access,
    now: TimestampMs,
) -> Result<Decision> {
    let (server, user) = (&request.server, &request.user);
    if queries::is_banned(c, server, user).await? {
        return Ok(Err(AccessDeniedReason::Banned));
    }
    upsert_user(c, user, request.display_name.as_deref(), None, true, now).await?;
    match (access, request.invite_code.as_deref()) {
        (Access::Invite, Some(code)) => match accept_invite(c, code, user, now).await {
            Ok(_) => {}
            Err(DirectoryError::Gone(_) | DirectoryError::NotFound(_)) => {
                return Ok(Err(AccessDeniedReason::InviteInvalid));
            }
            Err(DirectoryError::Forbidden(_)) => return Ok(Err(AccessDeniedReason::Banned)),
            Err(e) => return Err(e),
        },
        (Access::Public, _) => {
            add_member(c, server, user, MemberRole::Member, now).await?;
        }
        _ => {}
    }
    Ok(Ok(access))
}
