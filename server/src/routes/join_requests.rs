//! Join requests to private servers: ask, list (staff), approve, reject (staff), withdraw
//! (the requester). An approved request makes the requester a member, which
//! [`crate::directory::access`] then admits.

use std::sync::Arc;

use signalbox_protocol::http::{
    ApiErrorCode, CreateJoinRequest, JoinRequest, JoinRequestList, JoinRequestStatus,
    ServerVisibility,
};
use signalbox_protocol::{ServerId, TimestampMs};
use warp::http::{Method, StatusCode};

use super::servers::require_staff;
use super::{AuthRule, Reply, Req, Route, body, handler};
use crate::app::AppState;
use crate::directory::{DirectoryError, commands, queries};
use crate::http::ApiFailure;

/// Longest join request message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// This family's routes.
pub fn routes() -> Vec<Route> {
    let one = "/api/servers/{serverId}/join-requests/{requestId}";
    vec![
        Route::new(
            Method::POST,
            "/api/servers/{serverId}/join-requests",
            AuthRule::Token,
            "Asks to join a private server (201).",
            handler!(create),
        )
        .takes(body!(CreateJoinRequest))
        .answers(body!(JoinRequest)),
        Route::new(
            Method::GET,
            "/api/servers/{serverId}/join-requests",
            AuthRule::Token,
            "Lists pending join requests (owner and moderators).",
            handler!(list),
        )
        .paginated()
        .answers(body!(JoinRequestList)),
        Route::new(
            Method::POST,
            "/api/servers/{serverId}/join-requests/{requestId}/approve",
            AuthRule::Token,
            "Approves a pending request: the requester becomes a member (owner and moderators).",
            handler!(approve),
        )
        .answers(body!(JoinRequest)),
        Route::new(
            Method::POST,
            "/api/servers/{serverId}/join-requests/{requestId}/reject",
            AuthRule::Token,
            "Rejects a pending request (owner and moderators).",
            handler!(reject),
        )
        .answers(body!(JoinRequest)),
        Route::new(
            Method::DELETE,
            one,
            AuthRule::Token,
            "Withdraws a pending request (the requester).",
            handler!(withdraw),
        )
        .answers(body!(JoinRequest)),
    ]
}

/// `POST /api/servers/{serverId}/join-requests`.
pub async fn create(state: Arc<AppState>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let request: CreateJoinRequest = req.json()?;
    if let Some(m) = &request.message
        && m.chars().count() > MAX_MESSAGE_CHARS
    {
        return Err(ApiFailure::bad_request(format!(
            "field `message`: at most {MAX_MESSAGE_CHARS} characters"
        )));
    }
    if let Some(m) = &request.message {
        super::servers::check_text("message", m, MAX_MESSAGE_CHARS, true)?;
    }
    let user = req.caller()?.user_id.clone();
    let join_request = JoinRequest {
        id: uuid::Uuid::new_v4().to_string(),
        server_id: server.clone(),
        user_id: user.clone(),
        message: request.message,
        status: JoinRequestStatus::Pending,
        created_at: TimestampMs::now(),
        decided_at: None,
    };
    req.write(&state, StatusCode::CREATED, move |c| {
        let record = queries::server(c, &server)?.ok_or(DirectoryError::NotFound("server"))?;
        if queries::is_banned(c, &server, &user)? {
            return Err(DirectoryError::Forbidden("banned from this server".into()));
        }
        if record.summary.visibility == ServerVisibility::Public {
            return Err(DirectoryError::Conflict(
                "the server is public: join it directly".into(),
            ));
        }
        commands::create_join_request(c, &join_request)?;
        Ok(join_request)
    })
    .await
}

/// `GET /api/servers/{serverId}/join-requests`.
pub async fn list(state: Arc<AppState>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let page = req.page()?;
    require_staff(&state, &server, &req.caller()?.user_id, false).await?;
    let result = state
        .db
        .call(move |c| {
            queries::pending_join_requests(c, &server, page.limit, page.cursor.as_deref())
                .map_err(DirectoryError::from)
        })
        .await?;
    Reply::ok(&JoinRequestList {
        items: result.items,
        next_cursor: result.next_cursor,
    })
}

async fn request_of(
    state: &AppState,
    server: &ServerId,
    id: &str,
) -> Result<JoinRequest, ApiFailure> {
    let lookup = id.to_owned();
    let request = state
        .db
        .call(move |c| queries::join_request(c, &lookup).map_err(DirectoryError::from))
        .await?
        .filter(|r| r.server_id == *server)
        .ok_or_else(|| ApiFailure::not_found("join request"))?;
    Ok(request)
}

async fn decide(
    state: Arc<AppState>,
    req: Req,
    status: JoinRequestStatus,
) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let id = req.param(1).to_owned();
    let by = req.caller()?.user_id.clone();
    request_of(&state, &server, &id).await?;
    if status != JoinRequestStatus::Withdrawn {
        require_staff(&state, &server, &by, false).await?;
    }
    let now = TimestampMs::now();
    req.write(&state, StatusCode::OK, move |c| {
        commands::decide_join_request(c, &id, status, &by, now)
    })
    .await
}

/// `POST .../approve`.
pub async fn approve(state: Arc<AppState>, req: Req) -> Result<Reply, ApiFailure> {
    decide(state, req, JoinRequestStatus::Approved).await
}

/// `POST .../reject`.
pub async fn reject(state: Arc<AppState>, req: Req) -> Result<Reply, ApiFailure> {
    decide(state, req, JoinRequestStatus::Rejected).await
}

/// `DELETE .../{requestId}`.
pub async fn withdraw(state: Arc<AppState>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let request = request_of(&state, &server, req.param(1)).await?;
    if request.user_id != req.caller()?.user_id {
        return Err(ApiFailure::new(
            ApiErrorCode::Forbidden,
            "only the requester may withdraw a join request",
        ));
    }
    decide(state, req, JoinRequestStatus::Withdrawn).await
}
