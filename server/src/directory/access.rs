//! The access rules: THE one place that decides who may join, view or moderate a server
//! (http.md, "Authorization for join_server"), and who may identify as an `oderId` (http.md,
//! Auth). The REST routes call it now; the WebSocket `identify` / `join_server` /
//! `view_server` handlers call it too.
//!
//! The rules, in order: a server is found or [`AccessDeniedReason::NotFound`]; a banned user is
//! refused; the owner, moderators and members are admitted; a public server without password
//! admits anyone identified; a password server admits a correct password; a private server
//! admits a valid invite for it and no one else.
//!
//! Never writes (accepting an invite is [`super::commands::accept_invite`]) and never decides
//! HTTP statuses. The outer `Result` is infrastructure (the database failed), the inner one is
//! the decision.

use rusqlite::Connection;
use signalbox_protocol::http::{MemberRole, ServerVisibility};
use signalbox_protocol::{AccessDeniedReason, ServerId, TimestampMs, UserId};

use super::{DirectoryError, queries};
use crate::auth::{Caller, password};
use crate::config::AuthMode;

/// Why a user was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The user has this role in the server.
    Role(MemberRole),
    /// The server is public (and the password, if any, was right).
    Public,
    /// A valid invite for this server was presented.
    Invite,
}

/// What a joining user presents besides their identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct JoinCredentials<'a> {
    /// The server's password, if given.
    pub password: Option<&'a str>,
    /// An invite code, if given.
    pub invite_code: Option<&'a str>,
}

/// A decision: admitted (and why) or refused (and why).
pub type Decision = Result<Access, AccessDeniedReason>;

/// May `user` join `server` with `credentials` at `now`?
pub fn join(
    conn: &Connection,
    server: &ServerId,
    user: &UserId,
    credentials: JoinCredentials<'_>,
    now: TimestampMs,
) -> Result<Decision, DirectoryError> {
    let Some(record) = queries::server(conn, server)? else {
        return Ok(Err(AccessDeniedReason::NotFound));
    };
    if queries::is_banned(conn, server, user)? {
        return Ok(Err(AccessDeniedReason::Banned));
    }
    if let Some(role) = queries::role(conn, server, user)? {
        return Ok(Ok(Access::Role(role)));
    }
    if let Some(code) = credentials.invite_code {
        let valid = queries::invite(conn, code)?.is_some_and(|invite| {
            invite.invite.server_id == *server && invite.unusable_reason(now).is_none()
        });
        return Ok(if valid {
            Ok(Access::Invite)
        } else {
            Err(AccessDeniedReason::InviteInvalid)
        });
    }
    match record.summary.visibility {
        ServerVisibility::Private => Ok(Err(AccessDeniedReason::Private)),
        ServerVisibility::Public => Ok(match (&record.password_hash, credentials.password) {
            (None, _) => Ok(Access::Public),
            (Some(_), None) => Err(AccessDeniedReason::PasswordRequired),
            (Some(hash), Some(given)) if password::verify(hash, given) => Ok(Access::Public),
            (Some(_), Some(_)) => Err(AccessDeniedReason::WrongPassword),
        }),
    }
}

/// May `user` see `server`'s details and roster without joining? Public servers: anyone not
/// banned; private servers: members only.
pub fn view(
    conn: &Connection,
    server: &ServerId,
    user: Option<&UserId>,
) -> Result<Decision, DirectoryError> {
    let Some(record) = queries::server(conn, server)? else {
        return Ok(Err(AccessDeniedReason::NotFound));
    };
    let role = match user {
        Some(user) => {
            if queries::is_banned(conn, server, user)? {
                return Ok(Err(AccessDeniedReason::Banned));
            }
            queries::role(conn, server, user)?
        }
        None => None,
    };
    Ok(match (role, record.summary.visibility) {
        (Some(role), _) => Ok(Access::Role(role)),
        (None, ServerVisibility::Public) => Ok(Access::Public),
        (None, ServerVisibility::Private) => Err(AccessDeniedReason::Private),
    })
}

/// Why an `identify` (claiming an `oderId` on a realtime connection) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifyDenied {
    /// `auth: required` and no valid token was presented.
    TokenRequired,
    /// The `oderId` is bound to a key and the token is not that key's (or there is none).
    BoundToAnotherKey,
    /// The token proves another identity than the one claimed.
    OtherIdentity,
}

/// May a connection presenting `caller` (its valid token, if any) identify as `claimed`?
/// `auth: open`: anyone may claim an unbound `oderId`; a key-bound one needs its key's token.
/// `auth: required`: a token is needed and must prove `claimed`.
pub fn identify(
    conn: &Connection,
    claimed: &UserId,
    caller: Option<&Caller>,
    mode: AuthMode,
) -> Result<Result<(), IdentifyDenied>, DirectoryError> {
    if let Some(caller) = caller {
        return Ok(if caller.user_id == *claimed {
            Ok(())
        } else {
            Err(IdentifyDenied::OtherIdentity)
        });
    }
    if mode == AuthMode::Required {
        return Ok(Err(IdentifyDenied::TokenRequired));
    }
    Ok(match queries::bound_public_key(conn, claimed)? {
        Some(_) => Err(IdentifyDenied::BoundToAnotherKey),
        None => Ok(()),
    })
}

/// What `user` may do to `server` as staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staff {
    /// Everything (update, delete, password, and what moderators may).
    Owner,
    /// Ban, invite, decide join requests.
    Moderator,
}

/// Is `user` the owner or a moderator of `server`? `Ok(None)` when the server exists and the user
/// is neither; `NotFound` when it does not exist.
pub fn staff(
    conn: &Connection,
    server: &ServerId,
    user: &UserId,
) -> Result<Option<Staff>, DirectoryError> {
    if queries::server(conn, server)?.is_none() {
        return Err(DirectoryError::NotFound("server"));
    }
    Ok(match queries::role(conn, server, user)? {
        Some(MemberRole::Owner) => Some(Staff::Owner),
        Some(MemberRole::Moderator) => Some(Staff::Moderator),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::commands;
    use crate::directory::db::open_in_memory;
    use signalbox_protocol::http::{CreateServerRequest, Invite};

    const NOW: TimestampMs = TimestampMs(1_000);

    fn setup(visibility: ServerVisibility) -> (Connection, ServerId) {
        let conn = open_in_memory().expect("db");
        let request = CreateServerRequest {
            id: None,
            name: "s".into(),
            description: None,
            tags: None,
            visibility: Some(visibility),
        };
        let id = ServerId::from("s");
        commands::create_server(&conn, id.clone(), &request, &UserId::from("owner"), NOW)
            .expect("create");
        (conn, id)
    }

    fn decide(conn: &Connection, server: &str, user: &str, c: JoinCredentials<'_>) -> Decision {
        join(conn, &ServerId::from(server), &UserId::from(user), c, NOW).expect("db")
    }

    #[test]
    fn identify_respects_key_bindings_and_mode() {
        let conn = open_in_memory().expect("db");
        let bound = UserId::from("key-abc");
        commands::upsert_user(&conn, &bound, None, Some("abc"), false, NOW).expect("user");
        let token_of = |user: &UserId| Caller {
            user_id: user.clone(),
            guest: false,
            public_key: None,
            expires_at: NOW,
        };
        let free = UserId::from("toju-user");
        let open = AuthMode::Open;
        assert_eq!(identify(&conn, &free, None, open).expect("db"), Ok(()));
        assert_eq!(
            identify(&conn, &bound, None, open).expect("db"),
            Err(IdentifyDenied::BoundToAnotherKey)
        );
        assert_eq!(
            identify(&conn, &bound, Some(&token_of(&bound)), open).expect("db"),
            Ok(())
        );
        assert_eq!(
            identify(&conn, &bound, Some(&token_of(&free)), open).expect("db"),
            Err(IdentifyDenied::OtherIdentity)
        );
        assert_eq!(
            identify(&conn, &free, None, AuthMode::Required).expect("db"),
            Err(IdentifyDenied::TokenRequired)
        );
    }

    #[test]
    fn unknown_server_is_not_found() {
        let (conn, _) = setup(ServerVisibility::Public);
        let none = JoinCredentials::default();
        assert_eq!(
            decide(&conn, "nope", "u", none),
            Err(AccessDeniedReason::NotFound)
        );
        assert!(matches!(
            staff(&conn, &ServerId::from("nope"), &UserId::from("u")),
            Err(DirectoryError::NotFound(_))
        ));
    }

    #[test]
    fn public_server_admits_anyone_but_the_banned() {
        let (conn, id) = setup(ServerVisibility::Public);
        let none = JoinCredentials::default();
        assert_eq!(decide(&conn, "s", "anyone", none), Ok(Access::Public));
        assert_eq!(
            decide(&conn, "s", "owner", none),
            Ok(Access::Role(MemberRole::Owner))
        );
        let owner = UserId::from("owner");
        commands::ban(&conn, &id, &UserId::from("bad"), None, &owner, NOW).expect("ban");
        assert_eq!(
            decide(&conn, "s", "bad", none),
            Err(AccessDeniedReason::Banned)
        );
        assert_eq!(
            view(&conn, &id, Some(&UserId::from("bad"))).expect("db"),
            Err(AccessDeniedReason::Banned)
        );
        assert_eq!(view(&conn, &id, None).expect("db"), Ok(Access::Public));
    }

    #[test]
    fn password_server_needs_the_right_password() {
        let (conn, id) = setup(ServerVisibility::Public);
        let hash = password::hash("hunter2").expect("hash");
        commands::set_password_hash(&conn, &id, Some(&hash)).expect("set");
        let with = |password| JoinCredentials {
            password,
            invite_code: None,
        };
        assert_eq!(
            decide(&conn, "s", "u", with(None)),
            Err(AccessDeniedReason::PasswordRequired)
        );
        assert_eq!(
            decide(&conn, "s", "u", with(Some("wrong"))),
            Err(AccessDeniedReason::WrongPassword)
        );
        assert_eq!(
            decide(&conn, "s", "u", with(Some("hunter2"))),
            Ok(Access::Public)
        );
        assert_eq!(
            decide(&conn, "s", "owner", with(None)),
            Ok(Access::Role(MemberRole::Owner))
        );
    }

    #[test]
    fn private_server_admits_members_and_valid_invites_only() {
        let (conn, id) = setup(ServerVisibility::Private);
        let none = JoinCredentials::default();
        assert_eq!(
            decide(&conn, "s", "u", none),
            Err(AccessDeniedReason::Private)
        );
        assert_eq!(
            view(&conn, &id, Some(&UserId::from("u"))).expect("db"),
            Err(AccessDeniedReason::Private)
        );
        let invite = Invite {
            code: "good".into(),
            server_id: id.clone(),
            created_by: UserId::from("owner"),
            created_at: NOW,
            expires_at: Some(TimestampMs(NOW.0 + 10)),
            max_uses: None,
            uses: 0,
        };
        commands::create_invite(&conn, &invite).expect("invite");
        let code = |c| JoinCredentials {
            password: None,
            invite_code: Some(c),
        };
        assert_eq!(decide(&conn, "s", "u", code("good")), Ok(Access::Invite));
        assert_eq!(
            decide(&conn, "s", "u", code("bad")),
            Err(AccessDeniedReason::InviteInvalid)
        );
        let late = join(
            &conn,
            &id,
            &UserId::from("u"),
            code("good"),
            TimestampMs(NOW.0 + 10),
        )
        .expect("db");
        assert_eq!(late, Err(AccessDeniedReason::InviteInvalid));
        commands::add_member(&conn, &id, &UserId::from("m"), MemberRole::Moderator, NOW)
            .expect("mod");
        assert_eq!(
            decide(&conn, "s", "m", none),
            Ok(Access::Role(MemberRole::Moderator))
        );
        assert_eq!(
            staff(&conn, &id, &UserId::from("m")).expect("db"),
            Some(Staff::Moderator)
        );
    }
}
