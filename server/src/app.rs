//! The application: shared state and the warp filter tree, and starting/stopping the server.
//!
//! Owns wiring only: it opens the database, loads the signing key, builds the route table and
//! the OpenAPI document once, and mounts them. Never holds route logic (see [`crate::routes`]).
//!
//! Filter tree, in order:
//! 1. `/api/...`: every REST route, through the one route table ([`routes::dispatch`]);
//! 2. (next) the realtime transports (WebSocket upgrade, SSE) with the [`crate::hub`], mounted
//!    in [`filters`] before the fallback;
//! 3. anything else: `404 NOT_FOUND` as an `ApiError`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use signalbox_protocol::TimestampMs;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use warp::Filter;

use crate::RunError;
use crate::auth::Authority;
use crate::config::Config;
use crate::directory::{Db, credentials};
use crate::http::{ApiFailure, read_capped};
use crate::hub::Hub;
use crate::routes::{self, Incoming, Route};
use crate::transport::sse::SseTransport;

/// Connections in the database pool.
pub const DB_POOL_SIZE: usize = 4;

/// What every request handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The merged configuration.
    pub config: Config,
    /// The database pool.
    pub db: Db,
    /// Token issuing and checking.
    pub auth: Authority,
    /// The route table the router serves.
    pub routes: Arc<Vec<Route>>,
    /// The OpenAPI document of [`AppState::routes`].
    pub openapi: Arc<serde_json::Value>,
    /// When the server started.
    pub started: Instant,
    /// The realtime hub every transport shares.
    pub hub: Hub,
    /// The SSE transport (sessions, streams, its POST routes).
    pub sse: SseTransport,
    draining: AtomicBool,
}

impl AppState {
    /// Opens the database (migrating it) and loads or creates the signing key.
    pub async fn new(config: Config) -> Result<Arc<Self>, RunError> {
        let path = config.db_path.clone();
        let db = tokio::task::spawn_blocking(move || Db::open(&path, DB_POOL_SIZE))
            .await
            .map_err(|e| RunError::Start(e.to_string()))??;
        let fresh = Authority::fresh_secret();
        let secret = db
            .call(move |c| credentials::signing_key_or_insert(c, &fresh, TimestampMs::now()))
            .await
            .map_err(|e| RunError::Start(e.to_string()))?;
        let auth = Authority::new(&secret, config.variables.auth);
        let routes = Arc::new(routes::all());
        let openapi = Arc::new(routes::openapi::document(&routes));
        let hub = Hub::default();
        let sse = SseTransport::new(hub.clone(), config.variables.clone());
        Ok(Arc::new(Self {
            config,
            db,
            auth,
            routes,
            openapi,
            started: Instant::now(),
            hub,
            sse,
            draining: AtomicBool::new(false),
        }))
    }

    /// Whether the server is shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Marks the server as shutting down (`/api/ready` answers 503 from now on).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Open realtime connections. No realtime transport is mounted yet, so there are none; the
    /// hub's count replaces this when the WebSocket route plugs in.
    pub fn connections(&self) -> u32 {
        0
    }
}

/// The whole filter tree.
pub fn filters(
    state: Arc<AppState>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let cap = state.config.variables.max_body_bytes as usize;
    let sse = crate::transport::sse::http::filters(state.sse.clone());
    let query = warp::query::<Vec<(String, String)>>()
        .or(warp::any().map(Vec::new))
        .unify();
    let api = warp::path("api")
        .and(warp::method())
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(
            move |method, path: warp::path::FullPath, query, headers, body| {
                let state = Arc::clone(&state);
                async move {
                    let body = read_capped(body, cap).await;
                    let incoming = Incoming {
                        method,
                        path: path.as_str().to_owned(),
                        query,
                        headers,
                        body,
                    };
                    routes::dispatch(state, incoming).await
                }
            },
        );
    // The realtime transports mount here: `api.or(websocket).unify().or(fallback)`.
    let fallback = warp::any().map(|| ApiFailure::not_found("route").into_response());
    sse.or(api).unify().or(fallback).unify()
}

/// A server that is accepting connections.
#[derive(Debug)]
pub struct RunningServer {
    /// The address it listens on (with the real port when 0 was asked).
    pub addr: SocketAddr,
    /// Its state.
    pub state: Arc<AppState>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// Serves until `signal` resolves, then stops accepting and lets in-flight requests finish.
    pub async fn wait(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }

    /// Stops now, gracefully.
    pub async fn shutdown(self) {
        self.state.start_draining();
        // SSE streams never end by themselves: end them so the graceful stop can finish.
        self.state.sse.shutdown();
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "server task failed");
        }
        tracing::info!("signalbox stopped");
    }
}

/// Opens the database, binds the listener and starts serving in the background.
pub async fn start(config: Config) -> Result<RunningServer, RunError> {
    let addr = config.addr;
    let state = AppState::new(config).await?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = warp::serve(filters(Arc::clone(&state)))
        .incoming(listener)
        .graceful(async {
            let _ = stopped.await;
        });
    let task = tokio::spawn(server.run());
    Ok(RunningServer {
        addr,
        state,
        stop,
        task,
    })
}
