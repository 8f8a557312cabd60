//! JSON bodies of the HTTP routes (`/api/...`), one module per route family.
//!
//! Every JSON error of these routes has one shape, [`ApiError`]; the SSE routes keep their own
//! (see [`crate::sse`]).

pub mod admin;
pub mod auth;
pub mod error;
pub mod games;
pub mod health;
pub mod invites;
pub mod join_requests;
pub mod klipy;
pub mod link_metadata;
pub mod pagination;
pub mod plugins;
pub mod servers;
pub mod users;

pub use admin::*;
pub use auth::*;
pub use error::*;
pub use games::*;
pub use health::*;
pub use invites::*;
pub use join_requests::*;
pub use klipy::*;
pub use link_metadata::*;
pub use pagination::*;
pub use plugins::*;
pub use servers::*;
pub use users::*;

use crate::catalog::{CatalogVisitor, Entry, Examples, Surface};

/// Walks the HTTP bodies of the catalog; each route family adds its own lines here.
pub(crate) fn visit_catalog<V: CatalogVisitor>(visitor: &mut V) {
    let http = |usage| Entry {
        surface: Surface::Http,
        examples: Examples::One,
        usage,
    };
    visitor.visit::<ApiError>(http("every /api route (error body)"));
    visitor.visit::<HealthResponse>(http("GET /api/health, GET /api/ready (200 body)"));
    visitor.visit::<OkResponse>(http("writes that return nothing else (200 body)"));
    visitor.visit::<ChallengeRequest>(http("POST /api/auth/challenge (request body)"));
    visitor.visit::<ChallengeResponse>(http("POST /api/auth/challenge (200 body)"));
    visitor.visit::<VerifyRequest>(http("POST /api/auth/verify (request body)"));
    visitor.visit::<GuestRequest>(http("POST /api/auth/guest (request body)"));
    visitor.visit::<TokenResponse>(http(
        "POST /api/auth/verify, POST /api/auth/guest (200 body)",
    ));
    visitor.visit::<MeResponse>(http("GET /api/auth/me (200 body)"));
    visitor.visit::<UserProfile>(http("GET /api/users/{oderId} (200 body)"));
    visitor.visit::<CreateServerRequest>(http("POST /api/servers (request body)"));
    visitor.visit::<UpdateServerRequest>(http("PATCH /api/servers/{serverId} (request body)"));
    visitor.visit::<ServerSummary>(http("POST, GET, PATCH /api/servers/{serverId} (200 body)"));
    visitor.visit::<ServerList>(http("GET /api/servers (200 body)"));
    visitor.visit::<BanRequest>(http("POST /api/servers/{serverId}/bans (request body)"));
    visitor.visit::<Ban>(http("POST /api/servers/{serverId}/bans (200 body)"));
    visitor.visit::<BanList>(http("GET /api/servers/{serverId}/bans (200 body)"));
    visitor
        .visit::<SetPasswordRequest>(http("PUT /api/servers/{serverId}/password (request body)"));
    visitor.visit::<Membership>(http(
        "POST /api/invites/{code}/accept, PUT /api/servers/{serverId}/members/{userId} (200 body)",
    ));
    visitor.visit::<SetRoleRequest>(http(
        "PUT /api/servers/{serverId}/members/{userId} (request body)",
    ));
    visitor.visit::<MemberList>(http("GET /api/servers/{serverId}/members (200 body)"));
    visitor
        .visit::<CreateInviteRequest>(http("POST /api/servers/{serverId}/invites (request body)"));
    visitor.visit::<Invite>(http("POST /api/servers/{serverId}/invites (200 body)"));
    visitor.visit::<InviteResolution>(http("GET /api/invites/{code} (200 body)"));
    visitor.visit::<CreateJoinRequest>(http(
        "POST /api/servers/{serverId}/join-requests (request body)",
    ));
    visitor.visit::<JoinRequest>(http("join-request writes (200 body)"));
    visitor.visit::<JoinRequestList>(http("GET /api/servers/{serverId}/join-requests (200 body)"));
    visitor.visit::<UpsertGameRequest>(http("PUT /api/games/{gameId} (request body)"));
    visitor.visit::<Game>(http("PUT /api/games/{gameId} (200 body)"));
    visitor.visit::<GameList>(http("GET /api/games (200 body)"));
    visitor.visit::<PluginManifestRequest>(http(
        "PUT /api/servers/{serverId}/plugins/{pluginId} (request body)",
    ));
    visitor.visit::<PluginManifest>(http(
        "PUT /api/servers/{serverId}/plugins/{pluginId} (200 body)",
    ));
    visitor.visit::<PluginManifestList>(http("GET /api/servers/{serverId}/plugins (200 body)"));
    visitor.visit::<LinkMetadata>(http("GET /api/link-metadata (200 body)"));
    visitor.visit::<GifPage>(http(
        "GET /api/klipy/gifs/search, GET /api/klipy/gifs/trending (200 body)",
    ));
    visitor.visit::<AdminStats>(http("GET /admin/stats (200 body, operator dashboard)"));
}
