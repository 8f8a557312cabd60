//! `/api/servers/{serverId}/members`: the roster of the directory, roles, leaving.
//!
//! Owners appoint moderators; staff remove members; a member may leave. Permission questions
//! go to [`crate::directory::access`].

use std::sync::Arc;

use signalbox_protocol::http::{MemberList, MemberRole, SetRoleRequest};
use signalbox_protocol::{ServerId, UserId};
use warp::http::{Method, StatusCode};

use super::servers::{denied, require_staff};
use super::{AuthRule, Reply, Req, Route, body, handler};
use crate::directory::Directory;
use crate::directory::access::Staff;
use crate::http::ApiFailure;
use crate::withdrawal::Withdrawal;

/// The services of `/api/servers/{serverId}/members/*`.
#[derive(Debug)]
pub struct MembersApi {
    /// Every directory command and query.
    pub directory: Arc<dyn Directory>,
    /// Takes a removed member's live connections out of the room.
    pub withdrawal: Withdrawal,
}

/// This family's routes.
pub fn routes() -> Vec<Route<MembersApi>> {
    let one = "/api/servers/{serverId}/members/{userId}";
    vec![
        Route::new(
            Method::GET,
            "/api/servers/{serverId}/members",
            AuthRule::Read,
            "Lists members and their roles (private servers: members only).",
            handler!(list),
        )
        .paginated()
        .answers(body!(MemberList)),
        Route::new(
            Method::PUT,
            one,
            AuthRule::Token,
            "Makes a member a moderator or a plain member (owner only).",
            handler!(set_role),
        )
        .takes(body!(SetRoleRequest))
        .answers(body!(Membership)),
        Route::new(
            Method::DELETE,
            one,
            AuthRule::Token,
            "Removes a member (owner and moderators; a member may remove themself).",
            handler!(remove),
        )
        .answers(body!(OkResponse)),
    ]
}

/// `GET /api/servers/{serverId}/members`.
pub async fn list(api: Arc<MembersApi>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let page = req.page()?;
    let user = req.caller.as_ref().map(|c| c.user_id.clone());
    let result = api
        .directory
        .list_members(&crate::op!("list"), &server, user.as_ref(), page.query())
        .await?
        .map_err(denied)?;
    Reply::ok(&MemberList {
        items: result.items,
        next_cursor: result.next_cursor,
    })
}

/// `PUT /api/servers/{serverId}/members/{userId}`.
pub async fn set_role(api: Arc<MembersApi>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let user = UserId::from(req.param(1));
    let request: SetRoleRequest = req.json()?;
    require_staff(
        api.directory.as_ref(),
        &server,
        &req.caller()?.user_id,
        true,
    )
    .await?;
    let cx = req.cx(crate::op!("set_role"), StatusCode::OK);
    let outcome = api
        .directory
        .set_role(&cx, &server, &user, request.role)
        .await?;
    Reply::from_outcome(StatusCode::OK, outcome)
}

/// `DELETE /api/servers/{serverId}/members/{userId}`.
pub async fn remove(api: Arc<MembersApi>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let user = UserId::from(req.param(1));
    let caller = req.caller()?.user_id.clone();
    if caller != user {
        let staff = require_staff(api.directory.as_ref(), &server, &caller, false).await?;
        let target = api
            .directory
            .role(&crate::op!("remove"), &server, &user)
            .await?;
        if staff == Staff::Moderator && target == Some(MemberRole::Moderator) {
            return Err(ApiFailure::forbidden(
                "a moderator cannot remove another moderator",
            ));
        }
    }
    let cx = req.cx(crate::op!("remove"), StatusCode::OK);
    let outcome = api.directory.remove_member(&cx, &server, &user).await?;
    let reply = Reply::from_outcome(StatusCode::OK, outcome)?;
    // A removed member's live connections leave the room now, not at their next reconnect.
    api.withdrawal.user(
        &server,
        &user,
        signalbox_protocol::AccessDeniedReason::Removed,
    );
    Ok(reply)
}
