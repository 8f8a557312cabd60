//! The REST routes, one file per family, and THE route table.
//!
//! Each family file lists its routes once (method, path template, auth rule, body types,
//! handler) as [`Route`]s over its own `*Api` struct, which holds only the services that family
//! uses. One list of families (the `route_families!` call below) gives both [`all`] (the
//! metadata, no service needed: it feeds the OpenAPI document [`openapi`] and `export.rs`) and
//! [`bind_all`] (the same routes bound to their services, served by the [`Router`]), so a route
//! cannot be served without being documented or documented without being served.
//!
//! Owns routing, the auth rule of each route, and the `Idempotency-Key` replay around writes.
//! Never holds SQL (see [`crate::directory`]) or token crypto (see [`crate::auth`]), and never
//! reaches for the application's wiring (`crate::app`): every service comes in through an `*Api`
//! struct or the [`Router`].

pub mod auth;
pub mod games;
pub mod health;
pub mod invites;
pub mod join_requests;
pub mod klipy;
pub mod link_metadata;
pub mod members;
pub mod openapi;
pub mod plugins;
pub mod proxy;
pub mod servers;
pub mod sse;
pub mod users;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use signalbox_protocol::TimestampMs;
use signalbox_protocol::http::{ApiErrorCode, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::Reply as _;

use crate::auth::{AuthError, Authority, Caller};
use crate::config::AuthMode;
use crate::directory::{Cx, Directory, Outcome};
use crate::http::address_limits::AddressLimits;
use crate::http::{ApiFailure, idempotency, parse_json, percent_decode};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRule {
    /// Anyone, always (health, docs, obtaining a token).
    Public,
    /// Anyone in `auth: open`; a token in `auth: required`.
    Read,
    /// A valid token, in every mode.
    Token,
    /// A valid token of a user listed in `operatorUserIds`.
    Operator,
}

impl AuthRule {
    /// A short label for docs.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Read => "token when auth=required",
            Self::Token => "token",
            Self::Operator => "operator token",
        }
    }
}

/// A JSON body type of the protocol crate, by name and schema.
#[derive(Debug, Clone, Copy)]
pub struct BodyType {
    /// The type's name (the name of its file in `schemas/`).
    pub name: &'static str,
    /// Its JSON Schema.
    pub schema: fn() -> serde_json::Value,
}

/// A [`BodyType`] for a protocol type.
macro_rules! body {
    ($t:ident) => {
        $crate::routes::BodyType {
            name: stringify!($t),
            schema: signalbox_protocol::catalog::schema_for::<signalbox_protocol::http::$t>,
        }
    };
}
pub(crate) use body;

/// What a handler answers.
pub type Answer = BoxFuture<'static, Result<Reply, ApiFailure>>;

/// A handler: an async function of its family's services (`A`, an `*Api` struct) and the request.
pub type Handler<A> = fn(Arc<A>, Req) -> Answer;

/// Wraps `async fn(Arc<XApi>, Req) -> Result<Reply, ApiFailure>` as a [`Handler`].
macro_rules! handler {
    ($f:path) => {
        |api, req| -> $crate::routes::Answer { Box::pin($f(api, req)) }
    };
}
pub(crate) use handler;

/// What the docs and the router know of a route: everything but its code.
#[derive(Clone)]
pub struct RouteMeta {
    /// The method.
    pub method: Method,
    /// The path template, `{name}` for a parameter.
    pub path: &'static str,
    /// Who may call it.
    pub auth: AuthRule,
    /// One line for the docs.
    pub summary: &'static str,
    /// The JSON request body, if it takes one.
    pub request: Option<BodyType>,
    /// The JSON success body (`None` for a non-JSON answer, such as the docs page).
    pub response: Option<BodyType>,
    /// Whether it takes `limit`/`cursor` (and `q`) query parameters.
    pub paginated: bool,
    /// The media type of a non-JSON success body (`image/*` for the image proxy).
    pub media: Option<&'static str>,
    /// Other query parameters it reads: name and whether it is required.
    pub query: &'static [(&'static str, bool)],
    /// Whether the request body carries a secret (a password): an `Idempotency-Key` record of
    /// this route keeps the status only.
    pub secret_body: bool,
}

impl std::fmt::Debug for RouteMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// One route of a family: its metadata and its handler over the family's services `A`.
pub struct Route<A> {
    /// Method, path, auth rule, bodies.
    pub meta: RouteMeta,
    /// The code.
    pub handler: Handler<A>,
}

impl<A> std::fmt::Debug for Route<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.meta.fmt(f)
    }
}

impl<A> Route<A> {
    /// A route; set bodies with [`Route::takes`], [`Route::answers`], [`Route::paginated`].
    pub fn new(
        method: Method,
        path: &'static str,
        auth: AuthRule,
        summary: &'static str,
        handler: Handler<A>,
    ) -> Self {
        Self {
            meta: RouteMeta {
                method,
                path,
                auth,
                summary,
                request: None,
                response: None,
                paginated: false,
                media: None,
                query: &[],
                secret_body: false,
            },
            handler,
        }
    }

    /// Declares that the request body carries a secret (see [`Route::secret_body`]).
    pub fn secret_body(mut self) -> Self {
        self.meta.secret_body = true;
        self
    }

    /// Declares the request body.
    pub fn takes(mut self, body: BodyType) -> Self {
        self.meta.request = Some(body);
        self
    }

    /// Declares the success body.
    pub fn answers(mut self, body: BodyType) -> Self {
        self.meta.response = Some(body);
        self
    }

    /// Declares a non-JSON success body of media type `media`.
    pub fn answers_media(mut self, media: &'static str) -> Self {
        self.meta.media = Some(media);
        self
    }

    /// Declares query parameters (name, required) other than the pagination ones.
    pub fn query(mut self, params: &'static [(&'static str, bool)]) -> Self {
        self.meta.query = params;
        self
    }

    /// Declares the pagination query.
    pub fn paginated(mut self) -> Self {
        self.meta.paginated = true;
        self
    }
}

impl RouteMeta {
    /// The path parameters of `path` if it matches this route's template.
    fn match_path(&self, path: &str) -> Option<Result<Vec<String>, ApiFailure>> {
        let template = self.path.trim_start_matches('/').split('/');
        let given: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let template: Vec<&str> = template.collect();
        if template.len() != given.len() {
            return None;
        }
        let mut params = Vec::new();
        for (t, g) in template.iter().zip(&given) {
            if t.starts_with('{') {
                if g.is_empty() {
                    return None;
                }
                match percent_decode(g) {
                    Some(v) => params.push(v),
                    None => {
                        return Some(Err(ApiFailure::bad_request(format!(
                            "path parameter {t} is not valid percent-encoded UTF-8"
                        ))));
                    }
                }
            } else if t != g {
                return None;
            }
        }
        Some(Ok(params))
    }
}

/// A route bound to its family's services: what the [`Router`] serves.
pub struct BoundRoute {
    /// Method, path, auth rule, bodies.
    pub meta: RouteMeta,
    /// The handler with its services.
    pub call: Arc<dyn Fn(Req) -> Answer + Send + Sync>,
}

impl std::fmt::Debug for BoundRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.meta.fmt(f)
    }
}

/// Binds a family's routes to its services.
pub fn bind<A: Send + Sync + 'static>(table: Vec<Route<A>>, api: &Arc<A>) -> Vec<BoundRoute> {
    table
        .into_iter()
        .map(|route| {
            let api = Arc::clone(api);
            let handler = route.handler;
            BoundRoute {
                meta: route.meta,
                call: Arc::new(move |req| handler(Arc::clone(&api), req)),
            }
        })
        .collect()
}

/// The list of families, in documentation order, given once: makes [`Apis`] (one field per
/// family), [`all`] and [`bind_all`].
macro_rules! route_families {
    ($($family:ident: $api:ty),* $(,)?) => {
        /// Every family's services, as the application wires them.
        pub struct Apis {
            $(
                #[doc = concat!("The services of [`", stringify!($family), "`].")]
                pub $family: Arc<$api>,
            )*
        }

        impl std::fmt::Debug for Apis {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_list().entries([$(stringify!($family)),*]).finish()
            }
        }

        /// Every route the server serves, in documentation order (metadata only).
        pub fn all() -> Vec<RouteMeta> {
            let mut routes = Vec::new();
            $( routes.extend($family::routes().into_iter().map(|route| route.meta)); )*
            routes
        }

        /// Every route bound to its family's services, in the order of [`all`].
        pub fn bind_all(apis: &Apis) -> Vec<BoundRoute> {
            let mut routes = Vec::new();
            $( routes.extend(bind($family::routes(), &apis.$family)); )*
            routes
        }
    };
}

route_families!(
    health: health::HealthApi,
    auth: auth::AuthApi,
    users: users::UsersApi,
    servers: servers::ServersApi,
    members: members::MembersApi,
    invites: invites::InvitesApi,
    join_requests: join_requests::JoinRequestsApi,
    games: games::GamesApi,
    plugins: plugins::PluginsApi,
    link_metadata: link_metadata::LinkMetadataApi,
    proxy: proxy::ProxyApi,
    klipy: klipy::KlipyApi,
    sse: sse::SseApi,
    openapi: openapi::OpenApiApi,
);

/// A request as a handler sees it.
#[derive(Debug)]
pub struct Req {
    /// Path parameters, in template order (percent-decoded).
    pub params: Vec<String>,
    /// Query parameters (decoded).
    pub query: Vec<(String, String)>,
    /// The headers.
    pub headers: HeaderMap,
    /// The body (at most `maxBodyBytes`).
    pub body: Bytes,
    /// The caller, if a valid token was presented.
    pub caller: Option<Caller>,
    /// The `Idempotency-Key` claim of a write that sent one.
    pub idempotency: Option<idempotency::Claim>,
}

/// A validated page request.
#[derive(Debug, Clone, PartialEq)]
pub struct PageParams {
    /// Items per page.
    pub limit: u32,
    /// The cursor.
    pub cursor: Option<String>,
    /// The search text.
    pub q: Option<String>,
}

impl PageParams {
    /// The page to read from the directory.
    pub fn query(&self) -> crate::directory::store::PageQuery {
        crate::directory::store::PageQuery {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

impl Req {
    /// The `i`-th path parameter.
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }

    /// The body as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiFailure> {
        parse_json(&self.headers, &self.body)
    }

    /// The [`Cx`] of this request's directory write `op` (built with [`crate::op!`]): idempotent
    /// under its `Idempotency-Key` claim, if it sent one, its answer stored as `status`.
    ///
    /// The backend looks the key up in the write's own transaction (a finished key answers its
    /// stored response again, the same key with another request 422) and stores this answer
    /// with the change: a concurrent duplicate waits and replays, and a crash leaves the change
    /// and its record together or neither.
    pub fn cx(&self, op: Cx, status: StatusCode) -> Cx {
        op.with_claim(self.idempotency.clone(), status.as_u16())
    }

    /// The caller, or 401 when there is none.
    pub fn caller(&self) -> Result<&Caller, ApiFailure> {
        self.caller
            .as_ref()
            .ok_or_else(|| ApiFailure::from(AuthError::Missing))
    }

    /// `limit`, `cursor` and `q`, validated.
    pub fn page(&self) -> Result<PageParams, ApiFailure> {
        let mut page = PageParams {
            limit: DEFAULT_PAGE_LIMIT,
            cursor: None,
            q: None,
        };
        for (k, v) in &self.query {
            match k.as_str() {
                "limit" => {
                    let limit: u32 = v.parse().map_err(|_| {
                        ApiFailure::bad_request("query `limit` must be a positive integer")
                    })?;
                    if limit == 0 {
                        return Err(ApiFailure::bad_request("query `limit` must be at least 1"));
                    }
                    page.limit = limit.min(MAX_PAGE_LIMIT);
                }
                "cursor" => page.cursor = Some(v.clone()),
                "q" => page.q = Some(v.clone()).filter(|q| !q.trim().is_empty()),
                _ => {}
            }
        }
        Ok(page)
    }
}

/// A handler's success.
#[derive(Debug)]
pub enum Reply {
    /// JSON with a status.
    Json(StatusCode, serde_json::Value),
    /// An HTML page.
    Html(&'static str),
    /// A response built by the handler (a streamed body).
    Raw(warp::reply::Response),
}

impl Reply {
    /// 200 with `body` as JSON.
    pub fn ok<T: Serialize>(body: &T) -> Result<Self, ApiFailure> {
        Self::with_status(StatusCode::OK, body)
    }

    /// `status` with the value of a write that ran, or the stored answer of one replayed.
    pub fn from_outcome<T: Serialize>(
        status: StatusCode,
        outcome: Outcome<T>,
    ) -> Result<Self, ApiFailure> {
        match outcome {
            Outcome::Done(value) => Self::with_status(status, &value),
            Outcome::Replayed(replayed) => {
                Ok(Self::Raw(json_response(replayed.status, replayed.text)))
            }
        }
    }

    /// `status` with `body` as JSON.
    pub fn with_status<T: Serialize>(status: StatusCode, body: &T) -> Result<Self, ApiFailure> {
        serde_json::to_value(body)
            .map(|v| Self::Json(status, v))
            .map_err(|e| ApiFailure::internal(&e))
    }

    fn into_response(self) -> warp::reply::Response {
        match self {
            Self::Json(status, value) => {
                warp::reply::with_status(warp::reply::json(&value), status).into_response()
            }
            Self::Html(page) => warp::reply::html(page).into_response(),
            Self::Raw(response) => response,
        }
    }
}

fn json_response(status: u16, text: String) -> warp::reply::Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = warp::reply::with_status(text, status).into_response();
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// An incoming request, before routing.
#[derive(Debug)]
pub struct Incoming {
    /// The method.
    pub method: Method,
    /// The path (percent-encoded).
    pub path: String,
    /// The query parameters.
    pub query: Vec<(String, String)>,
    /// The headers.
    pub headers: HeaderMap,
    /// The client's address, when the listener knows it (for the per-address buckets).
    pub remote_ip: Option<std::net::IpAddr>,
    /// The body, already capped.
    pub body: Result<Bytes, ApiFailure>,
}

/// The REST router: the bound route table and what every route shares before its handler
/// runs (rate limits per address, the caller's token, the operator list, `Idempotency-Key`).
pub struct Router {
    routes: Vec<BoundRoute>,
    authority: Authority,
    directory: Arc<dyn Directory>,
    address_limits: Arc<AddressLimits>,
    operators: Vec<String>,
    idempotency_ttl_ms: i64,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.routes.len())
            .field("operators", &self.operators.len())
            .finish_non_exhaustive()
    }
}

impl Router {
    /// A router over `routes` (see [`bind_all`]); `operators` are the user ids
    /// `operatorUserIds` lists, `idempotency_ttl_ms` how long a key's answer is kept.
    pub fn new(
        routes: Vec<BoundRoute>,
        authority: Authority,
        directory: Arc<dyn Directory>,
        address_limits: Arc<AddressLimits>,
        operators: Vec<String>,
        idempotency_ttl_ms: i64,
    ) -> Self {
        Self {
            routes,
            authority,
            directory,
            address_limits,
            operators,
            idempotency_ttl_ms,
        }
    }

    /// Routes `incoming` through the table and answers; never fails (errors become `ApiError`s).
    ///
    /// Logs method, status and latency at debug level; never the path (it may hold an invite
    /// code), the query or any header.
    pub async fn dispatch(&self, incoming: Incoming) -> warp::reply::Response {
        let started = std::time::Instant::now();
        let method = incoming.method.clone();
        let class = crate::http::address_limits::RouteClass::of(&method, &incoming.path);
        if let Err(wait) = self
            .address_limits
            .check(incoming.remote_ip, class, started)
        {
            return rate_limited(wait);
        }
        let response = match self.dispatch_inner(incoming).await {
            Ok(response) => response,
            Err(failure) => failure.into_response(),
        };
        tracing::debug!(
            %method,
            status = response.status().as_u16(),
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "api request"
        );
        response
    }

    async fn dispatch_inner(
        &self,
        incoming: Incoming,
    ) -> Result<warp::reply::Response, ApiFailure> {
        let mut path_matched = false;
        let mut found = None;
        for route in &self.routes {
            if let Some(params) = route.meta.match_path(&incoming.path) {
                path_matched = true;
                if route.meta.method == incoming.method {
                    found = Some((route, params?));
                    break;
                }
            }
        }
        let Some((bound, params)) = found else {
            let what = if path_matched { "method" } else { "route" };
            return Err(ApiFailure::new(
                ApiErrorCode::NotFound,
                format!("no such {what}: {} {}", incoming.method, incoming.path),
            ));
        };
        let route = &bound.meta;
        let body = incoming.body?;
        let caller = match route.auth {
            AuthRule::Public => None,
            AuthRule::Read | AuthRule::Token | AuthRule::Operator => {
                match bearer(&incoming.headers)? {
                    Some(token) => Some(self.authority.check(token)?),
                    None => None,
                }
            }
        };
        let needs_token = match route.auth {
            AuthRule::Public => false,
            AuthRule::Read => self.authority.mode == AuthMode::Required,
            AuthRule::Token | AuthRule::Operator => true,
        };
        if needs_token && caller.is_none() {
            return Err(AuthError::Missing.into());
        }
        if route.auth == AuthRule::Operator {
            let operator = caller
                .as_ref()
                .is_some_and(|c| self.operators.contains(&c.user_id.0));
            if !operator {
                return Err(ApiFailure::forbidden("only an operator may do this"));
            }
        }
        let idempotency = match (&caller, incoming.headers.get("idempotency-key")) {
            (Some(caller), Some(key)) if route.method != Method::GET => {
                let key = key
                    .to_str()
                    .map_err(|_| ApiFailure::bad_request("Idempotency-Key must be visible ASCII"))?
                    .to_owned();
                idempotency::validate_key(&key)?;
                Some(idempotency::Claim::new(
                    &caller.user_id.0,
                    format!("{} {}", route.method, route.path),
                    key,
                    (incoming.method.as_str(), &incoming.path, &body),
                    !route.secret_body,
                    self.idempotency_ttl_ms,
                ))
            }
            _ => None,
        };
        // A finished key answers at once; the write's own transaction checks again (a duplicate
        // running concurrently is caught there).
        if let Some(claim) = idempotency.clone() {
            let now = TimestampMs::now();
            let previous = self
                .directory
                .idempotency_record(
                    &crate::op!("dispatch_inner"),
                    &claim.scope,
                    claim.since(now),
                )
                .await?;
            if let (Some(previous), Some(claim)) = (previous, &idempotency) {
                let replayed = claim.replay(&previous)?;
                return Ok(json_response(replayed.status, replayed.text));
            }
        }
        let req = Req {
            params,
            query: incoming.query,
            headers: incoming.headers,
            body,
            caller,
            idempotency: idempotency.clone(),
        };
        let reply = (bound.call)(req).await?;
        // A route that changes nothing in the directory (no idempotent write) still gets its answer
        // recorded, after the fact.
        if let (Some(claim), Reply::Json(status, value)) = (idempotency, &reply)
            && status.is_success()
            && !claim.handled()
        {
            self.directory
                .store_idempotency(
                    &crate::op!("dispatch_inner"),
                    &claim,
                    status.as_u16(),
                    &value.to_string(),
                )
                .await?;
        }
        Ok(reply.into_response())
    }
}
/// `429 RATE_LIMITED` with `Retry-After` (whole seconds, at least 1).
fn rate_limited(wait: std::time::Duration) -> warp::reply::Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = ApiFailure::new(
        ApiErrorCode::RateLimited,
        format!(
            "too many requests from this address; retry in {} s",
            seconds.max(1)
        ),
    )
    .into_response();
    response.headers_mut().insert(
        warp::http::header::RETRY_AFTER,
        warp::http::HeaderValue::from(seconds.max(1)),
    );
    response
}

pub(crate) fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiFailure> {
    let Some(value) = headers.get(warp::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiFailure::from(AuthError::Invalid("malformed Authorization header")))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(Some(token.trim())),
        _ => Err(AuthError::Invalid("Authorization must be `Bearer <token>`").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_table_has_no_duplicates_and_documents_bodies() {
        let routes = all();
        let mut seen = std::collections::HashSet::new();
        for route in &routes {
            assert!(
                seen.insert((route.method.clone(), route.path)),
                "duplicate {route:?}"
            );
            assert!(route.path.starts_with("/api/"), "{route:?}");
            if route.method == Method::GET {
                assert!(route.request.is_none(), "GET with a body: {route:?}");
            }
        }
    }

    /// The routes, the read-only views and the services they take are wired by `app` and never
    /// reach back into it (comment lines aside).
    #[test]
    fn no_route_file_or_view_imports_the_application() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files: Vec<std::path::PathBuf> = ["routes", "admin", "observe"]
            .iter()
            .flat_map(|dir| std::fs::read_dir(src.join(dir)).expect("source dir"))
            .map(|entry| entry.expect("dir entry").path())
            .collect();
        for file in ["withdrawal.rs", "lifecycle.rs", "telemetry/gauges.rs"] {
            files.push(src.join(file));
        }
        assert!(files.len() > 20, "{files:?}");
        // Spelled in two parts so this file does not match itself.
        let app = concat!("crate::", "app");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("source file");
            let imports = text
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .any(|line| line.contains(app));
            assert!(!imports, "{} imports {app}", file.display());
        }
    }

    #[test]
    fn templates_match_and_decode() {
        let route = Route::new(
            Method::GET,
            "/api/servers/{serverId}/bans",
            AuthRule::Read,
            "",
            handler!(health::health),
        )
        .meta;
        assert_eq!(
            route.match_path("/api/servers/a%20b/bans").map(|r| r.ok()),
            Some(Some(vec!["a b".to_owned()]))
        );
        assert!(route.match_path("/api/servers//bans").is_none());
        assert!(route.match_path("/api/servers/x").is_none());
    }
}
