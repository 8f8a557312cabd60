//! `/api/games`: the catalogue of games, persisted and edited by operators (`operatorUserIds`).

use std::sync::Arc;

use signalbox_protocol::TimestampMs;
use signalbox_protocol::http::{GameList, UpsertGameRequest};
use warp::http::{Method, StatusCode};

use super::{AuthRule, Reply, Req, Route, body, handler};
use crate::directory::Directory;
use crate::http::ApiFailure;

/// The services of `/api/games/*`.
#[derive(Debug)]
pub struct GamesApi {
    /// Every directory command and query.
    pub directory: Arc<dyn Directory>,
}

/// This family's routes.
pub fn routes() -> Vec<Route<GamesApi>> {
    vec![
        Route::new(
            Method::GET,
            "/api/games",
            AuthRule::Read,
            "Lists the games catalogue.",
            handler!(list),
        )
        .paginated()
        .answers(body!(GameList)),
        Route::new(
            Method::PUT,
            "/api/games/{gameId}",
            AuthRule::Operator,
            "Creates or replaces a game (operators).",
            handler!(upsert),
        )
        .takes(body!(UpsertGameRequest))
        .answers(body!(Game)),
        Route::new(
            Method::DELETE,
            "/api/games/{gameId}",
            AuthRule::Operator,
            "Removes a game (operators).",
            handler!(remove),
        )
        .answers(body!(OkResponse)),
    ]
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `GET /api/games`.
pub async fn list(api: Arc<GamesApi>, req: Req) -> Result<Reply, ApiFailure> {
    let page = req.page()?;
    let result = api
        .directory
        .list_games(&crate::op!("list"), page.query())
        .await?;
    Reply::ok(&GameList {
        items: result.items,
        next_cursor: result.next_cursor,
    })
}

/// `PUT /api/games/{gameId}`.
pub async fn upsert(api: Arc<GamesApi>, req: Req) -> Result<Reply, ApiFailure> {
    let id = req.param(0).to_owned();
    if !valid_id(&id) {
        return Err(ApiFailure::bad_request(
            "gameId must be 1 to 64 lowercase letters, digits or `-`",
        ));
    }
    let request: UpsertGameRequest = req.json()?;
    if request.name.trim().is_empty() || request.name.chars().count() > 100 {
        return Err(ApiFailure::bad_request(
            "field `name`: must be 1 to 100 characters",
        ));
    }
    let now = TimestampMs::now();
    let cx = req.cx(crate::op!("upsert"), StatusCode::OK);
    let outcome = api.directory.upsert_game(&cx, &id, request, now).await?;
    Reply::from_outcome(StatusCode::OK, outcome)
}

/// `DELETE /api/games/{gameId}`.
pub async fn remove(api: Arc<GamesApi>, req: Req) -> Result<Reply, ApiFailure> {
    let id = req.param(0).to_owned();
    let cx = req.cx(crate::op!("remove"), StatusCode::OK);
    let outcome = api.directory.delete_game(&cx, &id).await?;
    Reply::from_outcome(StatusCode::OK, outcome)
}
