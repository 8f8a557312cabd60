//! Reads of the directory, one typed function per question.
//!
//! Never writes. Lists are keyset-paginated: `cursor` is the last key of the previous page.

use rusqlite::{Connection, OptionalExtension, Row, params};
use signalbox_protocol::http::{
    Ban, Game, Invite, JoinRequest, JoinRequestStatus, MemberRole, Membership, ServerSummary,
    ServerVisibility, UserProfile,
};
use signalbox_protocol::{ServerId, TimestampMs, UserId};

use super::Page;

/// A server row, including what the directory never shows (its password hash).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerRecord {
    /// The public part.
    pub summary: ServerSummary,
    /// The Argon2 hash of its password, if it has one.
    pub password_hash: Option<String>,
}

/// An invite row, including whether it was revoked.
#[derive(Debug, Clone, PartialEq)]
pub struct InviteRecord {
    /// The invite.
    pub invite: Invite,
    /// Whether it was revoked.
    pub revoked: bool,
}

impl InviteRecord {
    /// Why the invite cannot be used at `now`, if it cannot.
    pub fn unusable_reason(&self, now: TimestampMs) -> Option<&'static str> {
        if self.revoked {
            Some("the invite was revoked")
        } else if self.invite.expires_at.is_some_and(|t| t <= now) {
            Some("the invite has expired")
        } else if self.invite.max_uses.is_some_and(|m| self.invite.uses >= m) {
            Some("the invite is used up")
        } else {
            None
        }
    }
}

const SERVER_COLUMNS: &str = "s.id, s.name, s.description, s.tags, s.visibility, s.owner_id, \
     s.password_hash, s.created_at, (SELECT COUNT(*) FROM members m WHERE m.server_id = s.id)";

pub(crate) fn parse_visibility(text: &str) -> ServerVisibility {
    if text == "private" {
        ServerVisibility::Private
    } else {
        ServerVisibility::Public
    }
}

pub(crate) fn parse_role(text: &str) -> MemberRole {
    match text {
        "owner" => MemberRole::Owner,
        "moderator" => MemberRole::Moderator,
        _ => MemberRole::Member,
    }
}

pub(crate) fn parse_status(text: &str) -> JoinRequestStatus {
    match text {
        "approved" => JoinRequestStatus::Approved,
        "rejected" => JoinRequestStatus::Rejected,
        "withdrawn" => JoinRequestStatus::Withdrawn,
        _ => JoinRequestStatus::Pending,
    }
}

fn json_list(text: String) -> Vec<String> {
    serde_json::from_str(&text).unwrap_or_default()
}

fn server_row(row: &Row<'_>) -> rusqlite::Result<ServerRecord> {
    let password_hash: Option<String> = row.get(6)?;
    let members: i64 = row.get(8)?;
    Ok(ServerRecord {
        summary: ServerSummary {
            id: ServerId(row.get(0)?),
            name: row.get(1)?,
            description: row.get(2)?,
            tags: json_list(row.get(3)?),
            visibility: parse_visibility(&row.get::<_, String>(4)?),
            owner_id: UserId(row.get(5)?),
            has_password: password_hash.is_some(),
            member_count: u32::try_from(members).unwrap_or(u32::MAX),
            online_count: 0,
            created_at: TimestampMs(row.get(7)?),
        },
        password_hash,
    })
}

/// The server `id`, with its password hash.
pub fn server(conn: &Connection, id: &ServerId) -> rusqlite::Result<Option<ServerRecord>> {
    conn.query_row(
        &format!("SELECT {SERVER_COLUMNS} FROM servers s WHERE s.id = ?1"),
        [id.as_str()],
        server_row,
    )
    .optional()
}

/// The upper bound of a prefix range: no string starting with the prefix sorts at or above it
/// (U+10FFFF is the largest scalar value, and UTF-8 sorts by scalar value).
const PREFIX_END: char = char::MAX;

/// One page of public servers, optionally filtered by `search`: names starting with it,
/// ASCII-case-insensitively, taken literally (a range over the `servers_name_nocase` index, so
/// `%`, `_` and `\` are plain characters and no query scans the table). The caller bounds its
/// length (`security.maxSearchQueryChars`).
pub fn list_public_servers(
    conn: &Connection,
    search: Option<&str>,
    limit: u32,
    cursor: Option<&str>,
) -> rusqlite::Result<Page<ServerSummary>> {
    let after = cursor.unwrap_or("");
    let fetch = i64::from(limit) + 1;
    let rows = match search {
        None => {
            let mut stmt = conn.prepare(&format!(
                "SELECT {SERVER_COLUMNS} FROM servers s \
                 WHERE s.visibility = 'public' AND s.id > ?1 ORDER BY s.id LIMIT ?2"
            ))?;
            stmt.query_map(params![after, fetch], server_row)?
                .map(|r| r.map(|record| record.summary))
                .collect::<rusqlite::Result<Vec<_>>>()?
        }
        Some(prefix) => {
            let end = format!("{prefix}{PREFIX_END}");
            let mut stmt = conn.prepare(&search_sql())?;
            stmt.query_map(params![after, prefix, end, fetch], server_row)?
                .map(|r| r.map(|record| record.summary))
                .collect::<rusqlite::Result<Vec<_>>>()?
        }
    };
    Ok(Page::from_rows(rows, limit, |s| s.id.0.clone()))
}

/// The statement [`list_public_servers`] runs for a search (also read by the query-plan test).
pub fn search_sql() -> String {
    format!(
        "SELECT {SERVER_COLUMNS} FROM servers s INDEXED BY servers_name_nocase \
         WHERE s.name >= ?2 COLLATE NOCASE AND s.name < ?3 COLLATE NOCASE \
           AND s.visibility = 'public' AND s.id > ?1 \
         ORDER BY s.id LIMIT ?4"
    )
}

/// How many servers `owner` owns (over the `servers_owner` index).
pub fn servers_owned_by(conn: &Connection, owner: &UserId) -> rusqlite::Result<u32> {
    conn.query_row(
        "SELECT count(*) FROM servers WHERE owner_id = ?1",
        [owner.as_str()],
        |row| row.get(0),
    )
}

/// The role of `user` in `server`, if a member.
pub fn role(
    conn: &Connection,
    server: &ServerId,
    user: &UserId,
) -> rusqlite::Result<Option<MemberRole>> {
    conn.query_row(
        "SELECT role FROM members WHERE server_id = ?1 AND user_id = ?2",
        [server.as_str(), user.as_str()],
        |row| row.get::<_, String>(0),
    )
    .optional()
    .map(|r| r.map(|text| parse_role(&text)))
}

/// One page of the members of `server`, by user id.
pub fn list_members(
    conn: &Connection,
    server: &ServerId,
    limit: u32,
    cursor: Option<&str>,
) -> rusqlite::Result<Page<Membership>> {
    let mut stmt = conn.prepare(
        "SELECT user_id, role FROM members WHERE server_id = ?1 AND user_id > ?2 \
         ORDER BY user_id LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(
            params![server.as_str(), cursor.unwrap_or(""), i64::from(limit) + 1],
            |row| {
                Ok(Membership {
                    server_id: server.clone(),
                    user_id: UserId(row.get(0)?),
                    role: parse_role(&row.get::<_, String>(1)?),
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page::from_rows(rows, limit, |m| m.user_id.0.clone()))
}

/// Whether `user` is banned from `server`.
pub fn is_banned(conn: &Connection, server: &ServerId, user: &UserId) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM bans WHERE server_id = ?1 AND user_id = ?2)",
        [server.as_str(), user.as_str()],
        |row| row.get(0),
    )
}

fn ban_row(row: &Row<'_>) -> rusqlite::Result<Ban> {
    Ok(Ban {
        user_id: UserId(row.get(0)?),
        reason: row.get(1)?,
        banned_by: UserId(row.get(2)?),
        created_at: TimestampMs(row.get(3)?),
    })
}

/// One page of the bans of `server`, by user id.
pub fn list_bans(
    conn: &Connection,
    server: &ServerId,
    limit: u32,
    cursor: Option<&str>,
) -> rusqlite::Result<Page<Ban>> {
    let mut stmt = conn.prepare(
        "SELECT user_id, reason, banned_by, created_at FROM bans \
         WHERE server_id = ?1 AND user_id > ?2 ORDER BY user_id LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(
            params![server.as_str(), cursor.unwrap_or(""), i64::from(limit) + 1],
            ban_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page::from_rows(rows, limit, |b| b.user_id.0.clone()))
}

fn opt_u32(value: Option<i64>) -> Option<u32> {
    value.map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

/// The invite `code`.
pub fn invite(conn: &Connection, code: &str) -> rusqlite::Result<Option<InviteRecord>> {
    conn.query_row(
        "SELECT code, server_id, created_by, created_at, expires_at, max_uses, uses, revoked \
         FROM invites WHERE code = ?1",
        [code],
        |row| {
            Ok(InviteRecord {
                invite: Invite {
                    code: row.get(0)?,
                    server_id: ServerId(row.get(1)?),
                    created_by: UserId(row.get(2)?),
                    created_at: TimestampMs(row.get(3)?),
                    expires_at: row.get::<_, Option<i64>>(4)?.map(TimestampMs),
                    max_uses: opt_u32(row.get(5)?),
                    uses: opt_u32(row.get(6)?).unwrap_or(0),
                },
                revoked: row.get(7)?,
            })
        },
    )
    .optional()
}

fn join_request_row(row: &Row<'_>) -> rusqlite::Result<JoinRequest> {
    Ok(JoinRequest {
        id: row.get(0)?,
        server_id: ServerId(row.get(1)?),
        user_id: UserId(row.get(2)?),
        message: row.get(3)?,
        status: parse_status(&row.get::<_, String>(4)?),
        created_at: TimestampMs(row.get(5)?),
        decided_at: row.get::<_, Option<i64>>(6)?.map(TimestampMs),
    })
}

const JOIN_REQUEST_COLUMNS: &str =
    "id, server_id, user_id, message, status, created_at, decided_at";

/// The join request `id`.
pub fn join_request(conn: &Connection, id: &str) -> rusqlite::Result<Option<JoinRequest>> {
    conn.query_row(
        &format!("SELECT {JOIN_REQUEST_COLUMNS} FROM join_requests WHERE id = ?1"),
        [id],
        join_request_row,
    )
    .optional()
}

/// One page of the pending join requests of `server`.
pub fn pending_join_requests(
    conn: &Connection,
    server: &ServerId,
    limit: u32,
    cursor: Option<&str>,
) -> rusqlite::Result<Page<JoinRequest>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {JOIN_REQUEST_COLUMNS} FROM join_requests \
         WHERE server_id = ?1 AND status = 'pending' AND id > ?2 ORDER BY id LIMIT ?3"
    ))?;
    let rows = stmt
        .query_map(
            params![server.as_str(), cursor.unwrap_or(""), i64::from(limit) + 1],
            join_request_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page::from_rows(rows, limit, |r| r.id.clone()))
}

/// The last known public profile of `user` (without `status`: presence is the hub's).
pub fn user_profile(conn: &Connection, user: &UserId) -> rusqlite::Result<Option<UserProfile>> {
    conn.query_row(
        "SELECT id, display_name, description, profile_updated_at FROM users WHERE id = ?1",
        [user.as_str()],
        |row| {
            Ok(UserProfile {
                oder_id: UserId(row.get(0)?),
                display_name: row.get(1)?,
                description: row.get(2)?,
                profile_updated_at: row.get::<_, Option<i64>>(3)?.map(TimestampMs),
                status: None,
            })
        },
    )
    .optional()
}

/// The user bound to the Ed25519 `public_key`, if any.
pub fn user_by_public_key(conn: &Connection, public_key: &str) -> rusqlite::Result<Option<UserId>> {
    conn.query_row(
        "SELECT id FROM users WHERE public_key = ?1",
        [public_key],
        |row| Ok(UserId(row.get(0)?)),
    )
    .optional()
}

/// The public key `user` is bound to, if it is a key-bound identity.
pub fn bound_public_key(conn: &Connection, user: &UserId) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT public_key FROM users WHERE id = ?1",
        [user.as_str()],
        |row| row.get::<_, Option<String>>(0),
    )
    .optional()
    .map(Option::flatten)
}

fn game_row(row: &Row<'_>) -> rusqlite::Result<Game> {
    Ok(Game {
        id: row.get(0)?,
        name: row.get(1)?,
        executables: json_list(row.get(2)?),
        icon_url: row.get(3)?,
        updated_at: TimestampMs(row.get(4)?),
    })
}

/// The game `id`.
pub fn game(conn: &Connection, id: &str) -> rusqlite::Result<Option<Game>> {
    conn.query_row(
        "SELECT id, name, executables, icon_url, updated_at FROM games WHERE id = ?1",
        [id],
        game_row,
    )
    .optional()
}

/// One page of the games catalogue, by id.
pub fn list_games(
    conn: &Connection,
    limit: u32,
    cursor: Option<&str>,
) -> rusqlite::Result<Page<Game>> {
    let mut stmt = conn.prepare(
        "SELECT id, name, executables, icon_url, updated_at FROM games \
         WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(
            params![cursor.unwrap_or(""), i64::from(limit) + 1],
            game_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page::from_rows(rows, limit, |g| g.id.clone()))
}
