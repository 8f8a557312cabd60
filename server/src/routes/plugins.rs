//! `/api/servers/{serverId}/plugins`: the plugin registry of a server (http.md,
//! `plugin-support`).
//!
//! Owners and moderators register, replace and remove manifests; anyone who may view the
//! server lists them. A manifest is compiled ([`crate::plugins::compile`]) before it is stored,
//! so a schema that is not valid JSON Schema is refused with the reason and never reaches a
//! `plugin_event`.

use std::sync::Arc;

use signalbox_protocol::http::{PluginManifestList, PluginManifestRequest};
use signalbox_protocol::limits::PLUGIN_MAX_PER_SERVER;
use signalbox_protocol::{PluginId, ServerId, TimestampMs};
use warp::http::{Method, StatusCode};

use super::servers::{denied, require_staff};
use super::{AuthRule, Reply, Req, Route, body, handler};
use crate::directory::Directory;
use crate::http::ApiFailure;
use crate::plugins;
use crate::plugins::PluginRegistry;

/// The services of the plugin manifest routes.
#[derive(Debug)]
pub struct PluginsApi {
    /// Every directory command and query.
    pub directory: Arc<dyn Directory>,
    /// The compiled manifests, invalidated on a change.
    pub plugins: Arc<PluginRegistry>,
}

/// This family's routes.
pub fn routes() -> Vec<Route<PluginsApi>> {
    let one = "/api/servers/{serverId}/plugins/{pluginId}";
    vec![
        Route::new(
            Method::GET,
            "/api/servers/{serverId}/plugins",
            AuthRule::Read,
            "Lists the plugin manifests registered for a server.",
            handler!(list),
        )
        .answers(body!(PluginManifestList)),
        Route::new(
            Method::PUT,
            one,
            AuthRule::Token,
            "Registers a plugin or replaces its manifest (owner and moderators).",
            handler!(put),
        )
        .takes(body!(PluginManifestRequest))
        .answers(body!(PluginManifest)),
        Route::new(
            Method::DELETE,
            one,
            AuthRule::Token,
            "Removes a plugin (owner and moderators).",
            handler!(remove),
        )
        .answers(body!(OkResponse)),
    ]
}

/// `GET /api/servers/{serverId}/plugins`.
pub async fn list(api: Arc<PluginsApi>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let user = req.caller.as_ref().map(|c| c.user_id.clone());
    let items = api
        .directory
        .list_plugins(&crate::op!("list"), &server, user.as_ref())
        .await?
        .map_err(denied)?;
    Reply::ok(&PluginManifestList { items })
}

/// `PUT /api/servers/{serverId}/plugins/{pluginId}`.
pub async fn put(api: Arc<PluginsApi>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let plugin = PluginId::from(req.param(1));
    let request: PluginManifestRequest = req.json()?;
    require_staff(
        api.directory.as_ref(),
        &server,
        &req.caller()?.user_id,
        false,
    )
    .await?;
    let (manifest, _) = plugins::compile(&plugin, request, TimestampMs::now())
        .map_err(|e| ApiFailure::bad_request(e.to_string()))?;
    let cx = req.cx(crate::op!("put"), StatusCode::OK);
    let outcome = api
        .directory
        .put_plugin(&cx, &server, manifest, PLUGIN_MAX_PER_SERVER)
        .await?;
    let reply = Reply::from_outcome(StatusCode::OK, outcome)?;
    api.plugins.invalidate(&server, &plugin);
    Ok(reply)
}

/// `DELETE /api/servers/{serverId}/plugins/{pluginId}`.
pub async fn remove(api: Arc<PluginsApi>, req: Req) -> Result<Reply, ApiFailure> {
    let server = ServerId::from(req.param(0));
    let plugin = PluginId::from(req.param(1));
    require_staff(
        api.directory.as_ref(),
        &server,
        &req.caller()?.user_id,
        false,
    )
    .await?;
    let cx = req.cx(crate::op!("remove"), StatusCode::OK);
    let outcome = api.directory.delete_plugin(&cx, &server, &plugin).await?;
    let reply = Reply::from_outcome(StatusCode::OK, outcome)?;
    api.plugins.invalidate(&server, &plugin);
    Ok(reply)
}
