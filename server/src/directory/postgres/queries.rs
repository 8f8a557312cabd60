//! The directory's reads on PostgreSQL: the same queries as [`crate::directory::queries`], in
//! this dialect (`$N` parameters, BIGINT/BOOLEAN columns, the `lower(name COLLATE "C")` index for
//! prefix search). Each function runs on any client or transaction ([`GenericClient`]).
//!
//! Owns read statements only; never writes and never decides access (see
//! [`crate::directory::access`]).

use signalbox_protocol::http::{
    Ban, Game, Invite, JoinRequest, Membership, PluginManifest, ServerSummary, UserProfile,
};
use signalbox_protocol::{PluginId, ServerId, TimestampMs, UserId};
use tokio_postgres::{GenericClient, Row};

use crate::directory::access::AccessFacts;
use crate::directory::idempotency::{IdempotencyRecord, IdempotencyScope};
use crate::directory::queries::{
    InviteRecord, ServerRecord, parse_role, parse_status, parse_visibility,
};
use crate::directory::{DirectoryError, Page};

type Result<T> = std::result::Result<T, DirectoryError>;

const SERVER_COLUMNS: &str = "s.id, s.name, s.description, s.tags, s.visibility, s.owner_id, \
     s.password_hash, s.created_at, (SELECT count(*) FROM members m WHERE m.server_id = s.id)";

/// The end of a prefix range: every string starting with the prefix sorts below
/// `prefix || U+10FFFF` bytewise (the same bound SQLite's search uses).
const PREFIX_END: char = char::MAX;

/// Whether `text` could be a stored value: PostgreSQL text never holds U+0000 (SQLite's does,
/// but every stored value passed validation, which refuses control characters), so a key with
/// one names nothing, and sending it would fail the statement (SQLSTATE 22021) instead.
pub(super) fn storable(text: &str) -> bool {
    !text.contains('\0')
}

/// The lower bound of a page after `cursor`. A cursor holding U+0000 is cut there: no stored
/// key starts with `cut + U+0000`, so `key > cut` selects exactly the keys `> cursor`.
fn after(cursor: Option<&str>) -> &str {
    let cursor = cursor.unwrap_or("");
    cursor.split('\0').next().unwrap_or("")
}

fn empty<T>() -> Page<T> {
    Page {
        items: Vec::new(),
        next_cursor: None,
    }
}

fn json_list(text: String) -> Vec<String> {
    serde_json::from_str(&text).unwrap_or_default()
}

fn to_u32(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

fn server_row(row: &Row) -> Result<ServerRecord> {
    let password_hash: Option<String> = row.try_get(6)?;
    Ok(ServerRecord {
        summary: ServerSummary {
            id: ServerId(row.try_get(0)?),
            name: row.try_get(1)?,
            description: row.try_get(2)?,
            tags: json_list(row.try_get(3)?),
            visibility: parse_visibility(row.try_get::<_, &str>(4)?),
            owner_id: UserId(row.try_get(5)?),
            has_password: password_hash.is_some(),
            member_count: to_u32(row.try_get(8)?),
            online_count: 0,
            created_at: TimestampMs(row.try_get(7)?),
        },
        password_hash,
    })
}

/// The whole server row, if it exists.
pub async fn server(c: &impl GenericClient, id: &ServerId) -> Result<Option<ServerRecord>> {
    if !storable(id.as_str()) {
        return Ok(None);
    }
    c.query_opt(
        &format!("SELECT {SERVER_COLUMNS} FROM servers s WHERE s.id = $1"),
        &[&id.as_str()],
    )
    .await?
    .as_ref()
    .map(server_row)
    .transpose()
}

/// Public servers by id after `cursor`; `search` is a case-insensitive (ASCII) name prefix.
pub async fn list_public_servers(
    c: &impl GenericClient,
    search: Option<&str>,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<ServerSummary>> {
    let after = after(cursor);
    let fetch = i64::from(limit) + 1;
    let rows = match search {
        None => {
            c.query(
                &format!(
                    "SELECT {SERVER_COLUMNS} FROM servers s \
                     WHERE s.visibility = 'public' AND s.id > $1 ORDER BY s.id LIMIT $2"
                ),
                &[&after, &fetch],
            )
            .await?
        }
        // No stored name holds U+0000, so no name starts with this prefix.
        Some(prefix) if !storable(prefix) => return Ok(empty()),
        Some(prefix) => {
            let end = format!("{prefix}{PREFIX_END}");
            c.query(
                &format!(
                    "SELECT {SERVER_COLUMNS} FROM servers s \
                     WHERE lower(s.name COLLATE \"C\") >= lower($2 COLLATE \"C\") \
                       AND lower(s.name COLLATE \"C\") < lower($3 COLLATE \"C\") \
                       AND s.visibility = 'public' AND s.id > $1 \
                     ORDER BY s.id LIMIT $4"
                ),
                &[&after, &prefix, &end, &fetch],
            )
            .await?
        }
    };
    let servers = rows
        .iter()
        .map(|row| server_row(row).map(|r| r.summary))
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(servers, limit, |s| s.id.0.clone()))
}

/// How many servers `owner` owns.
pub async fn servers_owned_by(c: &impl GenericClient, owner: &UserId) -> Result<u32> {
    if !storable(owner.as_str()) {
        return Ok(0);
    }
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM servers WHERE owner_id = $1",
            &[&owner.as_str()],
        )
        .await?
        .try_get(0)?;
    Ok(to_u32(n))
}

/// `user`'s role in `server`, if a member.
pub async fn role(
    c: &impl GenericClient,
    server: &ServerId,
    user: &UserId,
) -> Result<Option<signalbox_protocol::http::MemberRole>> {
    if !(storable(server.as_str()) && storable(user.as_str())) {
        return Ok(None);
    }
    Ok(c.query_opt(
        "SELECT role FROM members WHERE server_id = $1 AND user_id = $2",
        &[&server.as_str(), &user.as_str()],
    )
    .await?
    .map(|row| row.try_get::<_, String>(0))
    .transpose()?
    .map(|text| parse_role(&text)))
}

/// The members of `server` by user id.
pub async fn list_members(
    c: &impl GenericClient,
    server: &ServerId,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<Membership>> {
    if !storable(server.as_str()) {
        return Ok(empty());
    }
    let rows = c
        .query(
            "SELECT user_id, role FROM members WHERE server_id = $1 AND user_id > $2 \
             ORDER BY user_id LIMIT $3",
            &[&server.as_str(), &after(cursor), &(i64::from(limit) + 1)],
        )
        .await?;
    let members = rows
        .iter()
        .map(|row| {
            Ok(Membership {
                server_id: server.clone(),
                user_id: UserId(row.try_get(0)?),
                role: parse_role(row.try_get::<_, &str>(1)?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(members, limit, |m| m.user_id.0.clone()))
}

/// Whether `user` is banned from `server`.
pub async fn is_banned(c: &impl GenericClient, server: &ServerId, user: &UserId) -> Result<bool> {
    if !(storable(server.as_str()) && storable(user.as_str())) {
        return Ok(false);
    }
    Ok(c.query_one(
        "SELECT EXISTS (SELECT 1 FROM bans WHERE server_id = $1 AND user_id = $2)",
        &[&server.as_str(), &user.as_str()],
    )
    .await?
    .try_get(0)?)
}

/// The bans of `server` by user id.
pub async fn list_bans(
    c: &impl GenericClient,
    server: &ServerId,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<Ban>> {
    if !storable(server.as_str()) {
        return Ok(empty());
    }
    let rows = c
        .query(
            "SELECT user_id, reason, banned_by, created_at FROM bans \
             WHERE server_id = $1 AND user_id > $2 ORDER BY user_id LIMIT $3",
            &[&server.as_str(), &after(cursor), &(i64::from(limit) + 1)],
        )
        .await?;
    let bans = rows
        .iter()
        .map(|row| {
            Ok(Ban {
                user_id: UserId(row.try_get(0)?),
                reason: row.try_get(1)?,
                banned_by: UserId(row.try_get(2)?),
                created_at: TimestampMs(row.try_get(3)?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(bans, limit, |b| b.user_id.0.clone()))
}

/// An invite row, if it exists.
pub async fn invite(c: &impl GenericClient, code: &str) -> Result<Option<InviteRecord>> {
    if !storable(code) {
        return Ok(None);
    }
    let Some(row) = c
        .query_opt(
            "SELECT code, server_id, created_by, created_at, expires_at, max_uses, uses, revoked \
             FROM invites WHERE code = $1",
            &[&code],
        )
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(InviteRecord {
        invite: Invite {
            code: row.try_get(0)?,
            server_id: ServerId(row.try_get(1)?),
            created_by: UserId(row.try_get(2)?),
            created_at: TimestampMs(row.try_get(3)?),
            expires_at: row.try_get::<_, Option<i64>>(4)?.map(TimestampMs),
            max_uses: row.try_get::<_, Option<i64>>(5)?.map(to_u32),
            uses: to_u32(row.try_get(6)?),
        },
        revoked: row.try_get(7)?,
    }))
}

const JOIN_REQUEST_COLUMNS: &str =
    "id, server_id, user_id, message, status, created_at, decided_at";

fn join_request_row(row: &Row) -> Result<JoinRequest> {
    Ok(JoinRequest {
        id: row.try_get(0)?,
        server_id: ServerId(row.try_get(1)?),
        user_id: UserId(row.try_get(2)?),
        message: row.try_get(3)?,
        status: parse_status(row.try_get::<_, &str>(4)?),
        created_at: TimestampMs(row.try_get(5)?),
        decided_at: row.try_get::<_, Option<i64>>(6)?.map(TimestampMs),
    })
}

/// A join request, if it exists.
pub async fn join_request(c: &impl GenericClient, id: &str) -> Result<Option<JoinRequest>> {
    if !storable(id) {
        return Ok(None);
    }
    c.query_opt(
        &format!("SELECT {JOIN_REQUEST_COLUMNS} FROM join_requests WHERE id = $1"),
        &[&id],
    )
    .await?
    .as_ref()
    .map(join_request_row)
    .transpose()
}

/// The pending join requests of `server` by id.
pub async fn pending_join_requests(
    c: &impl GenericClient,
    server: &ServerId,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<JoinRequest>> {
    if !storable(server.as_str()) {
        return Ok(empty());
    }
    let rows = c
        .query(
            &format!(
                "SELECT {JOIN_REQUEST_COLUMNS} FROM join_requests \
                 WHERE server_id = $1 AND status = 'pending' AND id > $2 ORDER BY id LIMIT $3"
            ),
            &[&server.as_str(), &after(cursor), &(i64::from(limit) + 1)],
        )
        .await?;
    let requests = rows
        .iter()
        .map(join_request_row)
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(requests, limit, |r| r.id.clone()))
}

/// A user's public profile, if the user has a row.
pub async fn user_profile(c: &impl GenericClient, user: &UserId) -> Result<Option<UserProfile>> {
    if !storable(user.as_str()) {
        return Ok(None);
    }
    let Some(row) = c
        .query_opt(
            "SELECT id, display_name, description, profile_updated_at FROM users WHERE id = $1",
            &[&user.as_str()],
        )
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(UserProfile {
        oder_id: UserId(row.try_get(0)?),
        display_name: row.try_get(1)?,
        description: row.try_get(2)?,
        profile_updated_at: row.try_get::<_, Option<i64>>(3)?.map(TimestampMs),
        status: None,
    }))
}

/// The user bound to `public_key`, if any.
pub async fn user_by_public_key(
    c: &impl GenericClient,
    public_key: &str,
) -> Result<Option<UserId>> {
    if !storable(public_key) {
        return Ok(None);
    }
    Ok(
        c.query_opt("SELECT id FROM users WHERE public_key = $1", &[&public_key])
            .await?
            .map(|row| row.try_get(0).map(UserId))
            .transpose()?,
    )
}

/// The public key `user` is bound to, if any.
pub async fn bound_public_key(c: &impl GenericClient, user: &UserId) -> Result<Option<String>> {
    if !storable(user.as_str()) {
        return Ok(None);
    }
    Ok(c.query_opt(
        "SELECT public_key FROM users WHERE id = $1",
        &[&user.as_str()],
    )
    .await?
    .map(|row| row.try_get::<_, Option<String>>(0))
    .transpose()?
    .flatten())
}

/// The games by id.
pub async fn list_games(
    c: &impl GenericClient,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<Game>> {
    let rows = c
        .query(
            "SELECT id, name, executables, icon_url, updated_at FROM games \
             WHERE id > $1 ORDER BY id LIMIT $2",
            &[&after(cursor), &(i64::from(limit) + 1)],
        )
        .await?;
    let games = rows
        .iter()
        .map(|row| {
            Ok(Game {
                id: row.try_get(0)?,
                name: row.try_get(1)?,
                executables: json_list(row.try_get(2)?),
                icon_url: row.try_get(3)?,
                updated_at: TimestampMs(row.try_get(4)?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(games, limit, |g| g.id.clone()))
}

fn decode_manifest(json: &str) -> Result<PluginManifest> {
    serde_json::from_str(json)
        .map_err(|e| DirectoryError::Conflict(format!("stored plugin manifest is corrupt: {e}")))
}

/// A server's plugin manifests by plugin id.
pub async fn plugin_manifests(
    c: &impl GenericClient,
    server: &ServerId,
) -> Result<Vec<PluginManifest>> {
    if !storable(server.as_str()) {
        return Ok(Vec::new());
    }
    c.query(
        "SELECT manifest FROM plugin_manifests WHERE server_id = $1 ORDER BY plugin_id",
        &[&server.as_str()],
    )
    .await?
    .iter()
    .map(|row| decode_manifest(row.try_get(0)?))
    .collect()
}

/// One plugin manifest, if registered.
pub async fn plugin_manifest(
    c: &impl GenericClient,
    server: &ServerId,
    plugin: &PluginId,
) -> Result<Option<PluginManifest>> {
    if !(storable(server.as_str()) && storable(plugin.as_str())) {
        return Ok(None);
    }
    c.query_opt(
        "SELECT manifest FROM plugin_manifests WHERE server_id = $1 AND plugin_id = $2",
        &[&server.as_str(), &plugin.as_str()],
    )
    .await?
    .map(|row| decode_manifest(row.try_get(0)?))
    .transpose()
}

/// The record of `scope` made after `since`, if any.
pub async fn idempotency_record(
    c: &impl GenericClient,
    scope: &IdempotencyScope,
    since: TimestampMs,
) -> Result<Option<IdempotencyRecord>> {
    if !(storable(&scope.user) && storable(&scope.route) && storable(&scope.key)) {
        return Ok(None);
    }
    let Some(row) = c
        .query_opt(
            "SELECT request_hash, status, response FROM idempotency_records \
             WHERE user_id = $1 AND route = $2 AND key = $3 AND created_at > $4",
            &[&scope.user, &scope.route, &scope.key, &since.0],
        )
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(IdempotencyRecord {
        request_hash: row.try_get(0)?,
        status: u16::try_from(row.try_get::<_, i32>(1)?).unwrap_or(500),
        response: row.try_get(2)?,
    }))
}

/// The facts the access rules decide on (see [`crate::directory::access::facts`]).
pub async fn facts(
    c: &impl GenericClient,
    server_id: &ServerId,
    user: Option<&UserId>,
    invite_code: Option<&str>,
) -> Result<AccessFacts> {
    let Some(record) = server(c, server_id).await? else {
        return Ok(AccessFacts::default());
    };
    let (banned, role) = match user {
        Some(user) => (
            is_banned(c, server_id, user).await?,
            role(c, server_id, user).await?,
        ),
        None => (false, None),
    };
    let invite = match invite_code {
        Some(code) => invite(c, code).await?,
        None => None,
    };
    Ok(AccessFacts {
        server: Some(record),
        banned,
        role,
        invite,
    })
}
