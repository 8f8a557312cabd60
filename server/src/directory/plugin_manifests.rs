//! Storage of plugin manifests, one row per `(server, plugin)`: the manifest is kept as the JSON
//! of [`PluginManifest`], so what a client registered is what every later reader sees.
//!
//! Never validates a manifest (see [`crate::plugins`], which compiles its schemas before anything
//! is stored) and never decides who may register one (see [`super::access::staff`]).

use rusqlite::{Connection, OptionalExtension, params};
use signalbox_protocol::http::PluginManifest;
use signalbox_protocol::{PluginId, ServerId};

use super::DirectoryError;

/// Registers `manifest` for `server`, replacing the plugin's previous manifest.
pub fn upsert(
    conn: &Connection,
    server: &ServerId,
    manifest: &PluginManifest,
) -> Result<(), DirectoryError> {
    let json = serde_json::to_string(manifest)
        .map_err(|e| DirectoryError::Conflict(format!("manifest does not serialize: {e}")))?;
    conn.execute(
        "INSERT INTO plugin_manifests (server_id, plugin_id, manifest, updated_at) \
         VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (server_id, plugin_id) DO UPDATE SET \
           manifest = excluded.manifest, updated_at = excluded.updated_at",
        params![
            server.as_str(),
            manifest.plugin_id.as_str(),
            json,
            manifest.updated_at.0
        ],
    )?;
    Ok(())
}

/// Removes a plugin from `server`; [`DirectoryError::NotFound`] when it was not registered.
pub fn delete(
    conn: &Connection,
    server: &ServerId,
    plugin: &PluginId,
) -> Result<(), DirectoryError> {
    let removed = conn.execute(
        "DELETE FROM plugin_manifests WHERE server_id = ?1 AND plugin_id = ?2",
        params![server.as_str(), plugin.as_str()],
    )?;
    if removed == 0 {
        return Err(DirectoryError::NotFound("plugin"));
    }
    Ok(())
}

/// Every manifest registered for `server`, by `pluginId`.
pub fn list(conn: &Connection, server: &ServerId) -> Result<Vec<PluginManifest>, DirectoryError> {
    let mut statement = conn.prepare_cached(
        "SELECT manifest FROM plugin_manifests WHERE server_id = ?1 ORDER BY plugin_id",
    )?;
    let rows = statement.query_map([server.as_str()], |row| row.get::<_, String>(0))?;
    let mut manifests = Vec::new();
    for row in rows {
        manifests.push(decode(&row?)?);
    }
    Ok(manifests)
}

/// One plugin's manifest for `server`, if registered.
pub fn get(
    conn: &Connection,
    server: &ServerId,
    plugin: &PluginId,
) -> Result<Option<PluginManifest>, DirectoryError> {
    let json: Option<String> = conn
        .query_row(
            "SELECT manifest FROM plugin_manifests WHERE server_id = ?1 AND plugin_id = ?2",
            params![server.as_str(), plugin.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    json.as_deref().map(decode).transpose()
}

fn decode(json: &str) -> Result<PluginManifest, DirectoryError> {
    // Rows are only written by `upsert` from a `PluginManifest`; a row that does not decode was
    // edited by hand and is reported rather than skipped.
    serde_json::from_str(json)
        .map_err(|e| DirectoryError::Conflict(format!("stored plugin manifest is corrupt: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::commands;
    use crate::directory::db::open_in_memory;
    use signalbox_protocol::http::CreateServerRequest;
    use signalbox_protocol::{TimestampMs, UserId};
    use std::collections::BTreeMap;

    fn manifest(id: &str, version: &str) -> PluginManifest {
        PluginManifest {
            plugin_id: PluginId::from(id),
            version: version.into(),
            required: false,
            max_payload_bytes: 1024,
            events: BTreeMap::from([("e".to_owned(), serde_json::json!({"type": "object"}))]),
            updated_at: TimestampMs(5),
        }
    }

    fn setup() -> (Connection, ServerId) {
        let conn = open_in_memory().expect("db");
        let request = CreateServerRequest {
            id: None,
            name: "s".into(),
            description: None,
            tags: None,
            visibility: None,
        };
        let server = ServerId::from("s");
        commands::create_server(
            &conn,
            server.clone(),
            &request,
            &UserId::from("o"),
            TimestampMs(1),
        )
        .expect("create");
        (conn, server)
    }

    #[test]
    fn upsert_replaces_and_list_orders_by_id() {
        let (conn, server) = setup();
        upsert(&conn, &server, &manifest("b", "1")).expect("upsert");
        upsert(&conn, &server, &manifest("a", "1")).expect("upsert");
        upsert(&conn, &server, &manifest("b", "2")).expect("replace");
        let listed = list(&conn, &server).expect("list");
        let ids: Vec<_> = listed
            .iter()
            .map(|m| (m.plugin_id.as_str(), m.version.as_str()))
            .collect();
        assert_eq!(ids, [("a", "1"), ("b", "2")]);
        assert_eq!(
            get(&conn, &server, &PluginId::from("b")).expect("get"),
            Some(manifest("b", "2"))
        );
    }

    #[test]
    fn delete_reports_a_missing_plugin() {
        let (conn, server) = setup();
        upsert(&conn, &server, &manifest("a", "1")).expect("upsert");
        delete(&conn, &server, &PluginId::from("a")).expect("delete");
        assert!(matches!(
            delete(&conn, &server, &PluginId::from("a")),
            Err(DirectoryError::NotFound("plugin"))
        ));
        assert_eq!(
            get(&conn, &server, &PluginId::from("a")).expect("get"),
            None
        );
    }

    #[test]
    fn manifests_go_with_their_server() {
        let (conn, server) = setup();
        upsert(&conn, &server, &manifest("a", "1")).expect("upsert");
        commands::delete_server(&conn, &server).expect("delete server");
        assert!(list(&conn, &server).expect("list").is_empty());
    }
}
