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
//! # One admission path
//! [`admit`] is how EVERY transport lets a connection into a server's live room (WebSocket
//! `join_server` / `view_server`, SSE `GET /api/connect` for a room that names a directory
//! server): `auth: required` needs a token, then the rules above decide, a password is checked
//! by [`PasswordWork`] (off the database pool: no connection is held during Argon2), and a
//! durable applicant's admission is recorded as membership (joining a public server or using an
//! invite). [`still_admitted`] is the same rules without credentials, used to withdraw live
//! connections after a directory change (`crate::withdrawal`).
//!
//! # Rules over facts
//! Every rule is a pure function over [`AccessFacts`] (the server row, the user's ban and role,
//! the presented invite), so each [`Directory`] backend fetches the facts its own way and
//! decides with the same code ([`join_rule`], [`view_rule`], [`view_live_rule`],
//! [`admission_rule`], [`still_admitted_rule`], [`staff_rule`], [`identify_rule`]). The
//! `&Connection` functions here are SQLite's fetch-then-decide wrappers.
//!
//! The decision functions never write; [`admit`] writes only the membership its decision
//! implies, through [`Directory::record_admission`]. Never decides HTTP statuses. The outer
//! `Result` is infrastructure (the database failed), the inner one is the decision.

use rusqlite::Connection;
use signalbox_protocol::http::{MemberRole, ServerVisibility};
use signalbox_protocol::{AccessDeniedReason, Secret, ServerId, TimestampMs, UserId};

use super::queries::{InviteRecord, ServerRecord};
use super::store::Directory;
use super::{DirectoryError, commands, queries};
use crate::auth::password::PasswordWork;
use crate::auth::{Caller, password};
use crate::config::AuthMode;
use signalbox_protocol::ids::{GUEST_ID_PREFIX, KEY_ID_PREFIX};

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

/// What the rules need to know about one user and one server, fetched in one read by a
/// backend ([`facts`] for SQLite) and decided by the pure functions below, which every backend
/// shares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessFacts {
    /// The server, if it exists.
    pub server: Option<ServerRecord>,
    /// Whether the user is banned from it (`false` for no user).
    pub banned: bool,
    /// The user's role in it, if a member.
    pub role: Option<MemberRole>,
    /// The invite presented, if one was and it exists (for any server).
    pub invite: Option<InviteRecord>,
}

/// Reads the [`AccessFacts`] of `user` (if any) and `server`, and of `invite_code` if given.
pub fn facts(
    conn: &Connection,
    server: &ServerId,
    user: Option<&UserId>,
    invite_code: Option<&str>,
) -> Result<AccessFacts, DirectoryError> {
    let Some(record) = queries::server(conn, server)? else {
        return Ok(AccessFacts::default());
    };
    let (banned, role) = match user {
        Some(user) => (
            queries::is_banned(conn, server, user)?,
            queries::role(conn, server, user)?,
        ),
        None => (false, None),
    };
    let invite = match invite_code {
        Some(code) => queries::invite(conn, code)?,
        None => None,
    };
    Ok(AccessFacts {
        server: Some(record),
        banned,
        role,
        invite,
    })
}

/// The join rule over fetched facts: may this user join `server` with `credentials` at `now`?
pub fn join_rule(
    facts: &AccessFacts,
    server: &ServerId,
    credentials: JoinCredentials<'_>,
    now: TimestampMs,
) -> Decision {
    let Some(record) = &facts.server else {
        return Err(AccessDeniedReason::NotFound);
    };
    if facts.banned {
        return Err(AccessDeniedReason::Banned);
    }
    if let Some(role) = facts.role {
        return Ok(Access::Role(role));
    }
    if credentials.invite_code.is_some() {
        let valid = facts.invite.as_ref().is_some_and(|invite| {
            invite.invite.server_id == *server && invite.unusable_reason(now).is_none()
        });
        return if valid {
            Ok(Access::Invite)
        } else {
            Err(AccessDeniedReason::InviteInvalid)
        };
    }
    match record.summary.visibility {
        ServerVisibility::Private => Err(AccessDeniedReason::Private),
        ServerVisibility::Public => match (&record.password_hash, credentials.password) {
            (None, _) => Ok(Access::Public),
            (Some(_), None) => Err(AccessDeniedReason::PasswordRequired),
            (Some(hash), Some(given)) if password::verify(hash, given) => Ok(Access::Public),
            (Some(_), Some(_)) => Err(AccessDeniedReason::WrongPassword),
        },
    }
}

/// The view rule over fetched facts (`viewer` fetched or none): public servers to anyone not
/// banned, private ones to members only.
pub fn view_rule(facts: &AccessFacts) -> Decision {
    if facts.server.is_none() {
        return Err(AccessDeniedReason::NotFound);
    }
    if facts.banned {
        return Err(AccessDeniedReason::Banned);
    }
    match (
        facts.role,
        facts.server.as_ref().map(|r| r.summary.visibility),
    ) {
        (Some(role), _) => Ok(Access::Role(role)),
        (None, Some(ServerVisibility::Public)) => Ok(Access::Public),
        (None, _) => Err(AccessDeniedReason::Private),
    }
}

/// The live-roster view rule: [`view_rule`], and a password server shows its roster only to
/// members (viewing must not bypass the password).
pub fn view_live_rule(facts: &AccessFacts) -> Decision {
    let decision = view_rule(facts);
    if decision == Ok(Access::Public)
        && facts
            .server
            .as_ref()
            .is_some_and(|r| r.password_hash.is_some())
    {
        return Err(AccessDeniedReason::PasswordRequired);
    }
    decision
}

/// The database half of an admission over fetched facts (with the request's invite): the
/// decision, or the hash the given password must be checked against.
pub fn admission_rule(facts: &AccessFacts, request: &AdmissionRequest, now: TimestampMs) -> Step {
    if request.entry == Entry::View {
        return Step::Decided(view_live_rule(facts));
    }
    let credentials = JoinCredentials {
        password: None,
        invite_code: request.invite_code.as_deref(),
    };
    let decision = join_rule(facts, &request.server, credentials, now);
    let hash = facts.server.as_ref().and_then(|r| r.password_hash.clone());
    match (decision, hash, &request.password) {
        (Err(AccessDeniedReason::PasswordRequired), Some(hash), Some(_)) => {
            Step::CheckPassword(hash)
        }
        (decision, _, _) => Step::Decided(decision),
    }
}

/// The still-admitted rule over fetched facts (no credentials): see [`still_admitted`].
pub fn still_admitted_rule(facts: &AccessFacts, server: &ServerId, entry: Entry) -> Decision {
    match entry {
        Entry::View => view_live_rule(facts),
        Entry::Join => join_rule(facts, server, JoinCredentials::default(), TimestampMs(0)),
    }
}

/// The staff rule over fetched facts. `NotFound` when the server does not exist.
pub fn staff_rule(facts: &AccessFacts) -> Result<Option<Staff>, DirectoryError> {
    if facts.server.is_none() {
        return Err(DirectoryError::NotFound("server"));
    }
    Ok(match facts.role {
        Some(MemberRole::Owner) => Some(Staff::Owner),
        Some(MemberRole::Moderator) => Some(Staff::Moderator),
        _ => None,
    })
}

/// May `user` join `server` with `credentials` at `now`?
pub fn join(
    conn: &Connection,
    server: &ServerId,
    user: &UserId,
    credentials: JoinCredentials<'_>,
    now: TimestampMs,
) -> Result<Decision, DirectoryError> {
    let facts = facts(conn, server, Some(user), credentials.invite_code)?;
    Ok(join_rule(&facts, server, credentials, now))
}

/// May `user` see `server`'s details and roster without joining? Public servers: anyone not
/// banned; private servers: members only.
pub fn view(
    conn: &Connection,
    server: &ServerId,
    user: Option<&UserId>,
) -> Result<Decision, DirectoryError> {
    Ok(view_rule(&facts(conn, server, user, None)?))
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
    /// The `oderId` is one the server issues with a token (`guest-...` or `key-...`): only that
    /// token may use it.
    IssuedWithToken,
}

/// May a connection presenting `caller` (its valid token, if any) identify as `claimed`?
/// `auth: open`: anyone may claim an `oderId` never bound to a token (Toju's self-asserted
/// ids); an issued one (`guest-...`, `key-...`, or any id bound to a key) needs its token.
/// `auth: required`: a token is needed and must prove `claimed`.
pub fn identify(
    conn: &Connection,
    claimed: &UserId,
    caller: Option<&Caller>,
    mode: AuthMode,
) -> Result<Result<(), IdentifyDenied>, DirectoryError> {
    identify_rule(claimed, caller.map(|c| &c.user_id), mode, || {
        Ok(queries::bound_public_key(conn, claimed)?.is_some())
    })
}

/// The identify rule, shared by the backends: `proven` is the identity a valid token proves,
/// `is_bound` reads whether `claimed` is bound to a key (called only when that decides).
pub fn identify_rule(
    claimed: &UserId,
    proven: Option<&UserId>,
    mode: AuthMode,
    is_bound: impl FnOnce() -> Result<bool, DirectoryError>,
) -> Result<Result<(), IdentifyDenied>, DirectoryError> {
    if let Some(proven) = proven {
        return Ok(if proven == claimed {
            Ok(())
        } else {
            Err(IdentifyDenied::OtherIdentity)
        });
    }
    if mode == AuthMode::Required {
        return Ok(Err(IdentifyDenied::TokenRequired));
    }
    if is_issued_id(claimed) {
        return Ok(Err(IdentifyDenied::IssuedWithToken));
    }
    Ok(if is_bound()? {
        Err(IdentifyDenied::BoundToAnotherKey)
    } else {
        Ok(())
    })
}

/// Whether `user` is in the namespace of ids the server issues with a token (guest and key-bound
/// identities). Such an id is owned by its token from the moment it is issued, before any row
/// exists for it, so an issued guest id needs no database row to be protected.
pub fn is_issued_id(user: &UserId) -> bool {
    user.as_str().starts_with(GUEST_ID_PREFIX) || user.as_str().starts_with(KEY_ID_PREFIX)
}

/// How a connection enters a server's live room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// `join_server`, or an SSE session: full member of the room.
    Join,
    /// `view_server`: the roster without the conversation.
    View,
}

/// Who asks to enter, and with what.
#[derive(Debug, Clone)]
pub struct AdmissionRequest {
    /// Join or view.
    pub entry: Entry,
    /// The server.
    pub server: ServerId,
    /// The identity the rules are checked for.
    pub user: UserId,
    /// Whether a valid token proved `user` (needed in `auth: required`).
    pub authenticated: bool,
    /// Whether an admission is recorded as membership. `false` for an anonymous SSE session,
    /// which is never written to the directory (and may therefore not use an invite).
    pub durable: bool,
    /// The server's password, if given (redacted in `Debug`).
    pub password: Option<Secret>,
    /// An invite code, if given.
    pub invite_code: Option<String>,
    /// The name for the applicant's directory row, written when a durable applicant is first
    /// admitted as a member (an ephemeral identity has no row before).
    pub display_name: Option<String>,
    /// The server's auth mode.
    pub mode: AuthMode,
}

/// What the database step of an admission found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Decided without a password.
    Decided(Decision),
    /// A public server with a password, and one was given: check it against this hash.
    CheckPassword(String),
}

/// THE admission path of every transport (see the module docs). A refusal changes nothing.
pub async fn admit(
    directory: &dyn Directory,
    passwords: &PasswordWork,
    request: AdmissionRequest,
) -> Result<Decision, DirectoryError> {
    if request.mode == AuthMode::Required && !request.authenticated {
        return Ok(Err(AccessDeniedReason::NotAuthenticated));
    }
    let now = TimestampMs::now();
    let step = directory
        .admission_step(&crate::op!("admit"), &request, now)
        .await?;
    let decision = match step {
        Step::Decided(decision) => decision,
        Step::CheckPassword(hash) => {
            let given = request.password.clone().unwrap_or_default();
            let right = passwords
                .verify(hash, given)
                .await
                .map_err(|e| DirectoryError::Db(super::DbError::Worker(e.to_string())))?;
            if right {
                Ok(Access::Public)
            } else {
                Err(AccessDeniedReason::WrongPassword)
            }
        }
    };
    let Ok(access) = decision else {
        return Ok(decision);
    };
    if request.entry == Entry::View || matches!(access, Access::Role(_)) {
        return Ok(Ok(access));
    }
    if !request.durable {
        return Ok(match access {
            Access::Invite => Err(AccessDeniedReason::NotAuthenticated),
            other => Ok(other),
        });
    }
    directory
        .record_admission(&crate::op!("admit"), &request, access, now)
        .await
}

/// The database half of [`admit`] on SQLite: the decision, or the hash a password must be
/// checked against.
pub fn decide_without_password(
    conn: &Connection,
    request: &AdmissionRequest,
    now: TimestampMs,
) -> Result<Step, DirectoryError> {
    let facts = facts(
        conn,
        &request.server,
        Some(&request.user),
        request.invite_code.as_deref(),
    )?;
    Ok(admission_rule(&facts, request, now))
}

/// Records what an admission implies: a public join makes a member, an invite is used.
/// Re-checks the ban, which may have landed while the password was checked.
pub fn record_admission(
    conn: &Connection,
    request: &AdmissionRequest,
    access: Access,
    now: TimestampMs,
) -> Result<Decision, DirectoryError> {
    let (server, user) = (&request.server, &request.user);
    if queries::is_banned(conn, server, user)? {
        return Ok(Err(AccessDeniedReason::Banned));
    }
    // Joining something makes an ephemeral identity durable: its row is written now.
    commands::upsert_user(conn, user, request.display_name.as_deref(), None, true, now)?;
    match (access, request.invite_code.as_deref()) {
        (Access::Invite, Some(code)) => match commands::accept_invite(conn, code, user, now) {
            Ok(_) => {}
            Err(DirectoryError::Gone(_) | DirectoryError::NotFound(_)) => {
                return Ok(Err(AccessDeniedReason::InviteInvalid));
            }
            Err(DirectoryError::Forbidden(_)) => return Ok(Err(AccessDeniedReason::Banned)),
            Err(e) => return Err(e),
        },
        (Access::Public, _) => {
            commands::add_member(conn, server, user, MemberRole::Member, now)?;
        }
        _ => {}
    }
    Ok(Ok(access))
}

/// May `user` view `server`'s live roster? See [`view_live_rule`].
pub fn view_live(
    conn: &Connection,
    server: &ServerId,
    user: &UserId,
) -> Result<Decision, DirectoryError> {
    Ok(view_live_rule(&facts(conn, server, Some(user), None)?))
}

/// Would a live connection of `user` that entered `server` as `entry` still be admitted now,
/// with no credentials? (Members pass; a non-member passes a public server without password;
/// nobody passes a deleted server or a ban.) Used to withdraw connections after a change.
pub fn still_admitted(
    conn: &Connection,
    server: &ServerId,
    user: &UserId,
    entry: Entry,
) -> Result<Decision, DirectoryError> {
    let facts = facts(conn, server, Some(user), None)?;
    Ok(still_admitted_rule(&facts, server, entry))
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
    staff_rule(&facts(conn, server, Some(user), None)?)
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
            display_name: None,
        };
        let free = UserId::from("toju-user");
        let open = AuthMode::Open;
        assert_eq!(identify(&conn, &free, None, open).expect("db"), Ok(()));
        assert_eq!(
            identify(&conn, &bound, None, open).expect("db"),
            Err(IdentifyDenied::IssuedWithToken)
        );
        // A guest id is owned by its token even though no row was ever written for it.
        let guest = UserId::from("guest-1234");
        assert_eq!(
            identify(&conn, &guest, None, open).expect("db"),
            Err(IdentifyDenied::IssuedWithToken)
        );
        assert_eq!(
            identify(&conn, &guest, Some(&token_of(&guest)), open).expect("db"),
            Ok(())
        );
        // An id bound to a key outside the issued namespace is protected by the binding.
        let legacy = UserId::from("legacy-bound");
        commands::upsert_user(&conn, &legacy, None, Some("def"), false, NOW).expect("user");
        assert_eq!(
            identify(&conn, &legacy, None, open).expect("db"),
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
    fn admission_requests_and_sse_connects_never_print_their_secrets() {
        let request = AdmissionRequest {
            entry: Entry::Join,
            server: ServerId::from("s"),
            user: UserId::from("u"),
            authenticated: false,
            durable: false,
            password: Some(Secret::from("pw-SECRET")),
            invite_code: None,
            display_name: None,
            mode: AuthMode::Open,
        };
        let connect = crate::transport::sse::ConnectParams {
            room: Some("r".into()),
            session_id: None,
            token: Some(Secret::from("jwt-SECRET")),
            ..Default::default()
        };
        for text in [format!("{request:?}"), format!("{connect:?}")] {
            assert!(!text.contains("SECRET"), "a secret printed: {text}");
        }
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
