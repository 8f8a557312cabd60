//! `/api/users/{oderId}`: last known public profiles.
//!
//! Never returns anything but the public profile (no key, no guest flag).

use std::sync::Arc;

use signalbox_protocol::UserId;
use signalbox_protocol::http::UserProfile;
use warp::http::Method;

use super::{AuthRule, Reply, Req, Route, body, handler};
use crate::directory::Directory;
use crate::http::ApiFailure;

/// The services of `/api/users/*`.
#[derive(Debug)]
pub struct UsersApi {
    /// Every directory command and query.
    pub directory: Arc<dyn Directory>,
}

/// This family's routes.
pub fn routes() -> Vec<Route<UsersApi>> {
    vec![
        Route::new(
            Method::GET,
            "/api/users/{oderId}",
            AuthRule::Read,
            "The last known public profile of a user.",
            handler!(profile),
        )
        .answers(body!(UserProfile)),
    ]
}

/// `GET /api/users/{oderId}`.
pub async fn profile(api: Arc<UsersApi>, req: Req) -> Result<Reply, ApiFailure> {
    let user = UserId::from(req.param(0));
    let profile = api
        .directory
        .user_profile(&crate::op!("profile"), &user)
        .await?
        .ok_or_else(|| ApiFailure::not_found("user"))?;
    Reply::ok::<UserProfile>(&profile)
}
