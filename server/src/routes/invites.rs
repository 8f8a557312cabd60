//! Invites: create (owner/moderator), resolve by code, accept, revoke.
//!
//! Codes are 16 random bytes (base64url): unguessable. Never lists a private server to someone
//! without a valid code.

use std::sync::Arc;

use signalbox_protocol::http::{CreateInviteRequest, Invite, InviteResolution};
use signalbox_protocol::{ServerId, TimestampMs};
use warp::http::{Method, StatusCode};

use super::servers::require_staff;
use super::{AuthRule, Reply, Req, Route, body, handler};
use crate::auth::random_code;
use crate::directory::Directory;
use crate::http::ApiFailure;

/// The services of the invite routes.
#[derive(Debug)]
pub struct InvitesApi {
    /// Every directory command and query.
    pub directory: Arc<dyn Directory>,
}

/// This family's routes.
pub fn routes() -> Vec<Route<InvitesApi>> {
    vec![
        Route::new(
            Method::POST,
            "/api/servers/{serverId}/invites",
            AuthRule::Token,
            "Creates an invite with optional expiry and use limit (owner and moderators, 201).",
            handler!(create),
        )
        .takes(body!(CreateInviteRequest))
        .answers(body!(Invite)),
        Route::new(
            Method::GET,
            "/api/invites/{code}",
            AuthRule::Read,
            "Resolves a code to its server's public summary (410 when expired, revoked, used up).",
            handler!(resolve),
        )
        .answers(body!(InviteResolution)),
        Route::new(
            Method::POST,
            "/api/invites/{code}/accept",
            AuthRule::Token,
            "Uses an invite: the caller becomes a member.",
            handler!(accept),
        )
        .answers(body!(Membership)),
        Route::new(
            Method::DELETE,
            "/api/invites/{code}",
            AuthRule::Token,
            "Revokes an invite (owner and moderators of its server).",
            handler!(revoke),
        )
        .answers(body!(OkResponse)),
    ]
}

/// `POST /api/servers/{serverId}/invites`.
pub async fn create(api: Arc<InvitesApi>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let request: CreateInviteRequest = req.json()?;
    if request.expires_in_seconds == Some(0) || request.max_uses == Some(0) {
        return Err(ApiFailure::bad_request(
            "fields `expiresInSeconds` and `maxUses` must be at least 1",
        ));
    }
    let by = req.caller()?.user_id.clone();
    require_staff(api.directory.as_ref(), &server, &by, false).await?;
    let now = TimestampMs::now();
    let invite = Invite {
        code: random_code(),
        server_id: server,
        created_by: by,
        created_at: now,
        expires_at: request
            .expires_in_seconds
            .map(|s| TimestampMs(now.0 + i64::from(s) * 1000)),
        max_uses: request.max_uses,
        uses: 0,
    };
    let cx = req.cx(crate::op!("create"), StatusCode::CREATED);
    let outcome = api.directory.create_invite(&cx, invite).await?;
    Reply::from_outcome(StatusCode::CREATED, outcome)
}

/// `GET /api/invites/{code}`.
pub async fn resolve(api: Arc<InvitesApi>, req: Req) -> Result<Reply, ApiFailure> {
    let code = req.param(0).to_owned();
    let now = TimestampMs::now();
    let resolution: InviteResolution = api
        .directory
        .resolve_invite(&crate::op!("resolve"), &code, now)
        .await?;
    Reply::ok(&resolution)
}

/// `POST /api/invites/{code}/accept`.
pub async fn accept(api: Arc<InvitesApi>, req: Req) -> Result<Reply, ApiFailure> {
    let code = req.param(0).to_owned();
    let user = req.caller()?.user_id.clone();
    let now = TimestampMs::now();
    let cx = req.cx(crate::op!("accept"), StatusCode::OK);
    let outcome = api.directory.accept_invite(&cx, &code, &user, now).await?;
    Reply::from_outcome(StatusCode::OK, outcome)
}

/// `DELETE /api/invites/{code}`.
pub async fn revoke(api: Arc<InvitesApi>, req: Req) -> Result<Reply, ApiFailure> {
    let code = req.param(0).to_owned();
    let record = api
        .directory
        .invite(&crate::op!("revoke"), &code)
        .await?
        .ok_or_else(|| ApiFailure::not_found("invite"))?;
    require_staff(
        api.directory.as_ref(),
        &record.invite.server_id,
        &req.caller()?.user_id,
        false,
    )
    .await?;
    let cx = req.cx(crate::op!("revoke"), StatusCode::OK);
    let outcome = api.directory.revoke_invite(&cx, &code).await?;
    Reply::from_outcome(StatusCode::OK, outcome)
}
