//! The manifest rules and the compiled form of a manifest.

use std::collections::HashMap;

use jsonschema::Validator;
use signalbox_protocol::http::{PluginManifest, PluginManifestRequest};
use signalbox_protocol::json::JsonValue;
use signalbox_protocol::limits::{
    MAX_FRAME_BYTES, PLUGIN_MAX_EVENTS, PLUGIN_MAX_NAME_BYTES, PLUGIN_MAX_PAYLOAD_BYTES,
};
use signalbox_protocol::{PluginId, TimestampMs};
use thiserror::Error;

use super::EventRejection;

/// Why a manifest was refused at registration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ManifestError {
    /// A name (plugin id, version, event name) is empty, too long or has odd characters.
    #[error("{what} `{value}` must be 1 to {max} characters of letters, digits, `.`, `_`, `-` or `:`", max = PLUGIN_MAX_NAME_BYTES)]
    BadName {
        /// Which name.
        what: &'static str,
        /// The name (truncated).
        value: String,
    },
    /// The manifest declares no event or too many.
    #[error("a manifest declares 1 to {max} events, this one declares {count}", max = PLUGIN_MAX_EVENTS)]
    EventCount {
        /// How many it declares.
        count: usize,
    },
    /// `maxPayloadBytes` is 0 or larger than a frame can carry.
    #[error("maxPayloadBytes must be between 1 and {max}, got {value}", max = MAX_FRAME_BYTES)]
    PayloadLimit {
        /// The value given.
        value: u32,
    },
    /// An event's schema is not a valid JSON Schema (or refers to an external document).
    #[error("schema of event `{event}` is not a valid JSON Schema: {message}")]
    InvalidSchema {
        /// The event.
        event: String,
        /// What the validator said.
        message: String,
    },
}

/// Checks `request` and turns it into the manifest to store for `plugin_id`.
pub fn compile(
    plugin_id: &PluginId,
    request: PluginManifestRequest,
    now: TimestampMs,
) -> Result<(PluginManifest, CompiledManifest), ManifestError> {
    check_name("pluginId", plugin_id.as_str())?;
    check_name("version", &request.version)?;
    let max_payload_bytes = request
        .max_payload_bytes
        .unwrap_or(PLUGIN_MAX_PAYLOAD_BYTES as u32);
    if max_payload_bytes == 0 || max_payload_bytes as usize > MAX_FRAME_BYTES {
        return Err(ManifestError::PayloadLimit {
            value: max_payload_bytes,
        });
    }
    let manifest = PluginManifest {
        plugin_id: plugin_id.clone(),
        version: request.version,
        required: request.required,
        max_payload_bytes,
        events: request.events,
        updated_at: now,
    };
    let compiled = CompiledManifest::new(manifest.clone())?;
    Ok((manifest, compiled))
}

/// A manifest with one compiled validator per event.
#[derive(Debug)]
pub struct CompiledManifest {
    manifest: PluginManifest,
    validators: HashMap<String, Validator>,
}

impl CompiledManifest {
    /// Compiles every event schema of `manifest`.
    pub fn new(manifest: PluginManifest) -> Result<Self, ManifestError> {
        let count = manifest.events.len();
        if count == 0 || count > PLUGIN_MAX_EVENTS {
            return Err(ManifestError::EventCount { count });
        }
        let mut validators = HashMap::with_capacity(count);
        for (event, schema) in &manifest.events {
            check_name("event name", event)?;
            let validator =
                compile_schema(schema).map_err(|message| ManifestError::InvalidSchema {
                    event: event.clone(),
                    message,
                })?;
            validators.insert(event.clone(), validator);
        }
        Ok(Self {
            manifest,
            validators,
        })
    }

    /// The manifest it was compiled from.
    pub fn manifest(&self) -> &PluginManifest {
        &self.manifest
    }

    /// Whether `payload` may be sent as `event`.
    pub fn check(&self, event: &str, payload: &JsonValue) -> Result<(), EventRejection> {
        let plugin = || self.manifest.plugin_id.as_str().to_owned();
        let Some(validator) = self.validators.get(event) else {
            return Err(EventRejection::UndeclaredEvent {
                plugin: plugin(),
                event: truncate(event).to_owned(),
            });
        };
        // The payload arrived inside one frame, so measuring it allocates at most a frame.
        let size = serde_json::to_vec(payload)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > self.manifest.max_payload_bytes as usize {
            return Err(EventRejection::TooLarge {
                plugin: plugin(),
                size,
                max: self.manifest.max_payload_bytes,
            });
        }
        validator
            .validate(payload)
            .map_err(|e| EventRejection::SchemaMismatch {
                event: event.to_owned(),
                instance_path: e.instance_path().to_string(),
                schema_path: e.schema_path().to_string(),
                message: truncate_message(&e.to_string()),
            })
    }
}

fn compile_schema(schema: &JsonValue) -> Result<Validator, String> {
    if !schema.is_object() && !schema.is_boolean() {
        return Err("a schema is a JSON object or a boolean".into());
    }
    // `pattern` runs on every string of every event: the linear-time `regex` engine, not the
    // default backtracking one, so a hostile pattern cannot make validation slow.
    jsonschema::options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(schema)
        .map_err(|e| truncate_message(&e.to_string()))
}

fn check_name(what: &'static str, value: &str) -> Result<(), ManifestError> {
    let ok = !value.is_empty()
        && value.len() <= PLUGIN_MAX_NAME_BYTES
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
    if ok {
        Ok(())
    } else {
        Err(ManifestError::BadName {
            what,
            value: truncate(value).to_owned(),
        })
    }
}

/// Names echoed in errors are cut to the name limit so a hostile one cannot bloat the reply.
fn truncate(text: &str) -> &str {
    &text[..text.floor_char_boundary(PLUGIN_MAX_NAME_BYTES)]
}

/// Validator messages quote the offending value; keep them short.
fn truncate_message(message: &str) -> String {
    const MAX: usize = 300;
    if message.len() <= MAX {
        return message.to_owned();
    }
    format!("{}…", &message[..message.floor_char_boundary(MAX)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn request(events: JsonValue) -> PluginManifestRequest {
        PluginManifestRequest {
            version: "1.0.0".into(),
            required: true,
            max_payload_bytes: Some(64),
            events: serde_json::from_value(events).expect("map"),
        }
    }

    fn dice() -> CompiledManifest {
        let schema = json!({"roll": {
            "type": "object",
            "properties": {"sides": {"type": "integer", "minimum": 2}},
            "required": ["sides"]
        }});
        compile(&PluginId::from("dice"), request(schema), TimestampMs(1))
            .expect("valid")
            .1
    }

    #[test]
    fn a_valid_payload_passes() {
        assert_eq!(dice().check("roll", &json!({"sides": 6})), Ok(()));
    }

    #[test]
    fn each_rejection_names_what_failed() {
        let dice = dice();
        assert!(matches!(
            dice.check("flip", &json!({})),
            Err(EventRejection::UndeclaredEvent { .. })
        ));
        let big = json!({"sides": 6, "pad": "x".repeat(100)});
        assert!(matches!(
            dice.check("roll", &big),
            Err(EventRejection::TooLarge { max: 64, .. })
        ));
        let Err(EventRejection::SchemaMismatch {
            instance_path,
            schema_path,
            ..
        }) = dice.check("roll", &json!({"sides": 1}))
        else {
            panic!("expected a schema mismatch");
        };
        assert_eq!(instance_path, "/sides");
        assert!(schema_path.contains("minimum"), "{schema_path}");
    }

    #[test]
    fn invalid_manifests_are_refused_with_the_reason() {
        let id = PluginId::from("p");
        let bad_type = request(json!({"e": {"type": "no-such-type"}}));
        assert!(matches!(
            compile(&id, bad_type, TimestampMs(1)),
            Err(ManifestError::InvalidSchema { .. })
        ));
        let not_schema = request(json!({"e": 42}));
        assert!(matches!(
            compile(&id, not_schema, TimestampMs(1)),
            Err(ManifestError::InvalidSchema { .. })
        ));
        let external = request(json!({"e": {"$ref": "http://169.254.169.254/latest"}}));
        assert!(matches!(
            compile(&id, external, TimestampMs(1)),
            Err(ManifestError::InvalidSchema { .. })
        ));
        let file = request(json!({"e": {"$ref": "file:///etc/passwd"}}));
        assert!(matches!(
            compile(&id, file, TimestampMs(1)),
            Err(ManifestError::InvalidSchema { .. })
        ));
        assert!(matches!(
            compile(&id, request(json!({})), TimestampMs(1)),
            Err(ManifestError::EventCount { count: 0 })
        ));
        let bad_name = request(json!({"has space": {}}));
        assert!(matches!(
            compile(&id, bad_name, TimestampMs(1)),
            Err(ManifestError::BadName { .. })
        ));
        let mut huge = request(json!({"e": {}}));
        huge.max_payload_bytes = Some(u32::MAX);
        assert!(matches!(
            compile(&id, huge, TimestampMs(1)),
            Err(ManifestError::PayloadLimit { .. })
        ));
        let many: BTreeMap<String, JsonValue> = (0..=PLUGIN_MAX_EVENTS)
            .map(|i| (format!("e{i}"), json!({})))
            .collect();
        let mut too_many = request(json!({}));
        too_many.events = many;
        assert!(matches!(
            compile(&id, too_many, TimestampMs(1)),
            Err(ManifestError::EventCount { .. })
        ));
    }

    #[test]
    fn the_default_payload_limit_is_the_protocol_one() {
        let mut req = request(json!({"e": {}}));
        req.max_payload_bytes = None;
        let (manifest, _) = compile(&PluginId::from("p"), req, TimestampMs(1)).expect("valid");
        assert_eq!(
            manifest.max_payload_bytes as usize,
            PLUGIN_MAX_PAYLOAD_BYTES
        );
    }
}
