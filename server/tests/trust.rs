//! The trust boundary end to end (issue 10), on a real server at 127.0.0.1:0 with real clients:
//! the admission table run against both transports (WebSocket `join_server` and SSE
//! `GET /api/connect`), identity ownership on both transports, and withdrawal of access.
//!
//! "The owner sees nothing" is checked by ordering, not by waiting: the owner's socket is
//! joined to the server, and after each attempt the owner sends `keepalive`. The hub queues a
//! `user_joined` for the owner inside the attempt's own join, before the applicant gets its
//! answer, so the owner's next frame is the `user_joined` if the applicant got in and the
//! `keepalive` reply if it did not.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

mod common;

use common::TestServer;
use common::sse::{SseClient, WAIT};
use common::ws::WsClient;
use serde_json::json;
use signalbox_protocol::AccessDeniedReason;
use signalbox_protocol::sse::SseError;

/// Generous REST buckets: these tests make many guests from one address on purpose.
const OPEN: &str = r#"{}"#;
const REQUIRED: &str = r#"{"auth": "required"}"#;

// ---------------------------------------------------------------------------------------------
// The admission table.

/// What an applicant presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// No token (a self-asserted id on the WebSocket, a bare connect on SSE).
    Anonymous,
    /// A guest token of a fresh guest.
    Guest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    Public,
    Password,
    Private,
    /// Private, and the applicant (a guest) accepted an invite over REST beforehand.
    PrivateMember,
    /// Public, and the applicant (a guest) is banned.
    Banned,
    /// Created, then deleted.
    Deleted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Admitted,
    Denied(AccessDeniedReason),
    /// 401 on SSE, `AUTH_INVALID` + 4001 at `identify` on the WebSocket.
    Unauthenticated,
    /// SSE only: the room names no directory server (deleted), so it is an ad-hoc room with
    /// nobody of the old server in it.
    AdHocAlone,
}

struct Case {
    name: &'static str,
    setup: Setup,
    who: Who,
    password: Option<&'static str>,
    invite: bool,
    ws: Outcome,
    sse: Outcome,
}

const PASSWORD: &str = "correct horse";

fn table() -> Vec<Case> {
    use Outcome::*;
    let case = |name, setup, who, password, invite, ws, sse| Case {
        name,
        setup,
        who,
        password,
        invite,
        ws,
        sse,
    };
    vec![
        case(
            "public",
            Setup::Public,
            Who::Anonymous,
            None,
            false,
            Admitted,
            Admitted,
        ),
        case(
            "public+password, none given",
            Setup::Password,
            Who::Anonymous,
            None,
            false,
            Denied(AccessDeniedReason::PasswordRequired),
            Denied(AccessDeniedReason::PasswordRequired),
        ),
        case(
            "public+password, wrong",
            Setup::Password,
            Who::Anonymous,
            Some("nope"),
            false,
            Denied(AccessDeniedReason::WrongPassword),
            Denied(AccessDeniedReason::WrongPassword),
        ),
        case(
            "public+password, right",
            Setup::Password,
            Who::Anonymous,
            Some(PASSWORD),
            false,
            Admitted,
            Admitted,
        ),
        case(
            "private, member",
            Setup::PrivateMember,
            Who::Guest,
            None,
            false,
            Admitted,
            Admitted,
        ),
        case(
            "private, invite",
            Setup::Private,
            Who::Guest,
            None,
            true,
            Admitted,
            Admitted,
        ),
        case(
            "private, none",
            Setup::Private,
            Who::Anonymous,
            None,
            false,
            Denied(AccessDeniedReason::Private),
            Denied(AccessDeniedReason::Private),
        ),
        case(
            "private, guest without invite",
            Setup::Private,
            Who::Guest,
            None,
            false,
            Denied(AccessDeniedReason::Private),
            Denied(AccessDeniedReason::Private),
        ),
        case(
            "banned",
            Setup::Banned,
            Who::Guest,
            None,
            false,
            Denied(AccessDeniedReason::Banned),
            Denied(AccessDeniedReason::Banned),
        ),
        case(
            "deleted",
            Setup::Deleted,
            Who::Anonymous,
            None,
            false,
            Denied(AccessDeniedReason::NotFound),
            AdHocAlone,
        ),
    ]
}

/// The server's owner: a guest with a token, on a WebSocket.
struct Owner {
    token: String,
    id: String,
    ws: WsClient,
}

async fn owner(s: &TestServer) -> Owner {
    let (token, id) = s.client().guest("Owner").await;
    let mut ws = WsClient::connect(s.addr, &format!("/ws?token={token}")).await;
    ws.send(json!({"type": "identify", "displayName": "Owner"}))
        .await;
    ws.send(json!({"type": "keepalive"})).await;
    ws.expect("keepalive").await;
    Owner { token, id, ws }
}

/// What the applicant of a case holds after the setup.
struct Applicant {
    token: Option<String>,
    id: String,
    invite: Option<String>,
}

/// Creates server `id` as `case.setup` says, joins the owner to it (unless deleted), and
/// prepares the applicant.
async fn prepare(s: &TestServer, owner: &mut Owner, id: &str, case: &Case) -> Applicant {
    let http = s.client();
    let visibility = match case.setup {
        Setup::Private | Setup::PrivateMember => "private",
        _ => "public",
    };
    let body = json!({"id": id, "name": id, "visibility": visibility});
    http.call("POST", "/api/servers", Some(&owner.token), Some(&body))
        .await
        .expect_ok(201);
    let path = format!("/api/servers/{id}");
    if case.setup == Setup::Password {
        let body = json!({"password": PASSWORD});
        http.call(
            "PUT",
            &format!("{path}/password"),
            Some(&owner.token),
            Some(&body),
        )
        .await
        .expect_ok(200);
    }
    let (token, user) = match case.who {
        Who::Guest => {
            let (token, user) = http.guest("Applicant").await;
            (Some(token), user)
        }
        Who::Anonymous => (None, format!("anon-{}", uuid::Uuid::new_v4())),
    };
    let mut invite = None;
    if case.invite || case.setup == Setup::PrivateMember {
        let created = http
            .call(
                "POST",
                &format!("{path}/invites"),
                Some(&owner.token),
                Some(&json!({})),
            )
            .await;
        assert!(
            created.status == 200 || created.status == 201,
            "{}",
            created.text
        );
        invite = Some(created.json()["code"].as_str().unwrap().to_owned());
    }
    if case.setup == Setup::PrivateMember {
        let code = invite.take().unwrap();
        let accepted = http
            .call(
                "POST",
                &format!("/api/invites/{code}/accept"),
                token.as_deref(),
                None,
            )
            .await;
        assert_eq!(accepted.status, 200, "{}", accepted.text);
    }
    if case.setup == Setup::Banned {
        let body = json!({"userId": user});
        http.call(
            "POST",
            &format!("{path}/bans"),
            Some(&owner.token),
            Some(&body),
        )
        .await
        .expect_ok(200);
    }
    if case.setup == Setup::Deleted {
        http.call("DELETE", &path, Some(&owner.token), None)
            .await
            .expect_ok(200);
    } else {
        owner.ws.join(id).await;
    }
    Applicant {
        token,
        id: user,
        invite,
    }
}

/// The owner's next frame says whether anyone joined since the last check.
async fn owner_saw_a_join(owner: &mut Owner) -> bool {
    owner.ws.send(json!({"type": "keepalive"})).await;
    let next = owner.ws.recv().await;
    match next["type"].as_str() {
        Some("keepalive") => false,
        Some("user_joined") => {
            owner.ws.expect("keepalive").await;
            true
        }
        _ => panic!("unexpected frame for the owner: {next}"),
    }
}

async fn attempt_ws(
    s: &TestServer,
    id: &str,
    applicant: &Applicant,
    case: &Case,
) -> (Outcome, WsClient) {
    let mut ws = WsClient::connect(s.addr, "/ws").await;
    let mut identify = json!({"type": "identify", "displayName": "Applicant"});
    match &applicant.token {
        Some(token) => identify["token"] = json!(token),
        None => identify["oderId"] = json!(applicant.id),
    }
    ws.send(identify).await;
    ws.send(json!({"type": "keepalive"})).await;
    let first = ws.recv().await;
    if first["type"] == "error" {
        assert_eq!(first["code"], "AUTH_INVALID", "{first}");
        assert_eq!(ws.expect_close().await.code, 4001);
        return (Outcome::Unauthenticated, ws);
    }
    assert_eq!(first["type"], "keepalive", "{first}");
    let mut join = json!({"type": "join_server", "serverId": id});
    if let Some(password) = case.password {
        join["password"] = json!(password);
    }
    if let Some(code) = &applicant.invite {
        join["inviteCode"] = json!(code);
    }
    ws.send(join).await;
    let answer = ws.recv().await;
    let outcome = match answer["type"].as_str() {
        Some("server_users") => {
            ws.expect("plugin_requirements").await;
            Outcome::Admitted
        }
        Some("access_denied") => {
            let reason: AccessDeniedReason =
                serde_json::from_value(answer["reason"].clone()).unwrap();
            Outcome::Denied(reason)
        }
        _ => panic!("unexpected answer to join_server: {answer}"),
    };
    (outcome, ws)
}

fn sse_outcome(message: &str, status: u16) -> Outcome {
    if status == 401 {
        assert_eq!(message, SseError::TokenRequired.message());
        return Outcome::Unauthenticated;
    }
    assert_eq!(status, 403, "{message}");
    let reason = AccessDeniedReason::ALL
        .into_iter()
        .find(|r| SseError::Denied(*r).message() == message)
        .unwrap_or_else(|| panic!("not an access message: {message}"));
    Outcome::Denied(reason)
}

async fn attempt_sse(
    s: &TestServer,
    id: &str,
    applicant: &Applicant,
    case: &Case,
    owner_id: &str,
) -> (Outcome, Option<SseClient>) {
    let mut query = format!("room={id}");
    if let Some(password) = case.password {
        query.push_str(&format!("&password={}", password.replace(' ', "%20")));
    }
    if let Some(code) = &applicant.invite {
        query.push_str(&format!("&invite={code}"));
    }
    let mut conn = SseClient::open_with(s.addr, &query, applicant.token.as_deref(), WAIT).await;
    if conn.status != 200 {
        let status = conn.status;
        let message = conn.error_message();
        return (sse_outcome(&message, status), None);
    }
    let joined = conn.expect("joined").await;
    let me = joined["id"].as_str().unwrap().to_owned();
    let roster = conn.expect("roster").await;
    let roster: Vec<String> = serde_json::from_value(roster).unwrap();
    assert!(roster.contains(&me), "{roster:?}");
    let outcome = if roster.iter().any(|m| m == owner_id) {
        Outcome::Admitted
    } else {
        assert_eq!(roster, vec![me], "an ad-hoc room holds only the newcomer");
        Outcome::AdHocAlone
    };
    (outcome, Some(conn))
}

#[tokio::test]
async fn the_admission_table_holds_on_the_websocket() {
    let s = TestServer::start_with(OPEN).await;
    let mut owner = owner(&s).await;
    // Every applicant stays connected: a close would send the owner `user_left`.
    let mut held = Vec::new();
    for (i, case) in table().iter().enumerate() {
        let id = format!("WS-{i}");
        let applicant = prepare(&s, &mut owner, &id, case).await;
        let (outcome, ws) = attempt_ws(&s, &id, &applicant, case).await;
        held.push(ws);
        assert_eq!(outcome, case.ws, "case `{}`", case.name);
        if case.setup != Setup::Deleted {
            assert_eq!(
                owner_saw_a_join(&mut owner).await,
                outcome == Outcome::Admitted,
                "case `{}`: the owner sees a join exactly when one happened",
                case.name
            );
        }
    }
}

#[tokio::test]
async fn the_admission_table_holds_on_sse() {
    let s = TestServer::start_with(OPEN).await;
    let mut owner = owner(&s).await;
    let mut held = Vec::new();
    for (i, case) in table().iter().enumerate() {
        let id = format!("SSE-{i}");
        let applicant = prepare(&s, &mut owner, &id, case).await;
        let (outcome, conn) = attempt_sse(&s, &id, &applicant, case, &owner.id).await;
        assert_eq!(outcome, case.sse, "case `{}`", case.name);
        if case.setup != Setup::Deleted {
            assert_eq!(
                owner_saw_a_join(&mut owner).await,
                outcome == Outcome::Admitted,
                "case `{}`: the owner sees a join exactly when one happened",
                case.name
            );
        }
        held.extend(conn);
    }
}

#[tokio::test]
async fn auth_required_refuses_both_transports_without_a_token() {
    let s = TestServer::start_with(REQUIRED).await;
    let mut owner = owner(&s).await;
    let case = Case {
        name: "auth: required, no token",
        setup: Setup::Public,
        who: Who::Anonymous,
        password: None,
        invite: false,
        ws: Outcome::Unauthenticated,
        sse: Outcome::Unauthenticated,
    };
    let applicant = prepare(&s, &mut owner, "REQ", &case).await;
    let (ws, _socket) = attempt_ws(&s, "REQ", &applicant, &case).await;
    assert_eq!(ws, case.ws);
    let (sse, _) = attempt_sse(&s, "REQ", &applicant, &case, &owner.id).await;
    assert_eq!(sse, case.sse);
    // Ad-hoc rooms too: with `auth: required`, `/api/connect` needs a token.
    let (sse, _) = attempt_sse(&s, "NOT-A-SERVER", &applicant, &case, &owner.id).await;
    assert_eq!(sse, Outcome::Unauthenticated);
    assert!(!owner_saw_a_join(&mut owner).await);
    // With a token, the same room admits.
    let (token, _) = s.client().guest("Guest").await;
    let with_token = Applicant {
        token: Some(token),
        id: String::new(),
        invite: None,
    };
    let (sse, _conn) = attempt_sse(&s, "REQ", &with_token, &case, &owner.id).await;
    assert_eq!(sse, Outcome::Admitted);
    assert!(owner_saw_a_join(&mut owner).await);
}

/// The issue's first scenario: a guest's private, password-protected server `VAULT`, and an
/// anonymous `GET /api/connect?room=VAULT`.
#[tokio::test]
async fn the_anonymous_sse_scenario_is_refused_and_the_owner_sees_nothing() {
    for (variables, status) in [(OPEN, 403), (REQUIRED, 401)] {
        let s = TestServer::start_with(variables).await;
        let mut owner = owner(&s).await;
        let http = s.client();
        let body = json!({"id": "VAULT", "name": "Vault", "visibility": "private"});
        http.call("POST", "/api/servers", Some(&owner.token), Some(&body))
            .await
            .expect_ok(201);
        http.call(
            "PUT",
            "/api/servers/VAULT/password",
            Some(&owner.token),
            Some(&json!({"password": "s3cret"})),
        )
        .await
        .expect_ok(200);
        owner.ws.join("VAULT").await;
        let conn = SseClient::open(s.addr, "room=VAULT").await;
        assert_eq!(conn.status, status);
        let message = conn.error_message();
        let expected = if status == 401 {
            SseError::TokenRequired.message()
        } else {
            SseError::Denied(AccessDeniedReason::Private).message()
        };
        assert_eq!(message, expected, "the seed's `{{\"error\": ...}}` body");
        assert!(
            !owner_saw_a_join(&mut owner).await,
            "the owner sees nothing"
        );
    }
}

#[tokio::test]
async fn a_directory_server_cannot_adopt_a_live_ad_hoc_room() {
    let s = TestServer::start_with(OPEN).await;
    let (token, _) = s.client().guest("Owner").await;
    let mut stranger = SseClient::open(s.addr, "room=TAKEN").await;
    assert_eq!(stranger.status, 200);
    let joined = stranger.expect("joined").await;
    let body = json!({"id": "TAKEN", "name": "Taken"});
    s.client()
        .call("POST", "/api/servers", Some(&token), Some(&body))
        .await
        .expect_error(409, "CONFLICT");
    // Once the room is empty, the id is free.
    let leave = json!({"sender": joined["id"], "token": joined["token"]});
    let left = s
        .client()
        .call("POST", "/api/leave?room=TAKEN", None, Some(&leave))
        .await;
    assert_eq!(left.status, 200, "{}", left.text);
    s.client()
        .call("POST", "/api/servers", Some(&token), Some(&body))
        .await
        .expect_ok(201);
}

// ---------------------------------------------------------------------------------------------
// Identity ownership.

/// The issue's second scenario: in `auth: open`, a token-less `identify` with a live guest's
/// `oderId` is refused, on the WebSocket and through SSE, and the guest's direct messages reach
/// only the guest.
#[tokio::test]
async fn an_issued_guest_id_cannot_be_claimed_without_its_token() {
    let s = TestServer::start_with(OPEN).await;
    let http = s.client();
    let mut owner = owner(&s).await;
    http.call(
        "POST",
        "/api/servers",
        Some(&owner.token),
        Some(&json!({"id": "LOBBY", "name": "Lobby"})),
    )
    .await
    .expect_ok(201);
    owner.ws.join("LOBBY").await;
    let (guest_token, guest_id) = http.guest("Guest").await;
    let mut guest = WsClient::connect(s.addr, &format!("/ws?token={guest_token}")).await;
    guest
        .send(json!({"type": "identify", "displayName": "Guest"}))
        .await;
    guest.join("LOBBY").await;
    owner.ws.expect("user_joined").await;

    // WebSocket: claiming the guest's id without its token.
    let mut thief = WsClient::connect(s.addr, "/ws").await;
    thief
        .send(json!({"type": "identify", "oderId": guest_id, "displayName": "Thief"}))
        .await;
    let error = thief.expect_error("AUTH_INVALID").await;
    assert!(
        error["message"].as_str().unwrap().contains("issued"),
        "says why: {error}"
    );
    assert_eq!(thief.expect_close().await.code, 4001);
    // Another guest's token does not prove this id either.
    let (other_token, _) = http.guest("Other").await;
    let mut other = WsClient::connect(s.addr, "/ws").await;
    other
        .send(json!({"type": "identify", "oderId": guest_id, "displayName": "Other", "token": other_token}))
        .await;
    other.expect_error("AUTH_INVALID").await;
    assert_eq!(other.expect_close().await.code, 4001);

    // SSE: a session cannot be the guest either. Its id as `session_id` starts a new session
    // with a fresh id; a forged token is 401.
    let forged = SseClient::open(s.addr, "room=LOBBY&token=not-a-jwt").await;
    assert_eq!(forged.status, 401);
    let query = format!("room=LOBBY&session_id={guest_id}&token=guess");
    let mut sse = SseClient::open(s.addr, &query).await;
    assert_eq!(sse.status, 200);
    let joined = sse.expect("joined").await;
    let session_id = joined["id"].as_str().unwrap().to_owned();
    assert_ne!(session_id, guest_id);
    owner.ws.expect("user_joined").await;
    guest.expect("user_joined").await;

    // The owner's direct message reaches the guest, and only the guest: the SSE session's next
    // signal is the one addressed to it, not the guest's message.
    owner
        .ws
        .send(json!({"type": "direct-message", "targetUserId": guest_id, "payload": {"n": 1}}))
        .await;
    let got = guest.expect("direct-message").await;
    assert_eq!(got["fromUserId"], owner.id.as_str());
    owner
        .ws
        .send(json!({"type": "direct-message", "targetUserId": session_id, "payload": {"n": 2}}))
        .await;
    loop {
        let (name, data) = sse.next_event().await;
        if name == "signal" {
            assert_eq!(data["signal"]["payload"]["n"], 2, "{data}");
            break;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Withdrawal.

#[tokio::test]
async fn withdrawal_is_immediate_on_both_transports() {
    let s = TestServer::start_with(OPEN).await;
    let http = s.client();
    let mut owner = owner(&s).await;
    let path = "/api/servers/ROOM";
    http.call(
        "POST",
        "/api/servers",
        Some(&owner.token),
        Some(&json!({"id": "ROOM", "name": "Room"})),
    )
    .await
    .expect_ok(201);
    owner.ws.join("ROOM").await;

    // Kick: a member removed over REST leaves the live room now.
    let (token, kicked) = http.guest("Kicked").await;
    let mut ws = WsClient::connect(s.addr, &format!("/ws?token={token}")).await;
    ws.send(json!({"type": "identify", "displayName": "Kicked"}))
        .await;
    ws.join("ROOM").await;
    owner.ws.expect("user_joined").await;
    http.call(
        "DELETE",
        &format!("{path}/members/{kicked}"),
        Some(&owner.token),
        None,
    )
    .await
    .expect_ok(200);
    let denied = ws.expect("access_denied").await;
    assert_eq!(denied["reason"], "removed");
    assert_eq!(
        owner.ws.expect("user_left").await["oderId"],
        kicked.as_str()
    );

    // Going private: a non-member SSE session leaves (its stream ends), a member stays.
    let mut anonymous = SseClient::open(s.addr, "room=ROOM").await;
    assert_eq!(anonymous.status, 200);
    let agent = anonymous.expect("joined").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        owner.ws.expect("user_joined").await["oderId"],
        agent.as_str()
    );
    http.call(
        "PATCH",
        path,
        Some(&owner.token),
        Some(&json!({"visibility": "private"})),
    )
    .await
    .expect_ok(200);
    assert_eq!(owner.ws.expect("user_left").await["oderId"], agent.as_str());
    assert!(anonymous.ended().await, "the evicted session's stream ends");
    assert!(
        !owner_saw_a_join(&mut owner).await,
        "the owner (a member) stays"
    );

    // A password: a viewer that is not a member stops viewing.
    http.call(
        "PATCH",
        path,
        Some(&owner.token),
        Some(&json!({"visibility": "public"})),
    )
    .await
    .expect_ok(200);
    let mut viewer = WsClient::connect(s.addr, "/ws").await;
    viewer
        .send(json!({"type": "identify", "oderId": "viewer", "displayName": "Viewer"}))
        .await;
    viewer
        .send(json!({"type": "view_server", "serverId": "ROOM"}))
        .await;
    viewer.expect("server_users").await;
    http.call(
        "PUT",
        &format!("{path}/password"),
        Some(&owner.token),
        Some(&json!({"password": "now secret"})),
    )
    .await
    .expect_ok(200);
    viewer.until("access_denied").await;
    // And viewing a password server needs membership now.
    viewer
        .send(json!({"type": "view_server", "serverId": "ROOM"}))
        .await;
    let denied = viewer.until("access_denied").await;
    assert_eq!(denied["reason"], "password_required");

    // A ban: the banned member's socket and SSE session leave at once.
    let (token, banned) = http.guest("Banned").await;
    let mut ws = WsClient::connect(s.addr, &format!("/ws?token={token}")).await;
    ws.send(json!({"type": "identify", "displayName": "Banned"}))
        .await;
    ws.send(json!({"type": "join_server", "serverId": "ROOM", "password": "now secret"}))
        .await;
    ws.expect("server_users").await;
    owner.ws.until("user_joined").await;
    let mut session = SseClient::open_with(s.addr, "room=ROOM", Some(&token), WAIT).await;
    assert_eq!(session.status, 200, "a member needs no password");
    session.expect("joined").await;
    owner.ws.expect("user_joined").await;
    http.call(
        "POST",
        &format!("{path}/bans"),
        Some(&owner.token),
        Some(&json!({"userId": banned})),
    )
    .await
    .expect_ok(200);
    assert_eq!(ws.until("access_denied").await["reason"], "banned");
    assert!(session.ended().await, "the banned user's SSE session ends");

    // Deletion: every SSE session of the room ends.
    let mut last = SseClient::open(s.addr, "room=ROOM").await;
    assert_eq!(last.status, 403, "a password server: the anonymous need it");
    let _ = last.error_message();
    http.call(
        "DELETE",
        &format!("{path}/password"),
        Some(&owner.token),
        None,
    )
    .await
    .expect_ok(200);
    last = SseClient::open(s.addr, "room=ROOM").await;
    assert_eq!(last.status, 200);
    last.expect("joined").await;
    http.call("DELETE", path, Some(&owner.token), None)
        .await
        .expect_ok(200);
    assert!(last.ended().await, "deletion ends the room's SSE sessions");
}

#[tokio::test]
async fn viewing_does_not_allow_forwarding() {
    let s = TestServer::start_with(OPEN).await;
    let http = s.client();
    let mut owner = owner(&s).await;
    http.call(
        "POST",
        "/api/servers",
        Some(&owner.token),
        Some(&json!({"id": "OPENROOM", "name": "Open"})),
    )
    .await
    .expect_ok(201);
    owner.ws.join("OPENROOM").await;
    let mut viewer = WsClient::connect(s.addr, "/ws").await;
    viewer
        .send(json!({"type": "identify", "oderId": "viewer", "displayName": "Viewer"}))
        .await;
    viewer
        .send(json!({"type": "view_server", "serverId": "OPENROOM"}))
        .await;
    viewer.expect("server_users").await;
    viewer
        .send(json!({"type": "offer", "targetUserId": owner.id, "sdp": {"type": "offer", "sdp": "v=0"}}))
        .await;
    viewer.until("error").await;
    viewer.join("OPENROOM").await;
    viewer
        .send(json!({"type": "offer", "targetUserId": owner.id, "sdp": {"type": "offer", "sdp": "v=0"}}))
        .await;
    let offer = owner.ws.until("offer").await;
    assert_eq!(offer["fromUserId"], "viewer");
}

#[tokio::test]
async fn sse_sessions_count_against_the_websocket_connection_caps() {
    let s = TestServer::start_with(r#"{"realtime": {"maxConnectionsPerIp": 2}}"#).await;
    let mut first = SseClient::open(s.addr, "room=CAPS").await;
    assert_eq!(first.status, 200);
    first.expect("joined").await;
    let _ws = WsClient::connect(s.addr, "/ws").await;
    // Two slots used (one SSE session, one socket): a third of either kind is refused.
    let third = SseClient::open(s.addr, "room=CAPS").await;
    assert_eq!(third.status, 503);
    assert_eq!(third.error_message(), SseError::Full.message());
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/ws", s.addr)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 429);
        }
        other => panic!("expected a refused upgrade, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Bounds.

#[tokio::test]
async fn rest_routes_are_rate_limited_per_address_with_retry_after() {
    let s = TestServer::start_with(
        r#"{"security": {"restRateLimits": {"auth": {"burst": 2, "refillPerSec": 1}}}}"#,
    )
    .await;
    let http = s.client();
    http.guest("One").await;
    http.guest("Two").await;
    let refused = http
        .call("POST", "/api/auth/guest", None, Some(&json!({})))
        .await;
    refused.expect_error(429, "RATE_LIMITED");
    let retry_after: u64 = refused
        .headers
        .iter()
        .find(|(k, _)| k == "retry-after")
        .map(|(_, v)| v.parse().unwrap())
        .expect("a Retry-After header");
    assert!(retry_after >= 1, "{retry_after}");
    // Reads draw from their own (looser) bucket.
    assert_eq!(http.get("/api/servers", None).await.status, 200);
}

#[tokio::test]
async fn one_owner_creates_at_most_max_servers_per_owner() {
    let s = TestServer::start_with(r#"{"security": {"maxServersPerOwner": 2}}"#).await;
    let http = s.client();
    let (token, _) = http.guest("Owner").await;
    for name in ["one", "two"] {
        http.call(
            "POST",
            "/api/servers",
            Some(&token),
            Some(&json!({"name": name})),
        )
        .await
        .expect_ok(201);
    }
    http.call(
        "POST",
        "/api/servers",
        Some(&token),
        Some(&json!({"name": "three"})),
    )
    .await
    .expect_error(403, "FORBIDDEN");
    let (other, _) = http.guest("Other").await;
    http.call(
        "POST",
        "/api/servers",
        Some(&other),
        Some(&json!({"name": "three"})),
    )
    .await
    .expect_ok(201);
}

#[tokio::test]
async fn search_queries_are_bounded_and_literal() {
    let s = TestServer::start_with(r#"{"security": {"maxSearchQueryChars": 8}}"#).await;
    let http = s.client();
    let (token, _) = http.guest("Owner").await;
    for name in ["50% off", "500 club"] {
        http.call(
            "POST",
            "/api/servers",
            Some(&token),
            Some(&json!({"name": name})),
        )
        .await
        .expect_ok(201);
    }
    let found = http.get("/api/servers?q=50%25", None).await.expect_ok(200);
    let names: Vec<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["50% off"], "`%` matches itself only");
    http.get("/api/servers?q=123456789", None)
        .await
        .expect_error(400, "BAD_REQUEST");
}

#[tokio::test]
async fn ephemeral_identities_are_written_only_when_they_join_something() {
    let s = TestServer::start_with(OPEN).await;
    let http = s.client();
    let mut owner = owner(&s).await;
    http.call(
        "POST",
        "/api/servers",
        Some(&owner.token),
        Some(&json!({"id": "HALL", "name": "Hall"})),
    )
    .await
    .expect_ok(201);
    owner.ws.join("HALL").await;
    let (_, guest) = http.guest("Passer-by").await;
    let mut toju = WsClient::connect(s.addr, "/ws").await;
    toju.send(json!({"type": "identify", "oderId": "toju-1", "displayName": "Toju"}))
        .await;
    toju.send(json!({"type": "keepalive"})).await;
    toju.expect("keepalive").await;
    for id in [guest.as_str(), "toju-1"] {
        http.get(&format!("/api/users/{id}"), None)
            .await
            .expect_error(404, "NOT_FOUND");
    }
    toju.join("HALL").await;
    let profile = http.get("/api/users/toju-1", None).await.expect_ok(200);
    assert_eq!(profile["displayName"], "Toju");
}

#[tokio::test]
async fn a_connection_past_its_server_cap_gets_limit_exceeded_and_nothing_is_written() {
    let s = TestServer::start_with(r#"{"security": {"maxJoinedServersPerConnection": 1}}"#).await;
    let http = s.client();
    let (token, _) = http.guest("Owner").await;
    for id in ["CAP-A", "CAP-B"] {
        http.call(
            "POST",
            "/api/servers",
            Some(&token),
            Some(&json!({"id": id, "name": id})),
        )
        .await
        .expect_ok(201);
    }
    let mut ws = WsClient::connect(s.addr, "/ws").await;
    ws.send(json!({"type": "identify", "oderId": "capped", "displayName": "Capped"}))
        .await;
    ws.join("CAP-A").await;
    ws.send(json!({"type": "join_server", "serverId": "CAP-B"}))
        .await;
    let error = ws.expect_error("LIMIT_EXCEEDED").await;
    assert_eq!(error["requestType"], "join_server");
    let members = http
        .get("/api/servers/CAP-B/members", None)
        .await
        .expect_ok(200);
    assert_eq!(
        members["items"].as_array().unwrap().len(),
        1,
        "only the owner: the refused join recorded no membership"
    );
    ws.send(json!({"type": "leave_server", "serverId": "CAP-A"}))
        .await;
    ws.join("CAP-B").await;
}
