//! Writes to the directory, one typed function per action.
//!
//! Never decides who may act (routes ask [`super::access`] first), never sees a plain-text
//! password (callers pass Argon2 hashes), and never opens or commits a transaction: callers run
//! each function inside the one `BEGIN IMMEDIATE` transaction of [`super::db::Db::write`], which
//! commits before the caller answers success (and, for an `Idempotency-Key`, stores the answer
//! in that same transaction).

use rusqlite::{Connection, params};
use signalbox_protocol::http::{
    Ban, CreateServerRequest, Game, Invite, JoinRequest, JoinRequestStatus, MemberRole, Membership,
    ServerSummary, ServerVisibility, UpdateServerRequest, UpsertGameRequest,
};
use signalbox_protocol::{ServerId, TimestampMs, UserId};

use super::{DirectoryError, queries};

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

/// Records (or refreshes) a user seen by auth.
pub fn upsert_user(
    conn: &Connection,
    user: &UserId,
    display_name: Option<&str>,
    public_key: Option<&str>,
    guest: bool,
    now: TimestampMs,
) -> Result<(), DirectoryError> {
    conn.execute(
        "INSERT INTO users (id, display_name, public_key, guest, created_at, profile_updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN ?2 IS NULL THEN NULL ELSE ?5 END) \
         ON CONFLICT (id) DO UPDATE SET \
           display_name = coalesce(excluded.display_name, users.display_name), \
           public_key = coalesce(users.public_key, excluded.public_key)",
        params![user.as_str(), display_name, public_key, guest, now.0],
    )?;
    Ok(())
}

/// Refreshes the display name of a user that has a row; creates nothing (ephemeral identities
/// get a row only when they own or join something).
pub fn rename_known_user(
    conn: &Connection,
    user: &UserId,
    display_name: &str,
) -> Result<(), DirectoryError> {
    conn.execute(
        "UPDATE users SET display_name = ?2 WHERE id = ?1",
        params![user.as_str(), display_name],
    )?;
    Ok(())
}

/// Deletes what nobody can use any more: expired or used auth challenges, and ephemeral
/// identities (guest or token-less rows) created before `idle_before` that own no server and
/// are members of none. Returns `(challenges, users)` deleted.
pub fn purge_unused(
    conn: &Connection,
    now: TimestampMs,
    idle_before: TimestampMs,
) -> Result<(usize, usize), DirectoryError> {
    let challenges = conn.execute(
        "DELETE FROM auth_challenges WHERE expires_at <= ?1 OR used_at IS NOT NULL",
        [now.0],
    )?;
    let users = conn.execute(
        "DELETE FROM users WHERE guest = 1 AND public_key IS NULL AND created_at < ?1 \
           AND NOT EXISTS (SELECT 1 FROM members m WHERE m.user_id = users.id) \
           AND NOT EXISTS (SELECT 1 FROM servers s WHERE s.owner_id = users.id)",
        [idle_before.0],
    )?;
    Ok((challenges, users))
}

/// Creates a server owned by `owner` (who becomes its first member, as owner).
pub fn create_server(
    conn: &Connection,
    id: ServerId,
    request: &CreateServerRequest,
    owner: &UserId,
    now: TimestampMs,
) -> Result<ServerSummary, DirectoryError> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM servers WHERE id = ?1)",
        [id.as_str()],
        |row| row.get(0),
    )?;
    if exists {
        return Err(DirectoryError::Conflict(format!(
            "server `{id}` already exists"
        )));
    }
    let visibility = request.visibility.unwrap_or(ServerVisibility::Public);
    let tags = request.tags.clone().unwrap_or_default();
    conn.execute(
        "INSERT INTO servers (id, name, description, tags, visibility, owner_id, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id.as_str(),
            request.name,
            request.description,
            json_list(&tags),
            visibility_text(visibility),
            owner.as_str(),
            now.0
        ],
    )?;
    conn.execute(
        "INSERT INTO members (server_id, user_id, role, joined_at) VALUES (?1, ?2, 'owner', ?3)",
        params![id.as_str(), owner.as_str(), now.0],
    )?;
    queries::server(conn, &id)?
        .map(|r| r.summary)
        .ok_or(DirectoryError::NotFound("server"))
}

/// Changes the fields of `request` that are present.
pub fn update_server(
    conn: &Connection,
    id: &ServerId,
    request: &UpdateServerRequest,
) -> Result<ServerSummary, DirectoryError> {
    let changed = conn.execute(
        "UPDATE servers SET name = coalesce(?2, name), \
           description = coalesce(?3, description), tags = coalesce(?4, tags), \
           visibility = coalesce(?5, visibility) WHERE id = ?1",
        params![
            id.as_str(),
            request.name,
            request.description,
            request.tags.as_deref().map(json_list),
            request.visibility.map(visibility_text)
        ],
    )?;
    if changed == 0 {
        return Err(DirectoryError::NotFound("server"));
    }
    queries::server(conn, id)?
        .map(|r| r.summary)
        .ok_or(DirectoryError::NotFound("server"))
}

/// Deletes a server with its members, bans, invites and join requests.
pub fn delete_server(conn: &Connection, id: &ServerId) -> Result<(), DirectoryError> {
    match conn.execute("DELETE FROM servers WHERE id = ?1", [id.as_str()])? {
        0 => Err(DirectoryError::NotFound("server")),
        _ => Ok(()),
    }
}

/// Sets (`Some(hash)`) or clears (`None`) the Argon2 hash of a server's password.
pub fn set_password_hash(
    conn: &Connection,
    id: &ServerId,
    hash: Option<&str>,
) -> Result<(), DirectoryError> {
    match conn.execute(
        "UPDATE servers SET password_hash = ?2 WHERE id = ?1",
        params![id.as_str(), hash],
    )? {
        0 => Err(DirectoryError::NotFound("server")),
        _ => Ok(()),
    }
}

/// Adds `user` with `role` to `server`, keeping a higher role the user already has.
pub fn add_member(
    conn: &Connection,
    server: &ServerId,
    user: &UserId,
    role: MemberRole,
    now: TimestampMs,
) -> Result<Membership, DirectoryError> {
    conn.execute(
        "INSERT INTO members (server_id, user_id, role, joined_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (server_id, user_id) DO NOTHING",
        params![server.as_str(), user.as_str(), role_text(role), now.0],
    )?;
    let role = queries::role(conn, server, user)?.ok_or(DirectoryError::NotFound("member"))?;
    Ok(Membership {
        server_id: server.clone(),
        user_id: user.clone(),
        role,
    })
}

/// Changes the role of an existing member to `moderator` or `member`; the owner's role and
/// ownership itself never change here.
pub fn set_role(
    conn: &Connection,
    server: &ServerId,
    user: &UserId,
    role: MemberRole,
) -> Result<Membership, DirectoryError> {
    if role == MemberRole::Owner {
        return Err(DirectoryError::Forbidden(
            "ownership cannot be given".into(),
        ));
    }
    match queries::role(conn, server, user)? {
        None => return Err(DirectoryError::NotFound("member")),
        Some(MemberRole::Owner) => {
            return Err(DirectoryError::Forbidden(
                "the owner's role cannot change".into(),
            ));
        }
        Some(_) => {}
    }
    conn.execute(
        "UPDATE members SET role = ?3 WHERE server_id = ?1 AND user_id = ?2",
        params![server.as_str(), user.as_str(), role_text(role)],
    )?;
    Ok(Membership {
        server_id: server.clone(),
        user_id: user.clone(),
        role,
    })
}

/// Removes a member (leaving or being removed). The owner cannot leave their server.
pub fn remove_member(
    conn: &Connection,
    server: &ServerId,
    user: &UserId,
) -> Result<(), DirectoryError> {
    match queries::role(conn, server, user)? {
        None => Err(DirectoryError::NotFound("member")),
        Some(MemberRole::Owner) => Err(DirectoryError::Forbidden(
            "the owner cannot leave; delete the server instead".into(),
        )),
        Some(_) => {
            conn.execute(
                "DELETE FROM members WHERE server_id = ?1 AND user_id = ?2",
                [server.as_str(), user.as_str()],
            )?;
            Ok(())
        }
    }
}

/// Bans `user` from `server` and removes their membership. The owner cannot be banned.
pub fn ban(
    conn: &Connection,
    server: &ServerId,
    user: &UserId,
    reason: Option<&str>,
    by: &UserId,
    now: TimestampMs,
) -> Result<Ban, DirectoryError> {
    if queries::role(conn, server, user)? == Some(MemberRole::Owner) {
        return Err(DirectoryError::Forbidden(
            "the owner cannot be banned".into(),
        ));
    }
    conn.execute(
        "INSERT INTO bans (server_id, user_id, reason, banned_by, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (server_id, user_id) \
         DO UPDATE SET reason = excluded.reason, banned_by = excluded.banned_by",
        params![server.as_str(), user.as_str(), reason, by.as_str(), now.0],
    )?;
    conn.execute(
        "DELETE FROM members WHERE server_id = ?1 AND user_id = ?2",
        [server.as_str(), user.as_str()],
    )?;
    Ok(Ban {
        user_id: user.clone(),
        reason: reason.map(str::to_owned),
        banned_by: by.clone(),
        created_at: now,
    })
}

/// Lifts a ban; `NotFound` when there was none.
pub fn unban(conn: &Connection, server: &ServerId, user: &UserId) -> Result<(), DirectoryError> {
    match conn.execute(
        "DELETE FROM bans WHERE server_id = ?1 AND user_id = ?2",
        [server.as_str(), user.as_str()],
    )? {
        0 => Err(DirectoryError::NotFound("ban")),
        _ => Ok(()),
    }
}

/// Stores a new invite with an already generated, unguessable `code`.
pub fn create_invite(conn: &Connection, invite: &Invite) -> Result<(), DirectoryError> {
    conn.execute(
        "INSERT INTO invites (code, server_id, created_by, created_at, expires_at, max_uses) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            invite.code,
            invite.server_id.as_str(),
            invite.created_by.as_str(),
            invite.created_at.0,
            invite.expires_at.map(|t| t.0),
            invite.max_uses
        ],
    )?;
    Ok(())
}

/// Uses the invite `code`: `user` becomes a member of its server (a use is counted only for a
/// new member).
pub fn accept_invite(
    conn: &Connection,
    code: &str,
    user: &UserId,
    now: TimestampMs,
) -> Result<Membership, DirectoryError> {
    let record = queries::invite(conn, code)?.ok_or(DirectoryError::NotFound("invite"))?;
    if let Some(reason) = record.unusable_reason(now) {
        return Err(DirectoryError::Gone(reason.into()));
    }
    let server = record.invite.server_id;
    if queries::is_banned(conn, &server, user)? {
        return Err(DirectoryError::Forbidden("banned from this server".into()));
    }
    if queries::role(conn, &server, user)?.is_none() {
        conn.execute("UPDATE invites SET uses = uses + 1 WHERE code = ?1", [code])?;
    }
    let membership = add_member(conn, &server, user, MemberRole::Member, now)?;
    Ok(membership)
}

/// Revokes the invite `code`.
pub fn revoke_invite(conn: &Connection, code: &str) -> Result<(), DirectoryError> {
    match conn.execute("UPDATE invites SET revoked = 1 WHERE code = ?1", [code])? {
        0 => Err(DirectoryError::NotFound("invite")),
        _ => Ok(()),
    }
}

/// Records a pending join request; a member, or a user with a pending request, conflicts.
pub fn create_join_request(conn: &Connection, request: &JoinRequest) -> Result<(), DirectoryError> {
    if queries::role(conn, &request.server_id, &request.user_id)?.is_some() {
        return Err(DirectoryError::Conflict("already a member".into()));
    }
    let inserted = conn.execute(
        "INSERT INTO join_requests (id, server_id, user_id, message, status, created_at) \
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5) ON CONFLICT DO NOTHING",
        params![
            request.id,
            request.server_id.as_str(),
            request.user_id.as_str(),
            request.message,
            request.created_at.0
        ],
    )?;
    if inserted == 0 {
        return Err(DirectoryError::Conflict(
            "a join request is already pending".into(),
        ));
    }
    Ok(())
}

/// Moves a pending join request to `status` (approved adds the member).
pub fn decide_join_request(
    conn: &Connection,
    id: &str,
    status: JoinRequestStatus,
    by: &UserId,
    now: TimestampMs,
) -> Result<JoinRequest, DirectoryError> {
    let request =
        queries::join_request(conn, id)?.ok_or(DirectoryError::NotFound("join request"))?;
    if request.status != JoinRequestStatus::Pending {
        return Err(DirectoryError::Conflict(format!(
            "the join request is already {}",
            status_text(request.status)
        )));
    }
    conn.execute(
        "UPDATE join_requests SET status = ?2, decided_at = ?3, decided_by = ?4 WHERE id = ?1",
        params![id, status_text(status), now.0, by.as_str()],
    )?;
    if status == JoinRequestStatus::Approved {
        add_member(
            conn,
            &request.server_id,
            &request.user_id,
            MemberRole::Member,
            now,
        )?;
    }
    queries::join_request(conn, id)?.ok_or(DirectoryError::NotFound("join request"))
}

/// Creates or replaces the game `id`.
pub fn upsert_game(
    conn: &Connection,
    id: &str,
    request: &UpsertGameRequest,
    now: TimestampMs,
) -> Result<Game, DirectoryError> {
    let executables = request.executables.clone().unwrap_or_default();
    conn.execute(
        "INSERT INTO games (id, name, executables, icon_url, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
         executables = excluded.executables, icon_url = excluded.icon_url, \
         updated_at = excluded.updated_at",
        params![
            id,
            request.name,
            json_list(&executables),
            request.icon_url,
            now.0
        ],
    )?;
    Ok(Game {
        id: id.to_owned(),
        name: request.name.clone(),
        executables,
        icon_url: request.icon_url.clone(),
        updated_at: now,
    })
}

/// Removes the game `id`.
pub fn delete_game(conn: &Connection, id: &str) -> Result<(), DirectoryError> {
    match conn.execute("DELETE FROM games WHERE id = ?1", [id])? {
        0 => Err(DirectoryError::NotFound("game")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::db::open_in_memory;

    const NOW: TimestampMs = TimestampMs(1_790_000_000_000);

    fn user(id: &str) -> UserId {
        UserId::from(id)
    }

    fn server(conn: &Connection, id: &str, visibility: ServerVisibility) -> ServerSummary {
        let request = CreateServerRequest {
            id: None,
            name: format!("Server {id}"),
            description: Some("about rust".into()),
            tags: Some(vec!["rust".into()]),
            visibility: Some(visibility),
        };
        create_server(conn, ServerId::from(id), &request, &user("ada"), NOW).expect("create")
    }

    #[test]
    fn create_read_update_delete_server() {
        let conn = open_in_memory().expect("db");
        let created = server(&conn, "s1", ServerVisibility::Public);
        assert_eq!(created.member_count, 1);
        assert_eq!(created.owner_id, user("ada"));
        assert!(!created.has_password);
        assert_eq!(
            queries::role(&conn, &created.id, &user("ada")).expect("role"),
            Some(MemberRole::Owner)
        );
        let again = CreateServerRequest {
            id: None,
            name: "x".into(),
            description: None,
            tags: None,
            visibility: None,
        };
        assert!(matches!(
            create_server(&conn, created.id.clone(), &again, &user("bob"), NOW),
            Err(DirectoryError::Conflict(_))
        ));
        let update = UpdateServerRequest {
            name: Some("Renamed".into()),
            description: None,
            tags: None,
            visibility: Some(ServerVisibility::Private),
        };
        let updated = update_server(&conn, &created.id, &update).expect("update");
        assert_eq!(updated.name, "Renamed");
        assert_eq!(updated.description.as_deref(), Some("about rust"));
        assert_eq!(updated.visibility, ServerVisibility::Private);
        delete_server(&conn, &created.id).expect("delete");
        assert!(queries::server(&conn, &created.id).expect("read").is_none());
        assert!(matches!(
            delete_server(&conn, &created.id),
            Err(DirectoryError::NotFound(_))
        ));
    }

    #[test]
    fn public_listing_paginates_and_searches() {
        let conn = open_in_memory().expect("db");
        for id in ["a", "b", "c"] {
            server(&conn, id, ServerVisibility::Public);
        }
        server(&conn, "hidden", ServerVisibility::Private);
        let page = queries::list_public_servers(&conn, None, 2, None).expect("page 1");
        assert_eq!(page.items.len(), 2);
        let next = page.next_cursor.expect("more");
        let page2 = queries::list_public_servers(&conn, None, 2, Some(&next)).expect("page 2");
        assert_eq!(page2.items.len(), 1);
        assert_eq!(page2.next_cursor, None);
        let found = queries::list_public_servers(&conn, Some("Server B"), 10, None).expect("q");
        assert_eq!(found.items.len(), 1);
        assert_eq!(found.items[0].id, ServerId::from("b"));
    }

    #[test]
    fn purge_removes_expired_challenges_and_unused_ephemeral_identities_only() {
        use crate::directory::credentials;
        let conn = open_in_memory().expect("db");
        let (old, later) = (TimestampMs(10), TimestampMs(10_000));
        credentials::insert_challenge(&conn, "expired", "k", "c", TimestampMs(50)).expect("c1");
        credentials::insert_challenge(&conn, "live", "k", "c", TimestampMs(5_000)).expect("c2");
        credentials::insert_challenge(&conn, "used", "k", "c", TimestampMs(5_000)).expect("c3");
        credentials::consume_challenge(&conn, "used", TimestampMs(60)).expect("use");
        for id in ["idle-guest", "member-guest", "owner-guest"] {
            upsert_user(&conn, &user(id), Some("G"), None, true, old).expect("guest");
        }
        upsert_user(&conn, &user("fresh-guest"), None, None, true, later).expect("fresh");
        upsert_user(&conn, &user("keyed"), None, Some("pk"), false, old).expect("keyed");
        let request = CreateServerRequest {
            id: None,
            name: "s".into(),
            description: None,
            tags: None,
            visibility: Some(ServerVisibility::Public),
        };
        let id = ServerId::from("s");
        create_server(&conn, id.clone(), &request, &user("owner-guest"), old).expect("s");
        add_member(&conn, &id, &user("member-guest"), MemberRole::Member, old).expect("m");

        let purged = purge_unused(&conn, TimestampMs(100), TimestampMs(1_000)).expect("purge");
        assert_eq!(
            purged,
            (2, 1),
            "the expired and the used challenge; the idle guest"
        );
        assert!(
            queries::user_profile(&conn, &user("idle-guest"))
                .expect("q")
                .is_none()
        );
        for kept in ["member-guest", "owner-guest", "fresh-guest", "keyed"] {
            assert!(
                queries::user_profile(&conn, &user(kept))
                    .expect("q")
                    .is_some(),
                "{kept} kept"
            );
        }
        assert_eq!(
            purge_unused(&conn, TimestampMs(100), TimestampMs(1_000)).expect("again"),
            (0, 0)
        );
    }

    #[test]
    fn search_is_a_literal_case_insensitive_prefix_over_an_index() {
        let conn = open_in_memory().expect("db");
        let owner = UserId::from("o");
        for (id, name) in [
            ("1", "50% off"),
            ("2", "500 club"),
            ("3", "a_c"),
            ("4", "abc"),
            ("5", r"back\slash"),
            ("6", "Abcd"),
        ] {
            let request = CreateServerRequest {
                id: None,
                name: name.into(),
                description: None,
                tags: None,
                visibility: Some(ServerVisibility::Public),
            };
            create_server(&conn, ServerId::from(id), &request, &owner, TimestampMs(1))
                .expect("create");
        }
        let ids = |q: &str| -> Vec<String> {
            queries::list_public_servers(&conn, Some(q), 50, None)
                .expect("search")
                .items
                .into_iter()
                .map(|s| s.id.0)
                .collect()
        };
        assert_eq!(ids("50%"), ["1"], "% is a plain character");
        assert_eq!(ids("a_"), ["3"], "_ is a plain character");
        assert_eq!(ids("%"), Vec::<String>::new());
        assert_eq!(ids(r"back\"), ["5"], "a backslash is a plain character");
        assert_eq!(ids("ABC"), ["4", "6"], "ASCII case is ignored");
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", queries::search_sql()))
            .expect("plan")
            .query_map(rusqlite::params!["", "a", "b", 10], |row| {
                row.get::<_, String>(3)
            })
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        assert!(
            plan.iter().any(|step| step.contains("servers_name_nocase")),
            "the search uses the name index: {plan:?}"
        );
    }

    #[test]
    fn bans_remove_membership_and_spare_the_owner() {
        let conn = open_in_memory().expect("db");
        let s = server(&conn, "s", ServerVisibility::Public);
        add_member(&conn, &s.id, &user("bob"), MemberRole::Member, NOW).expect("member");
        ban(&conn, &s.id, &user("bob"), Some("spam"), &user("ada"), NOW).expect("ban");
        assert!(queries::is_banned(&conn, &s.id, &user("bob")).expect("banned"));
        assert_eq!(
            queries::role(&conn, &s.id, &user("bob")).expect("role"),
            None
        );
        assert!(matches!(
            ban(&conn, &s.id, &user("ada"), None, &user("ada"), NOW),
            Err(DirectoryError::Forbidden(_))
        ));
        let bans = queries::list_bans(&conn, &s.id, 10, None).expect("list");
        assert_eq!(bans.items.len(), 1);
        unban(&conn, &s.id, &user("bob")).expect("unban");
        assert!(matches!(
            unban(&conn, &s.id, &user("bob")),
            Err(DirectoryError::NotFound(_))
        ));
    }

    #[test]
    fn roles_change_but_never_the_owner() {
        let conn = open_in_memory().expect("db");
        let s = server(&conn, "s", ServerVisibility::Public);
        add_member(&conn, &s.id, &user("bob"), MemberRole::Member, NOW).expect("member");
        let m = set_role(&conn, &s.id, &user("bob"), MemberRole::Moderator).expect("promote");
        assert_eq!(m.role, MemberRole::Moderator);
        assert!(matches!(
            set_role(&conn, &s.id, &user("ada"), MemberRole::Member),
            Err(DirectoryError::Forbidden(_))
        ));
        assert!(matches!(
            set_role(&conn, &s.id, &user("bob"), MemberRole::Owner),
            Err(DirectoryError::Forbidden(_))
        ));
        assert!(matches!(
            set_role(&conn, &s.id, &user("carol"), MemberRole::Member),
            Err(DirectoryError::NotFound(_))
        ));
        let members = queries::list_members(&conn, &s.id, 1, None).expect("list");
        assert_eq!(members.items.len(), 1);
        assert!(members.next_cursor.is_some());
        remove_member(&conn, &s.id, &user("bob")).expect("leave");
        assert!(matches!(
            remove_member(&conn, &s.id, &user("ada")),
            Err(DirectoryError::Forbidden(_))
        ));
    }

    #[test]
    fn invites_count_uses_and_expire() {
        let conn = open_in_memory().expect("db");
        let s = server(&conn, "s", ServerVisibility::Private);
        let invite = Invite {
            code: "code1".into(),
            server_id: s.id.clone(),
            created_by: user("ada"),
            created_at: NOW,
            expires_at: Some(TimestampMs(NOW.0 + 1000)),
            max_uses: Some(1),
            uses: 0,
        };
        create_invite(&conn, &invite).expect("create");
        let m = accept_invite(&conn, "code1", &user("bob"), NOW).expect("accept");
        assert_eq!(m.role, MemberRole::Member);
        assert!(matches!(
            accept_invite(&conn, "code1", &user("carol"), NOW),
            Err(DirectoryError::Gone(_))
        ));
        let expiring = Invite {
            code: "code2".into(),
            max_uses: None,
            ..invite
        };
        create_invite(&conn, &expiring).expect("create");
        assert!(matches!(
            accept_invite(&conn, "code2", &user("carol"), TimestampMs(NOW.0 + 1000)),
            Err(DirectoryError::Gone(_))
        ));
        revoke_invite(&conn, "code2").expect("revoke");
        assert!(matches!(
            accept_invite(&conn, "nope", &user("carol"), NOW),
            Err(DirectoryError::NotFound(_))
        ));
    }

    #[test]
    fn join_requests_are_decided_once() {
        let conn = open_in_memory().expect("db");
        let s = server(&conn, "s", ServerVisibility::Private);
        let request = JoinRequest {
            id: "r1".into(),
            server_id: s.id.clone(),
            user_id: user("bob"),
            message: None,
            status: JoinRequestStatus::Pending,
            created_at: NOW,
            decided_at: None,
        };
        create_join_request(&conn, &request).expect("create");
        let dup = JoinRequest {
            id: "r2".into(),
            ..request.clone()
        };
        assert!(matches!(
            create_join_request(&conn, &dup),
            Err(DirectoryError::Conflict(_))
        ));
        let pending = queries::pending_join_requests(&conn, &s.id, 10, None).expect("list");
        assert_eq!(pending.items.len(), 1);
        let approved =
            decide_join_request(&conn, "r1", JoinRequestStatus::Approved, &user("ada"), NOW)
                .expect("approve");
        assert_eq!(approved.status, JoinRequestStatus::Approved);
        assert_eq!(
            queries::role(&conn, &s.id, &user("bob")).expect("role"),
            Some(MemberRole::Member)
        );
        assert!(matches!(
            decide_join_request(&conn, "r1", JoinRequestStatus::Rejected, &user("ada"), NOW),
            Err(DirectoryError::Conflict(_))
        ));
    }

    #[test]
    fn users_and_games() {
        let conn = open_in_memory().expect("db");
        upsert_user(&conn, &user("g1"), Some("Guest"), None, true, NOW).expect("user");
        let profile = queries::user_profile(&conn, &user("g1"))
            .expect("read")
            .expect("some");
        assert_eq!(profile.display_name.as_deref(), Some("Guest"));
        upsert_user(&conn, &user("k1"), None, Some("pk"), false, NOW).expect("user");
        assert_eq!(
            queries::user_by_public_key(&conn, "pk").expect("read"),
            Some(user("k1"))
        );
        let game = UpsertGameRequest {
            name: "Factorio".into(),
            executables: Some(vec!["factorio".into()]),
            icon_url: None,
        };
        upsert_game(&conn, "factorio", &game, NOW).expect("game");
        assert_eq!(
            queries::list_games(&conn, 10, None)
                .expect("list")
                .items
                .len(),
            1
        );
        delete_game(&conn, "factorio").expect("delete");
        assert!(queries::game(&conn, "factorio").expect("read").is_none());
    }
}
