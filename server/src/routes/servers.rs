//! `/api/servers/*`: the directory (list/search, create, read, update, delete), bans and
//! passwords.
//!
//! Every permission question goes to [`crate::directory::access`]. Passwords are hashed here
//! (off the executor) and never returned or logged.

use std::sync::Arc;

use signalbox_protocol::http::{
    ApiErrorCode, BanList, BanRequest, CreateServerRequest, ServerList, ServerVisibility,
    SetPasswordRequest, UpdateServerRequest,
};
use signalbox_protocol::limits::MAX_ID_BYTES;
use signalbox_protocol::{AccessDeniedReason, ServerId, TimestampMs, UserId};
use warp::http::{Method, StatusCode};

use super::{AuthRule, Reply, Req, Route, body, handler};
use crate::auth::password::PasswordWork;
use crate::directory::Directory;
use crate::directory::access::Staff;
use crate::directory::store::NewUser;
use crate::handlers::validate;
use crate::http::ApiFailure;
use crate::hub::Hub;
use crate::withdrawal::Withdrawal;

/// Longest server name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Most tags per server.
pub const MAX_TAGS: usize = 20;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 32;
/// Longest password, in characters.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// The services of `/api/servers/*`.
#[derive(Debug)]
pub struct ServersApi {
    /// Every directory command and query.
    pub directory: Arc<dyn Directory>,
    /// Whether a live (ad-hoc) room already has an id.
    pub hub: Hub,
    /// Hashes passwords off the executor.
    pub passwords: PasswordWork,
    /// Takes live connections out when access is withdrawn.
    pub withdrawal: Withdrawal,
    /// `security.maxSearchQueryChars`.
    pub max_search_query_chars: usize,
    /// `security.maxServersPerOwner`.
    pub max_servers_per_owner: u32,
}

/// This family's routes.
pub fn routes() -> Vec<Route<ServersApi>> {
    let server = "/api/servers/{serverId}";
    vec![
        Route::new(
            Method::GET,
            "/api/servers",
            AuthRule::Read,
            "Lists public servers; `q` searches name, description and tags.",
            handler!(list),
        )
        .paginated()
        .answers(body!(ServerList)),
        Route::new(
            Method::POST,
            "/api/servers",
            AuthRule::Token,
            "Creates a server owned by the caller (201).",
            handler!(create),
        )
        .takes(body!(CreateServerRequest))
        .answers(body!(ServerSummary)),
        Route::new(
            Method::GET,
            server,
            AuthRule::Read,
            "Reads a server (private ones: members only).",
            handler!(read),
        )
        .answers(body!(ServerSummary)),
        Route::new(
            Method::PATCH,
            server,
            AuthRule::Token,
            "Updates a server (owner only).",
            handler!(update),
        )
        .takes(body!(UpdateServerRequest))
        .answers(body!(ServerSummary)),
        Route::new(
            Method::DELETE,
            server,
            AuthRule::Token,
            "Deletes a server (owner only).",
            handler!(delete),
        )
        .answers(body!(OkResponse)),
        Route::new(
            Method::GET,
            "/api/servers/{serverId}/bans",
            AuthRule::Token,
            "Lists bans (owner and moderators).",
            handler!(list_bans),
        )
        .paginated()
        .answers(body!(BanList)),
        Route::new(
            Method::POST,
            "/api/servers/{serverId}/bans",
            AuthRule::Token,
            "Bans a user and removes their membership (owner and moderators).",
            handler!(ban),
        )
        .takes(body!(BanRequest))
        .answers(body!(Ban)),
        Route::new(
            Method::DELETE,
            "/api/servers/{serverId}/bans/{userId}",
            AuthRule::Token,
            "Lifts a ban (owner and moderators).",
            handler!(unban),
        )
        .answers(body!(OkResponse)),
        Route::new(
            Method::PUT,
            "/api/servers/{serverId}/password",
            AuthRule::Token,
            "Sets the join password, stored as an Argon2 hash (owner only).",
            handler!(set_password),
        )
        .secret_body()
        .takes(body!(SetPasswordRequest))
        .answers(body!(OkResponse)),
        Route::new(
            Method::DELETE,
            "/api/servers/{serverId}/password",
            AuthRule::Token,
            "Clears the join password (owner only).",
            handler!(clear_password),
        )
        .answers(body!(OkResponse)),
    ]
}

/// 1 to `max` characters of display text (see [`validate::control_character`]: names refuse
/// every control character, multi-line text keeps line breaks and tabs).
pub(crate) fn check_text(
    field: &str,
    value: &str,
    max: usize,
    multiline: bool,
) -> Result<(), ApiFailure> {
    let chars = value.chars().count();
    if value.trim().is_empty() || chars > max {
        return Err(ApiFailure::bad_request(format!(
            "field `{field}`: must be 1 to {max} characters"
        )));
    }
    if let Some(refused) = validate::control_character(value, multiline) {
        return Err(ApiFailure::bad_request(format!(
            "field {}",
            validate::control_character_message(field, refused)
        )));
    }
    Ok(())
}

fn check_tags(tags: Option<&Vec<String>>) -> Result<(), ApiFailure> {
    let Some(tags) = tags else { return Ok(()) };
    if tags.len() > MAX_TAGS {
        return Err(ApiFailure::bad_request(format!(
            "field `tags`: at most {MAX_TAGS} tags"
        )));
    }
    for (i, tag) in tags.iter().enumerate() {
        check_text(&format!("tags[{i}]"), tag, MAX_TAG_CHARS, false)?;
    }
    Ok(())
}

/// Fails unless `user` is staff of `server` (`owner_only`: the owner).
pub(crate) async fn require_staff(
    directory: &dyn Directory,
    server: &ServerId,
    user: &UserId,
    owner_only: bool,
) -> Result<Staff, ApiFailure> {
    let staff = directory
        .staff(&crate::op!("require_staff"), server, user)
        .await?;
    match staff {
        Some(Staff::Owner) => Ok(Staff::Owner),
        Some(Staff::Moderator) if !owner_only => Ok(Staff::Moderator),
        _ if owner_only => Err(ApiFailure::forbidden("only the owner may do this")),
        _ => Err(ApiFailure::forbidden(
            "only the owner or a moderator may do this",
        )),
    }
}

/// Maps an access refusal of a read to its HTTP failure.
pub(crate) fn denied(reason: AccessDeniedReason) -> ApiFailure {
    match reason {
        AccessDeniedReason::NotFound => ApiFailure::not_found("server"),
        AccessDeniedReason::Banned => ApiFailure::forbidden("banned from this server"),
        _ => ApiFailure::forbidden("this server is private"),
    }
}

/// `GET /api/servers`.
pub async fn list(api: Arc<ServersApi>, req: Req) -> Result<Reply, ApiFailure> {
    let page = req.page()?;
    let max = api.max_search_query_chars;
    if page.q.as_ref().is_some_and(|q| q.chars().count() > max) {
        return Err(ApiFailure::bad_request(format!(
            "query `q`: at most {max} characters (security.maxSearchQueryChars)"
        )));
    }
    let result = api
        .directory
        .list_public_servers(&crate::op!("list"), page.q.as_deref(), page.query())
        .await?;
    Reply::ok(&ServerList {
        items: result.items,
        next_cursor: result.next_cursor,
    })
}

/// `POST /api/servers`.
pub async fn create(api: Arc<ServersApi>, req: Req) -> Result<Reply, ApiFailure> {
    let caller = req.caller()?.clone();
    let owner = caller.user_id.clone();
    let request: CreateServerRequest = req.json()?;
    check_text("name", &request.name, MAX_NAME_CHARS, false)?;
    if let Some(d) = &request.description {
        check_text("description", d, MAX_DESCRIPTION_CHARS, true)?;
    }
    check_tags(request.tags.as_ref())?;
    let id = match &request.id {
        Some(id) if id.0.is_empty() || id.0.len() > MAX_ID_BYTES => {
            return Err(ApiFailure::bad_request(format!(
                "field `id`: must be 1 to {MAX_ID_BYTES} bytes"
            )));
        }
        // PostgreSQL text cannot hold U+0000; no backend stores a control character in an id.
        Some(id) if id.0.chars().any(char::is_control) => {
            return Err(ApiFailure::bad_request(
                "field `id`: must not contain control characters",
            ));
        }
        Some(id) => id.clone(),
        None => ServerId(uuid::Uuid::new_v4().to_string()),
    };
    // A live room with this id is an SSE ad-hoc room: its sessions entered without any rule,
    // and a directory server must not adopt them (refused, not evicted: see docs/security.md).
    if api.hub.is_live(&id) {
        return Err(ApiFailure::new(
            ApiErrorCode::Conflict,
            "a live ad-hoc room has this id; pick another id or wait until the room is empty",
        ));
    }
    let now = TimestampMs::now();
    let max = api.max_servers_per_owner;
    // The cap is counted inside the write's transaction, so concurrent creations by one owner
    // are counted one after another and it holds exactly.
    let owner = NewUser {
        id: owner,
        display_name: caller.display_name,
        public_key: caller.public_key,
        guest: caller.guest,
    };
    let cx = req.cx(crate::op!("create"), StatusCode::CREATED);
    let outcome = api
        .directory
        .create_server(&cx, owner, id, request, max, now)
        .await?;
    Reply::from_outcome(StatusCode::CREATED, outcome)
}

/// `GET /api/servers/{serverId}`.
pub async fn read(api: Arc<ServersApi>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let user = req.caller.as_ref().map(|c| c.user_id.clone());
    let summary = api
        .directory
        .server_view(&crate::op!("read"), &server, user.as_ref())
        .await?
        .map_err(denied)?;
    Reply::ok(&summary)
}

/// `PATCH /api/servers/{serverId}`.
pub async fn update(api: Arc<ServersApi>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let request: UpdateServerRequest = req.json()?;
    if let Some(name) = &request.name {
        check_text("name", name, MAX_NAME_CHARS, false)?;
    }
    if let Some(d) = &request.description {
        check_text("description", d, MAX_DESCRIPTION_CHARS, true)?;
    }
    check_tags(request.tags.as_ref())?;
    require_staff(
        api.directory.as_ref(),
        &server,
        &req.caller()?.user_id,
        true,
    )
    .await?;
    let goes_private = request.visibility == Some(ServerVisibility::Private);
    let cx = req.cx(crate::op!("update"), StatusCode::OK);
    let outcome = api.directory.update_server(&cx, &server, request).await?;
    let reply = Reply::from_outcome(StatusCode::OK, outcome)?;
    if goes_private {
        // Non-members in the live room entered a public server; they leave now.
        api.withdrawal.recheck(&server).await?;
    }
    Ok(reply)
}

/// `DELETE /api/servers/{serverId}`.
pub async fn delete(api: Arc<ServersApi>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    require_staff(
        api.directory.as_ref(),
        &server,
        &req.caller()?.user_id,
        true,
    )
    .await?;
    let cx = req.cx(crate::op!("delete"), StatusCode::OK);
    let outcome = api.directory.delete_server(&cx, &server).await?;
    let reply = Reply::from_outcome(StatusCode::OK, outcome)?;
    // Nobody stays in the live room of a server that no longer exists.
    api.withdrawal
        .everyone(&server, AccessDeniedReason::NotFound);
    Ok(reply)
}

/// `GET /api/servers/{serverId}/bans`.
pub async fn list_bans(api: Arc<ServersApi>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let page = req.page()?;
    require_staff(
        api.directory.as_ref(),
        &server,
        &req.caller()?.user_id,
        false,
    )
    .await?;
    let result = api
        .directory
        .list_bans(&crate::op!("list_bans"), &server, page.query())
        .await?;
    Reply::ok(&BanList {
        items: result.items,
        next_cursor: result.next_cursor,
    })
}

/// `POST /api/servers/{serverId}/bans`.
pub async fn ban(api: Arc<ServersApi>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let request: BanRequest = req.json()?;
    if request.user_id.0.is_empty() || request.user_id.0.len() > MAX_ID_BYTES {
        return Err(ApiFailure::bad_request(format!(
            "field `userId`: must be 1 to {MAX_ID_BYTES} bytes"
        )));
    }
    if let Some(reason) = &request.reason {
        check_text("reason", reason, MAX_DESCRIPTION_CHARS, true)?;
    }
    let by = req.caller()?.user_id.clone();
    require_staff(api.directory.as_ref(), &server, &by, false).await?;
    let now = TimestampMs::now();
    let cx = req.cx(crate::op!("ban"), StatusCode::OK);
    let outcome = api
        .directory
        .ban(&cx, &server, &request.user_id, request.reason, &by, now)
        .await?;
    let reply = Reply::from_outcome(StatusCode::OK, outcome)?;
    // The ban is committed: a connected user leaves the server's live room now, not at their
    // next reconnect.
    api.withdrawal
        .user(&server, &request.user_id, AccessDeniedReason::Banned);
    Ok(reply)
}

/// `DELETE /api/servers/{serverId}/bans/{userId}`.
pub async fn unban(api: Arc<ServersApi>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let user = UserId::from(req.param(1));
    require_staff(
        api.directory.as_ref(),
        &server,
        &req.caller()?.user_id,
        false,
    )
    .await?;
    let cx = req.cx(crate::op!("unban"), StatusCode::OK);
    let outcome = api.directory.unban(&cx, &server, &user).await?;
    Reply::from_outcome(StatusCode::OK, outcome)
}

/// `PUT /api/servers/{serverId}/password`.
pub async fn set_password(api: Arc<ServersApi>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let request: SetPasswordRequest = req.json()?;
    let given = request.password.expose();
    if given.is_empty() || given.chars().count() > MAX_PASSWORD_CHARS {
        return Err(ApiFailure::bad_request(format!(
            "field `password`: must be 1 to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    require_staff(
        api.directory.as_ref(),
        &server,
        &req.caller()?.user_id,
        true,
    )
    .await?;
    let hash = api
        .passwords
        .hash(request.password)
        .await
        .map_err(|e| ApiFailure::internal(&e))?;
    let cx = req.cx(crate::op!("set_password"), StatusCode::OK);
    let outcome = api
        .directory
        .set_password_hash(&cx, &server, Some(hash))
        .await?;
    let reply = Reply::from_outcome(StatusCode::OK, outcome)?;
    // Whoever entered with the old password (or none) and is not a member leaves now.
    api.withdrawal.recheck(&server).await?;
    Ok(reply)
}

/// `DELETE /api/servers/{serverId}/password`.
pub async fn clear_password(api: Arc<ServersApi>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    require_staff(
        api.directory.as_ref(),
        &server,
        &req.caller()?.user_id,
        true,
    )
    .await?;
    let cx = req.cx(crate::op!("clear_password"), StatusCode::OK);
    let outcome = api.directory.set_password_hash(&cx, &server, None).await?;
    Reply::from_outcome(StatusCode::OK, outcome)
}
