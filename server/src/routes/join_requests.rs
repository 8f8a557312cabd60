//! Join requests to private servers: ask, list (staff), approve, reject (staff), withdraw
//! (the requester). An approved request makes the requester a member, which
//! [`crate::directory::access`] then admits.

use std::sync::Arc;

use signalbox_protocol::http::{
    ApiErrorCode, CreateJoinRequest, JoinRequest, JoinRequestList, JoinRequestStatus,
};
use signalbox_protocol::{ServerId, TimestampMs};
use warp::http::{Method, StatusCode};

use super::servers::require_staff;
use super::{AuthRule, Reply, Req, Route, body, handler};
use crate::directory::Directory;
use crate::http::ApiFailure;

/// Longest join request message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// The services of the join request routes.
#[derive(Debug)]
pub struct JoinRequestsApi {
    /// Every directory command and query.
    pub directory: Arc<dyn Directory>,
}

/// This family's routes.
pub fn routes() -> Vec<Route<JoinRequestsApi>> {
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
pub async fn create(api: Arc<JoinRequestsApi>, req: Req) -> Result<Reply, ApiFailure> {
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
    let cx = req.cx(crate::op!("create"), StatusCode::CREATED);
    let outcome = api.directory.create_join_request(&cx, join_request).await?;
    Reply::from_outcome(StatusCode::CREATED, outcome)
}

/// `GET /api/servers/{serverId}/join-requests`.
pub async fn list(api: Arc<JoinRequestsApi>, req: Req) -> Result<Reply, ApiFailure> {
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
        .pending_join_requests(&crate::op!("list"), &server, page.query())
        .await?;
    Reply::ok(&JoinRequestList {
        items: result.items,
        next_cursor: result.next_cursor,
    })
}

async fn request_of(
    api: &JoinRequestsApi,
    server: &ServerId,
    id: &str,
) -> Result<JoinRequest, ApiFailure> {
    let request = api
        .directory
        .join_request(&crate::op!("request_of"), id)
        .await?
        .filter(|r| r.server_id == *server)
        .ok_or_else(|| ApiFailure::not_found("join request"))?;
    Ok(request)
}

async fn decide(
    api: Arc<JoinRequestsApi>,
    req: Req,
    status: JoinRequestStatus,
) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let id = req.param(1).to_owned();
    let by = req.caller()?.user_id.clone();
    request_of(&api, &server, &id).await?;
    if status != JoinRequestStatus::Withdrawn {
        require_staff(api.directory.as_ref(), &server, &by, false).await?;
    }
    let now = TimestampMs::now();
    let cx = req.cx(crate::op!("decide"), StatusCode::OK);
    let outcome = api
        .directory
        .decide_join_request(&cx, &id, status, &by, now)
        .await?;
    Reply::from_outcome(StatusCode::OK, outcome)
}

/// `POST .../approve`.
pub async fn approve(api: Arc<JoinRequestsApi>, req: Req) -> Result<Reply, ApiFailure> {
    decide(api, req, JoinRequestStatus::Approved).await
}

/// `POST .../reject`.
pub async fn reject(api: Arc<JoinRequestsApi>, req: Req) -> Result<Reply, ApiFailure> {
    decide(api, req, JoinRequestStatus::Rejected).await
}

/// `DELETE .../{requestId}`.
pub async fn withdraw(api: Arc<JoinRequestsApi>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let request = request_of(&api, &server, req.param(1)).await?;
    if request.user_id != req.caller()?.user_id {
        return Err(ApiFailure::new(
            ApiErrorCode::Forbidden,
            "only the requester may withdraw a join request",
        ));
    }
    decide(api, req, JoinRequestStatus::Withdrawn).await
}
