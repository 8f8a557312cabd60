//! Plugins: checking manifests, caching their compiled event schemas, and deciding whether a
//! `plugin_event` may be broadcast.
//!
//! Owns the manifest rules (sizes, names, every event schema a valid JSON Schema with no external
//! reference) and a cache of compiled validators, so an event is validated without recompiling
//! its schema. The cache is keyed by `(server, plugin)` and checked against the manifest's
//! `updatedAt`, and every write through [`PluginRegistry`] drops the stale entry.
//!
//! Never stores anything itself (see [`crate::directory::plugin_manifests`]), never decides who
//! may register a plugin (see [`crate::directory::access::staff`]) and never fetches a schema:
//! jsonschema is built without its HTTP and file resolvers, so a `$ref` to a URL or a file fails
//! compilation instead of making the server reach out.

mod manifest;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use signalbox_protocol::http::PluginManifest;
use signalbox_protocol::ws::{PluginEvent, PluginRequirement};
use signalbox_protocol::{PluginId, ServerId};
use thiserror::Error;

use crate::directory::{Directory, DirectoryError};

pub use manifest::{CompiledManifest, ManifestError, compile};

/// Why a `plugin_event` was refused (`INVALID_PLUGIN_EVENT`, with this as the message).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EventRejection {
    /// No plugin of that id is registered for the server.
    #[error("plugin `{0}` is not registered for this server")]
    UnknownPlugin(String),
    /// The manifest does not declare the event.
    #[error("plugin `{plugin}` declares no event `{event}`")]
    UndeclaredEvent {
        /// The plugin.
        plugin: String,
        /// The event name sent.
        event: String,
    },
    /// The payload is larger than the manifest allows.
    #[error("payload is {size} bytes, plugin `{plugin}` allows at most {max}")]
    TooLarge {
        /// The plugin.
        plugin: String,
        /// The payload's size as JSON.
        size: usize,
        /// The manifest's `maxPayloadBytes`.
        max: u32,
    },
    /// The payload does not satisfy the event's schema.
    #[error(
        "payload does not match the schema of `{event}`: at `{instance_path}`: {message} (schema path `{schema_path}`)"
    )]
    SchemaMismatch {
        /// The event name.
        event: String,
        /// Where in the payload (JSON pointer).
        instance_path: String,
        /// Which schema keyword failed (JSON pointer).
        schema_path: String,
        /// What failed.
        message: String,
    },
}

/// Why a plugin operation failed.
#[derive(Debug, Error)]
pub enum PluginError {
    /// The directory failed.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// A stored manifest no longer compiles (edited by hand, or a jsonschema upgrade).
    #[error("stored manifest of `{plugin}` does not compile: {source}")]
    Stored {
        /// The plugin.
        plugin: String,
        /// Why.
        source: ManifestError,
    },
}

/// The compiled manifests of every server, loaded on first use.
#[derive(Debug, Default)]
pub struct PluginRegistry {
    cache: Mutex<HashMap<(ServerId, PluginId), Arc<CompiledManifest>>>,
}

impl PluginRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// What `plugin_requirements` lists for `server`.
    pub async fn requirements(
        &self,
        directory: &dyn Directory,
        server: &ServerId,
    ) -> Result<Vec<PluginRequirement>, PluginError> {
        let manifests = directory
            .plugin_manifests(&crate::op!("requirements"), server)
            .await?;
        Ok(manifests
            .into_iter()
            .map(|m| PluginRequirement {
                plugin_id: m.plugin_id,
                version: m.version,
                required: m.required,
                events: m.events.into_keys().collect(),
            })
            .collect())
    }

    /// Checks `event` against its plugin's manifest: registered, declared, small enough, valid.
    /// The outer error is infrastructure, the inner one is the refusal to send back.
    pub async fn check_event(
        &self,
        directory: &dyn Directory,
        event: &PluginEvent,
    ) -> Result<Result<(), EventRejection>, PluginError> {
        let Some(compiled) = self
            .compiled(directory, &event.server_id, &event.plugin_id)
            .await?
        else {
            return Ok(Err(EventRejection::UnknownPlugin(
                event.plugin_id.as_str().to_owned(),
            )));
        };
        Ok(compiled.check(&event.event_name, &event.payload))
    }

    /// Forgets the cached manifest of a plugin (after it was replaced or removed).
    pub fn invalidate(&self, server: &ServerId, plugin: &PluginId) {
        self.lock().remove(&(server.clone(), plugin.clone()));
    }

    async fn compiled(
        &self,
        directory: &dyn Directory,
        server: &ServerId,
        plugin: &PluginId,
    ) -> Result<Option<Arc<CompiledManifest>>, PluginError> {
        let key = (server.clone(), plugin.clone());
        let cached = self.lock().get(&key).cloned();
        let stored: Option<PluginManifest> = directory
            .plugin_manifest(&crate::op!("compiled"), server, plugin)
            .await?;
        let Some(stored) = stored else {
            self.lock().remove(&key);
            return Ok(None);
        };
        // The row is re-read on every event (a primary-key lookup) so a manifest replaced by
        // another process is never validated against a stale cache; compiling is what is cached.
        if let Some(cached) = cached
            && cached.manifest() == &stored
        {
            return Ok(Some(cached));
        }
        let plugin_name = stored.plugin_id.as_str().to_owned();
        let compiled =
            Arc::new(
                CompiledManifest::new(stored).map_err(|source| PluginError::Stored {
                    plugin: plugin_name,
                    source,
                })?,
            );
        self.lock().insert(key, Arc::clone(&compiled));
        Ok(Some(compiled))
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(ServerId, PluginId), Arc<CompiledManifest>>> {
        // The map is only ever inserted into or removed from: a poisoned lock is still consistent.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
