//! The application: shared state and the warp filter tree, and starting/stopping the server.
//!
//! Owns wiring only: it opens the directory (SQLite), loads the signing key, builds the route table and
//! the OpenAPI document once, and mounts them. Never holds route logic (see [`crate::routes`]).
//!
//! Filter tree, in order:
//! 1. `/api/...`: every REST route, through the one route table ([`routes::Router`]);
//! 2. `GET /metrics` (Prometheus text) and the WebSocket upgrade at `/` and `/ws`
//!    ([`crate::transport::websocket`]);
//! 3. `GET /demo` and its files ([`crate::demo`]), `GET /admin`, its files and `/admin/stats`
//!    ([`crate::admin`]);
//! 4. anything else: `404 NOT_FOUND` as an `ApiError`.
//!
//! The tree is served by warp's own loop over plain HTTP, or by [`crate::tls::serve`] when
//! `tls.certFile`/`tls.keyFile` are set.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use signalbox_protocol::TimestampMs;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use warp::Filter;

use crate::RunError;
use crate::auth::Authority;
use crate::config::Config;
use crate::config::DirectoryBackend;
use crate::directory::postgres::PgDirectory;
use crate::directory::{Directory, SqliteDirectory};
use crate::http::{ApiFailure, read_capped};
use crate::hub::Hub;
use crate::lifecycle::Lifecycle;
use crate::observe::Observed;
use crate::outbound::Outbound;
use crate::plugins::PluginRegistry;
use crate::routes::link_metadata::PreviewCache;
use crate::routes::{self, Apis, Incoming, Router};
use crate::tls::TlsReloader;
use crate::transport::connection_gate::ConnectionGate;
use crate::transport::metrics::TransportMetrics;
use crate::transport::sse::SseTransport;
use crate::transport::websocket;

/// Longest a graceful shutdown waits for realtime connections to close.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Connections in the database pool.
pub const DB_POOL_SIZE: usize = 4;

/// The record of the wired services, held by [`RunningServer::state`].
///
/// The REST routes get only their family's `*Api` (through [`AppState::router`]), the
/// gauges, `/metrics` and `/admin` only [`AppState::observed`]; the realtime handlers and
/// transports still take the whole record (their own split is a later step).
#[derive(Debug)]
pub struct AppState {
    /// The merged configuration.
    pub config: Config,
    /// Every directory command and query.
    pub directory: Arc<dyn Directory>,
    /// Token issuing and checking.
    pub auth: Authority,
    /// The REST router (the route table bound to each family's services).
    pub router: Arc<Router>,
    /// When the server started and whether it is draining.
    pub lifecycle: Arc<Lifecycle>,
    /// The realtime router every transport registers its connections with.
    pub hub: Hub,
    /// Plugin manifests, compiled.
    pub plugins: Arc<PluginRegistry>,
    /// Caps on open realtime connections.
    pub connection_gate: Arc<ConnectionGate>,
    /// Wrong server passwords per client address.
    pub password_attempts: Arc<crate::auth::attempts::PasswordAttempts>,
    /// Per-address token buckets of the REST routes.
    pub address_limits: Arc<crate::http::address_limits::AddressLimits>,
    /// Argon2 work, off the reactor and the database pool, bounded in flight.
    pub passwords: crate::auth::password::PasswordWork,
    /// The transports' counters.
    pub transport_metrics: Arc<TransportMetrics>,
    /// The outbound guard every fetch for a client goes through.
    pub outbound: Outbound,
    /// Cached link previews.
    pub previews: Arc<PreviewCache>,
    /// The SSE transport (sessions, streams, its POST routes).
    pub sse: SseTransport,
    /// What the gauges, `/metrics` and `/admin` read.
    pub observed: Arc<Observed>,
    /// The cluster backplane, in `cluster.mode: "redis"` (`None` standalone).
    pub cluster: Option<Arc<crate::cluster::glue::ClusterNode>>,
}

impl AppState {
    /// Opens the database (migrating it) and loads or creates the signing key.
    pub async fn new(config: Config) -> Result<Arc<Self>, RunError> {
        let path = config.db_path.clone();
        let database = config.variables.database.clone();
        let directory: Arc<dyn Directory> = match config.variables.directory.backend {
            DirectoryBackend::Sqlite => Arc::new(
                tokio::task::spawn_blocking(move || {
                    SqliteDirectory::open(&path, DB_POOL_SIZE, &database)
                })
                .await
                .map_err(|e| RunError::Start(e.to_string()))??,
            ),
            DirectoryBackend::Postgres => {
                Arc::new(PgDirectory::from_settings(&config.variables.directory).await?)
            }
        };
        let fresh = Authority::fresh_secret();
        let secret = directory
            .signing_key_or_insert(&crate::op!("new"), fresh.to_vec(), TimestampMs::now())
            .await
            .map_err(|e| RunError::Start(e.to_string()))?;
        let auth = Authority::new(&secret, config.variables.auth);
        let outbound = Outbound::from_variables(&config.variables).map_err(RunError::Start)?;
        let realtime = &config.variables.realtime;
        let security = &config.variables.security;
        let hub = Hub::new(crate::hub::HubConfig::from_settings(realtime, security));
        let cluster = match crate::cluster::ClusterSettings::from_config(&config.variables.cluster)
        {
            None => None,
            Some(settings) => Some(Arc::new(
                crate::cluster::glue::ClusterNode::start(settings, &hub)
                    .await
                    .map_err(|e| RunError::Start(e.to_string()))?,
            )),
        };
        let connection_gate = Arc::new(ConnectionGate::new(
            realtime.max_connections,
            realtime.max_connections_per_ip,
        ));
        let sse = SseTransport::new(hub.clone(), config.variables.clone());
        if let Some(cluster) = &cluster {
            sse.attach_cluster(cluster.sse_remote());
            cluster.attach_sse(sse.cluster_inbound());
        }
        let address_limits = Arc::new(crate::http::address_limits::AddressLimits::new(
            config.variables.security.rest_rate_limits,
            config.variables.security.rest_rate_limit_tracked_addresses,
        ));
        let passwords = crate::auth::password::PasswordWork::new(
            config.variables.security.password_hash_concurrency,
        );
        let lifecycle = Arc::new(Lifecycle::new());
        let plugins = Arc::new(PluginRegistry::new());
        let previews = Arc::new(PreviewCache::default());
        let withdrawal =
            crate::withdrawal::Withdrawal::new(hub.clone(), sse.clone(), Arc::clone(&directory));
        if let Some(cluster) = &cluster {
            withdrawal.attach_cluster(cluster.withdraw_remote());
            cluster.attach_withdraw(Arc::new(withdrawal.clone()));
        }
        let apis = route_apis(RouteServices {
            config: &config,
            directory: &directory,
            auth: &auth,
            lifecycle: &lifecycle,
            hub: &hub,
            passwords: &passwords,
            withdrawal,
            plugins: &plugins,
            outbound: &outbound,
            previews: &previews,
        });
        let router = Arc::new(Router::new(
            routes::bind_all(&apis),
            auth.clone(),
            Arc::clone(&directory),
            Arc::clone(&address_limits),
            config.variables.operator_user_ids.clone(),
            config.variables.database.idempotency_ttl_ms(),
        ));
        let password_attempts = Arc::new(crate::auth::attempts::PasswordAttempts::default());
        let transport_metrics = Arc::new(TransportMetrics::default());
        let observed = Arc::new(Observed {
            variables: Arc::new(config.variables.clone()),
            directory: Arc::clone(&directory),
            hub: hub.clone(),
            sse: sse.clone(),
            connection_gate: Arc::clone(&connection_gate),
            password_attempts: Arc::clone(&password_attempts),
            passwords: passwords.clone(),
            previews: Arc::clone(&previews),
            outbound: outbound.clone(),
            address_limits: Arc::clone(&address_limits),
            transport_metrics: Arc::clone(&transport_metrics),
            lifecycle: Arc::clone(&lifecycle),
            cluster: cluster.clone(),
        });
        let state = Arc::new(Self {
            config,
            directory,
            auth,
            router,
            lifecycle,
            hub,
            plugins,
            connection_gate,
            password_attempts,
            passwords,
            address_limits,
            transport_metrics,
            outbound,
            previews,
            sse,
            observed,
            cluster,
        });
        tokio::spawn(purge_loop(Arc::downgrade(&state)));
        Ok(state)
    }

    /// Whether the server is shutting down.
    pub fn is_draining(&self) -> bool {
        self.lifecycle.is_draining()
    }

    /// Marks the server as shutting down (`/api/ready` answers 503 from now on).
    pub fn start_draining(&self) {
        self.lifecycle.start_draining();
    }

    /// Open realtime connections (every transport's).
    pub fn connections(&self) -> u32 {
        u32::try_from(self.hub.stats().connections).unwrap_or(u32::MAX)
    }
}

/// What the route families are built from (borrowed while [`AppState::new`] wires them).
struct RouteServices<'a> {
    config: &'a Config,
    directory: &'a Arc<dyn Directory>,
    auth: &'a Authority,
    lifecycle: &'a Arc<Lifecycle>,
    hub: &'a Hub,
    passwords: &'a crate::auth::password::PasswordWork,
    withdrawal: crate::withdrawal::Withdrawal,
    plugins: &'a Arc<PluginRegistry>,
    outbound: &'a Outbound,
    previews: &'a Arc<PreviewCache>,
}

/// Each route family's `*Api`: only the services and settings that family uses.
fn route_apis(s: RouteServices<'_>) -> Apis {
    let variables = &s.config.variables;
    let directory = || Arc::clone(s.directory);
    Apis {
        health: Arc::new(routes::health::HealthApi {
            lifecycle: Arc::clone(s.lifecycle),
            directory: directory(),
            hub: s.hub.clone(),
        }),
        auth: Arc::new(routes::auth::AuthApi {
            directory: directory(),
            authority: s.auth.clone(),
            challenge_ttl_seconds: variables.challenge_ttl_seconds,
            token_ttl_seconds: variables.token_ttl_seconds,
            guest_token_ttl_seconds: variables.guest_token_ttl_seconds,
        }),
        users: Arc::new(routes::users::UsersApi {
            directory: directory(),
        }),
        servers: Arc::new(routes::servers::ServersApi {
            directory: directory(),
            hub: s.hub.clone(),
            passwords: s.passwords.clone(),
            withdrawal: s.withdrawal.clone(),
            max_search_query_chars: variables.security.max_search_query_chars,
            max_servers_per_owner: variables.security.max_servers_per_owner,
        }),
        members: Arc::new(routes::members::MembersApi {
            directory: directory(),
            withdrawal: s.withdrawal,
        }),
        invites: Arc::new(routes::invites::InvitesApi {
            directory: directory(),
        }),
        join_requests: Arc::new(routes::join_requests::JoinRequestsApi {
            directory: directory(),
        }),
        games: Arc::new(routes::games::GamesApi {
            directory: directory(),
        }),
        plugins: Arc::new(routes::plugins::PluginsApi {
            directory: directory(),
            plugins: Arc::clone(s.plugins),
        }),
        link_metadata: Arc::new(routes::link_metadata::LinkMetadataApi {
            outbound: s.outbound.clone(),
            previews: Arc::clone(s.previews),
            enabled: variables.link_previews,
        }),
        proxy: Arc::new(routes::proxy::ProxyApi {
            outbound: s.outbound.clone(),
        }),
        klipy: Arc::new(routes::klipy::KlipyApi {
            outbound: s.outbound.clone(),
            api_key: variables.klipy_api_key.clone(),
            base_url: variables.klipy_base_url.clone(),
        }),
        sse: Arc::new(routes::sse::SseApi),
        openapi: Arc::new(routes::openapi::OpenApiApi {
            document: Arc::new(routes::openapi::document(&routes::all())),
        }),
    }
}

/// Every `security.purgeIntervalSeconds`: deletes expired auth challenges and unused ephemeral
/// identities ([`crate::directory::commands::purge_unused`]). Ends with the state.
async fn purge_loop(state: std::sync::Weak<AppState>) {
    let period = match state.upgrade() {
        Some(state) => std::time::Duration::from_secs(u64::from(
            state.config.variables.security.purge_interval_seconds,
        )),
        None => return,
    };
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(state) = state.upgrade() else {
            return;
        };
        let now = TimestampMs::now();
        let ttl_ms = i64::from(state.config.variables.guest_token_ttl_seconds) * 1000;
        let idle_before = TimestampMs(now.0.saturating_sub(ttl_ms));
        let purged = state
            .directory
            .purge_unused(&crate::op!("purge_loop"), now, idle_before)
            .await;
        match purged {
            Ok((0, 0)) => {}
            Ok((challenges, users)) => {
                tracing::debug!(
                    challenges,
                    users,
                    "purged expired challenges and unused identities"
                );
            }
            Err(e) => tracing::error!(error = %e, "purge failed"),
        }
    }
}

/// The whole filter tree.
pub fn filters(
    state: Arc<AppState>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let cap = state.config.variables.max_body_bytes as usize;
    let router = Arc::clone(&state.router);
    let sse = crate::transport::sse::http::filters(Arc::clone(&state));
    let query = warp::query::<Vec<(String, String)>>()
        .or(warp::any().map(Vec::new))
        .unify();
    let api = warp::path("api")
        .and(warp::method())
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .and(warp::body::stream())
        .then(
            move |method,
                  path: warp::path::FullPath,
                  query,
                  headers,
                  remote: Option<SocketAddr>,
                  body| {
                let router = Arc::clone(&router);
                async move {
                    let body = read_capped(body, cap).await;
                    let incoming = Incoming {
                        method,
                        path: path.as_str().to_owned(),
                        query,
                        headers,
                        remote_ip: remote.map(|a| a.ip()),
                        body,
                    };
                    router.dispatch(incoming).await
                }
            },
        );
    let metrics = {
        let observed = Arc::clone(&state.observed);
        warp::get()
            .and(warp::path("metrics"))
            .and(warp::path::end())
            .then(move || {
                let observed = Arc::clone(&observed);
                async move { crate::observe::metrics::render(&observed).await }
            })
    };
    let realtime = websocket::routes(Arc::clone(&state));
    let demo = crate::demo::routes();
    let admin = crate::admin::routes(Arc::clone(&state.observed), state.auth.clone());
    let fallback = warp::any().map(|| ApiFailure::not_found("route").into_response());
    sse.or(api)
        .unify()
        .or(metrics)
        .unify()
        .or(realtime)
        .unify()
        .or(demo)
        .unify()
        .or(admin)
        .unify()
        .or(fallback)
        .unify()
}

/// A server that is accepting connections.
#[derive(Debug)]
pub struct RunningServer {
    /// The address it listens on (with the real port when 0 was asked).
    pub addr: SocketAddr,
    /// Its state.
    pub state: Arc<AppState>,
    /// The certificate reloader when serving TLS (`None` for plain HTTP).
    pub tls: Option<Arc<TlsReloader>>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    purge: JoinHandle<()>,
}

impl RunningServer {
    /// Serves until `signal` resolves, then stops accepting and lets in-flight requests finish.
    pub async fn wait(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }

    /// Stops now, gracefully: refuses new work, closes every realtime connection with 1001
    /// (after what is queued for it), waits for them to go (at most [`SHUTDOWN_GRACE`]), then
    /// lets in-flight HTTP requests finish.
    pub async fn shutdown(self) {
        self.state.start_draining();
        self.state
            .hub
            .close_all(signalbox_protocol::CloseCode::GoingAway);
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        // SSE streams never end by themselves: end them so the graceful stop can finish.
        self.state.sse.shutdown();
        while self.state.connection_gate.open() > 0 && Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if let Some(cluster) = &self.state.cluster {
            cluster.stop().await;
        }
        let _ = self.stop.send(());
        self.purge.abort();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "server task failed");
        }
        tracing::info!("signalbox stopped");
    }
}

/// Opens the database, binds the listener and starts serving in the background: plain HTTP
/// by default, TLS when `tls.certFile` and `tls.keyFile` are set (a pair that cannot be used
/// stops the start with an error naming the key).
pub async fn start(config: Config) -> Result<RunningServer, RunError> {
    let addr = config.addr;
    let reloader = TlsReloader::from_settings(&config.variables.tls)?;
    let handshake_timeout =
        std::time::Duration::from_millis(u64::from(config.variables.tls.handshake_timeout_ms));
    let state = AppState::new(config).await?;
    let listener = crate::listener::bind(addr)?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let stopped = async {
        let _ = stopped.await;
    };
    let task = match reloader.clone() {
        None => {
            let server = warp::serve(filters(Arc::clone(&state)))
                .incoming(listener)
                .graceful(stopped);
            tokio::spawn(server.run())
        }
        Some(reloader) => {
            let config = crate::tls::certs::server_config(reloader.provider(), reloader.current())?;
            let filter = filters(Arc::clone(&state));
            #[cfg(unix)]
            let watching = Arc::clone(&reloader).watch(TlsReloader::hangup_signal());
            #[cfg(not(unix))]
            let watching = Arc::clone(&reloader).watch();
            tokio::spawn(async move {
                let watch = tokio::spawn(watching);
                crate::tls::serve::serve(listener, filter, config, handshake_timeout, stopped)
                    .await;
                watch.abort();
            })
        }
    };
    let purge = tokio::spawn(crate::http::idempotency::purge_expired(
        Arc::clone(&state.directory),
        state.config.variables.database.idempotency_ttl_ms(),
    ));
    Ok(RunningServer {
        tls: reloader,
        addr,
        state,
        stop,
        task,
        purge,
    })
}
