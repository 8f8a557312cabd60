//! The plugin registry (REST) and `plugin_requirements` / `plugin_event` on the socket.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{User, lobby};

fn dice_manifest() -> Value {
    json!({
        "version": "1.2.0",
        "required": true,
        "maxPayloadBytes": 256,
        "events": {
            "roll": {
                "type": "object",
                "properties": {"sides": {"type": "integer", "minimum": 2}, "result": {"type": "integer"}},
                "required": ["sides", "result"],
                "additionalProperties": false
            },
            "reset": {"type": "object"}
        }
    })
}

#[tokio::test]
async fn the_registry_is_staff_only_and_refuses_bad_manifests() {
    let (server, ada) = lobby("{}").await;
    let http = server.client();
    let bob = User::new(&server, "Bob").await;
    let path = "/api/servers/lobby/plugins/dice";
    http.call("PUT", path, Some(&bob.token), Some(&dice_manifest()))
        .await
        .expect_error(403, "FORBIDDEN");
    http.call("PUT", path, None, Some(&dice_manifest()))
        .await
        .expect_error(401, "UNAUTHORIZED");
    let stored = http
        .call("PUT", path, Some(&ada.token), Some(&dice_manifest()))
        .await
        .expect_ok(200);
    assert_eq!(stored["pluginId"], "dice");
    assert_eq!(stored["maxPayloadBytes"], 256);
    assert!(stored["updatedAt"].as_i64().is_some());

    let bad_schema = json!({"version": "1", "events": {"roll": {"type": "dice"}}});
    let refused = http
        .call(
            "PUT",
            "/api/servers/lobby/plugins/bad",
            Some(&ada.token),
            Some(&bad_schema),
        )
        .await;
    refused.expect_error(400, "BAD_REQUEST");
    assert!(refused.text.contains("roll"), "{}", refused.text);
    let remote_ref =
        json!({"version": "1", "events": {"e": {"$ref": "http://127.0.0.1:1/schema.json"}}});
    http.call(
        "PUT",
        "/api/servers/lobby/plugins/bad",
        Some(&ada.token),
        Some(&remote_ref),
    )
    .await
    .expect_error(400, "BAD_REQUEST");
    let no_events = json!({"version": "1", "events": {}});
    http.call(
        "PUT",
        "/api/servers/lobby/plugins/bad",
        Some(&ada.token),
        Some(&no_events),
    )
    .await
    .expect_error(400, "BAD_REQUEST");
    let unknown_field = json!({"version": "1", "events": {"e": {}}, "surprise": 1});
    http.call(
        "PUT",
        "/api/servers/lobby/plugins/bad",
        Some(&ada.token),
        Some(&unknown_field),
    )
    .await
    .expect_error(400, "BAD_REQUEST");
    http.call(
        "PUT",
        "/api/servers/nowhere/plugins/dice",
        Some(&ada.token),
        Some(&dice_manifest()),
    )
    .await
    .expect_error(404, "NOT_FOUND");

    let listed = http
        .get("/api/servers/lobby/plugins", None)
        .await
        .expect_ok(200);
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["items"][0], stored);
    http.call("DELETE", path, Some(&ada.token), None)
        .await
        .expect_ok(200);
    http.call("DELETE", path, Some(&ada.token), None)
        .await
        .expect_error(404, "NOT_FOUND");
    let listed = http
        .get("/api/servers/lobby/plugins", None)
        .await
        .expect_ok(200);
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn events_round_trip_and_every_rejection_names_its_reason() {
    let (server, mut ada) = lobby("{}").await;
    let http = server.client();
    http.call(
        "PUT",
        "/api/servers/lobby/plugins/dice",
        Some(&ada.token),
        Some(&dice_manifest()),
    )
    .await
    .expect_ok(200);
    let mut bob = User::new(&server, "Bob").await;
    bob.ws
        .send(json!({"type": "join_server", "serverId": "lobby"}))
        .await;
    bob.ws.expect("server_users").await;
    assert_eq!(
        bob.ws.expect("plugin_requirements").await,
        json!({"type": "plugin_requirements", "serverId": "lobby", "plugins": [
            {"pluginId": "dice", "version": "1.2.0", "required": true, "events": ["reset", "roll"]}
        ]})
    );
    ada.ws.expect("user_joined").await;

    let event = |name: &str, payload: Value| {
        json!({"type": "plugin_event", "serverId": "lobby", "pluginId": "dice", "eventName": name,
               "payload": payload, "sourcePluginUserId": "dice-bot", "sourceUserId": "forged", "emittedAt": 1})
    };
    ada.ws
        .send(event("roll", json!({"sides": 6, "result": 4})))
        .await;
    let got = bob.ws.expect("plugin_event").await;
    assert_eq!(got["payload"], json!({"sides": 6, "result": 4}));
    assert_eq!(got["eventName"], "roll");
    assert_eq!(got["sourcePluginUserId"], "dice-bot");
    assert_eq!(got["sourceUserId"], ada.id.as_str());
    assert!(got["emittedAt"].as_i64().is_some_and(|t| t > 1), "{got}");

    let rejections = [
        (event("roll", json!({"sides": 1, "result": 1})), "/sides"),
        (event("roll", json!({"sides": 6})), "required"),
        (event("flip", json!({})), "declares no event"),
        (
            event(
                "roll",
                json!({"sides": 6, "result": 1, "pad": "x".repeat(300)}),
            ),
            "at most 256",
        ),
        (
            json!({"type": "plugin_event", "serverId": "lobby", "pluginId": "chess", "eventName": "move", "payload": {}}),
            "not registered",
        ),
    ];
    for (envelope, reason) in rejections {
        ada.ws.send(envelope).await;
        let error = ada.ws.expect_error("INVALID_PLUGIN_EVENT").await;
        assert_eq!(error["requestType"], "plugin_event");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "expected `{reason}` in {message}");
    }
    let schema_path = {
        ada.ws
            .send(event("roll", json!({"sides": 1, "result": 1})))
            .await;
        ada.ws.expect_error("INVALID_PLUGIN_EVENT").await
    };
    assert!(
        schema_path["message"]
            .as_str()
            .unwrap_or_default()
            .contains("minimum"),
        "{schema_path}"
    );
    // None of the refused events reached Bob.
    bob.ws.expect_silence(Duration::from_millis(200)).await;

    // A replaced manifest applies at once (the compiled cache follows the stored manifest).
    let mut relaxed = dice_manifest();
    relaxed["events"]["roll"] = json!({"type": "object"});
    http.call(
        "PUT",
        "/api/servers/lobby/plugins/dice",
        Some(&ada.token),
        Some(&relaxed),
    )
    .await
    .expect_ok(200);
    ada.ws.send(event("roll", json!({"anything": true}))).await;
    assert_eq!(
        bob.ws.expect("plugin_event").await["payload"],
        json!({"anything": true})
    );

    // Non-members are refused before the registry is consulted.
    let mut carol = User::new(&server, "Carol").await;
    carol
        .ws
        .send(event("roll", json!({"sides": 6, "result": 2})))
        .await;
    carol.ws.expect_error("FORBIDDEN").await;
}
