//! The catalog: every top-level wire type, walked by the generator and by the golden-example
//! tests, so neither keeps its own list.
//!
//! [`visit`] calls a [`CatalogVisitor`] once per top-level type with what is needed to export it
//! (its Rust type, for schemars and ts-rs) and to check it (which golden examples it must have).
//! A type is "top-level" when it is a whole message on the wire: an envelope union, an SSE event's
//! data, an HTTP body. Their parts (`UserSummary`, `IceServer`, ...) are exported as
//! dependencies. [`constants`] lists the values exported beside the types.

use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use ts_rs::TS;

use crate::codes::{CloseCode, ErrorCode};
use crate::sse::SseRosterChange;
use crate::sse::{LeaveRequest, SignalRequest, SseErrorBody, SseJoined, SseRoster, SseSignal};
use crate::sse::{SseError, SseSuccess};
use crate::ws::{ClientEnvelope, ServerEnvelope};
use crate::{PROTOCOL_MAJOR, PROTOCOL_VERSION, http, limits};

/// The JSON Schema (draft 2020-12) of a top-level type, as committed in `schemas/`.
///
/// schemars' output is normalized into an equivalent schema that is easier for code generators
/// in other languages (typify among them) to read exactly:
/// - each branch of an envelope union is self-contained: the payload's definition is inlined
///   beside the `type` tag instead of being referenced, and carries a `title` (the variant's name
///   plus `Envelope`), so generated variants have names and the tag is part of each branch;
/// - the tag is a one-value `enum` rather than a `const` (same meaning), which generators turn
///   into a checked value instead of a free string;
/// - "unknown fields are kept" is spelled `additionalProperties: {}` rather than `true` (same
///   meaning), which generators turn into a map of extra fields instead of dropping them.
pub fn schema_for<T: JsonSchema>() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    let mut value = schema.to_value();
    normalize::inline_union_branches(&mut value);
    normalize::explicit_additional_properties(&mut value);
    value
}

mod normalize {
    use serde_json::{Map, Value, json};

    /// Inlines the `$ref` of each `oneOf` branch that pairs a reference with a tag property.
    pub fn inline_union_branches(root: &mut Value) {
        let defs = root.get("$defs").cloned().unwrap_or(Value::Null);
        let Some(branches) = root.get_mut("oneOf").and_then(Value::as_array_mut) else {
            return;
        };
        for branch in branches.iter_mut() {
            let Some(obj) = branch.as_object_mut() else {
                continue;
            };
            let Some(target) = obj.get("$ref").and_then(Value::as_str).map(str::to_owned) else {
                continue;
            };
            let def_name = target.trim_start_matches("#/$defs/");
            let Some(def) = defs.get(def_name).and_then(Value::as_object) else {
                continue;
            };
            obj.remove("$ref");
            let tag_properties = obj.remove("properties").unwrap_or_else(|| json!({}));
            let mut properties = Map::new();
            let mut title = None;
            for (name, schema) in tag_properties.as_object().into_iter().flatten() {
                let mut schema = schema.clone();
                if let Some(constant) = schema.get("const").cloned() {
                    title = constant.as_str().map(pascal_case);
                    schema = json!({ "type": "string", "enum": [constant] });
                }
                properties.insert(name.clone(), schema);
            }
            for (name, schema) in def
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                properties.insert(name.clone(), schema.clone());
            }
            let mut required: Vec<Value> = obj
                .remove("required")
                .and_then(|r| r.as_array().cloned())
                .unwrap_or_default();
            required.extend(
                def.get("required")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            obj.insert("properties".into(), Value::Object(properties));
            obj.insert("required".into(), Value::Array(required));
            if let Some(extra) = def.get("additionalProperties") {
                obj.insert("additionalProperties".into(), extra.clone());
            }
            if let Some(title) = title {
                obj.insert("title".into(), Value::String(format!("{title}Envelope")));
            }
        }
        drop_unreferenced_defs(root);
    }

    /// Rewrites every `additionalProperties: true` as the equivalent `{}`.
    pub fn explicit_additional_properties(value: &mut Value) {
        match value {
            Value::Object(map) => {
                if map.get("additionalProperties") == Some(&Value::Bool(true)) {
                    map.insert("additionalProperties".into(), json!({}));
                }
                map.values_mut().for_each(explicit_additional_properties);
            }
            Value::Array(items) => items.iter_mut().for_each(explicit_additional_properties),
            _ => {}
        }
    }

    fn drop_unreferenced_defs(root: &mut Value) {
        loop {
            let text = serde_json::to_string(&root).unwrap_or_default();
            let Some(defs) = root.get_mut("$defs").and_then(Value::as_object_mut) else {
                return;
            };
            let unused: Vec<String> = defs
                .keys()
                .filter(|name| !text.contains(&format!("\"#/$defs/{name}\"")))
                .cloned()
                .collect();
            if unused.is_empty() {
                return;
            }
            for name in unused {
                defs.remove(&name);
            }
        }
    }

    fn pascal_case(wire: &str) -> String {
        wire.split(['_', '-'])
            .map(|word| {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// Which part of the wire a type belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// WebSocket envelopes.
    WebSocket,
    /// SSE events and bodies.
    Sse,
    /// HTTP API bodies.
    Http,
}

impl Surface {
    /// A short lowercase label, used in the schema index.
    pub const fn label(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::Sse => "sse",
            Self::Http => "http",
        }
    }
}

/// The golden examples a type must have, as file stems under `schemas/examples/<TypeName>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Examples {
    /// One example, `example.json`.
    One,
    /// One example per wire `type` of a union, `<wire type>.json`.
    PerWireType(&'static [&'static str]),
}

impl Examples {
    /// The file stems required (more files may exist; each is checked).
    pub fn required_stems(self) -> Vec<&'static str> {
        match self {
            Self::One => vec!["example"],
            Self::PerWireType(types) => types.to_vec(),
        }
    }
}

/// One top-level wire type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Where on the wire it travels.
    pub surface: Surface,
    /// Which golden examples it must have.
    pub examples: Examples,
    /// One line on where it is used (route, event, direction), for the schema index.
    pub usage: &'static str,
}

/// Receives every top-level type of the catalog.
pub trait CatalogVisitor {
    /// Called once per top-level type `T`.
    fn visit<T>(&mut self, entry: Entry)
    where
        T: JsonSchema + TS + Serialize + DeserializeOwned + 'static;
}

/// Walks every top-level wire type, WebSocket first, then SSE, then HTTP.
pub fn visit<V: CatalogVisitor>(visitor: &mut V) {
    use Surface::*;
    let per_type = Examples::PerWireType;
    visitor.visit::<ClientEnvelope>(Entry {
        surface: WebSocket,
        examples: per_type(ClientEnvelope::WIRE_TYPES),
        usage: "WebSocket, client to server",
    });
    visitor.visit::<ServerEnvelope>(Entry {
        surface: WebSocket,
        examples: per_type(ServerEnvelope::WIRE_TYPES),
        usage: "WebSocket, server to client",
    });
    let sse = |usage| Entry {
        surface: Sse,
        examples: Examples::One,
        usage,
    };
    visitor.visit::<SseJoined>(sse("SSE event `joined` (data)"));
    visitor.visit::<SseRoster>(sse("SSE event `roster` (data)"));
    visitor.visit::<SseSignal>(sse("SSE event `signal` (data)"));
    visitor.visit::<SseRosterChange>(sse(
        "SSE events `roster_joined`, `roster_left` (data; `roster=delta` streams)",
    ));
    visitor.visit::<SignalRequest>(sse("POST /api/signal (request body)"));
    visitor.visit::<LeaveRequest>(sse("POST /api/leave (request body)"));
    visitor.visit::<SseSuccess>(sse("POST /api/signal, /api/leave (200 body)"));
    visitor.visit::<SseErrorBody>(sse("SSE routes (error body)"));
    http::visit_catalog(visitor);
}

/// A value exported beside the types (to `constants.ts` and `schemas/constants.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct Constant {
    /// `SCREAMING_SNAKE` name.
    pub name: &'static str,
    /// The value.
    pub value: serde_json::Value,
    /// What it is.
    pub doc: String,
}

/// Every exported constant: the protocol version, close codes, error codes, SSE errors, limits.
pub fn constants() -> Vec<Constant> {
    use serde_json::{Map, Value, json};
    let mut out = vec![
        Constant {
            name: "PROTOCOL_VERSION",
            value: json!(PROTOCOL_VERSION),
            doc: "The protocol version this build speaks (semver).".into(),
        },
        Constant {
            name: "PROTOCOL_MAJOR",
            value: json!(PROTOCOL_MAJOR),
            doc: "The major protocol version, for `?v=` at upgrade.".into(),
        },
    ];
    let close_codes: Map<String, Value> = CloseCode::ALL
        .iter()
        .map(|c| (c.name().to_owned(), json!(c.code())))
        .collect();
    out.push(Constant {
        name: "CLOSE_CODES",
        value: Value::Object(close_codes),
        doc: "WebSocket close codes the server sends.".into(),
    });
    let error_codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    out.push(Constant {
        name: "ERROR_CODES",
        value: json!(error_codes),
        doc: "Every `code` of the WebSocket `error` envelope.".into(),
    });
    let sse_errors: Map<String, Value> = SseError::ALL
        .iter()
        .map(|e| (e.status().to_string(), json!(e.message())))
        .collect();
    out.push(Constant {
        name: "SSE_ERROR_MESSAGES",
        value: Value::Object(sse_errors),
        doc: "The SSE routes' error message for each HTTP status.".into(),
    });
    for limit in limits::ALL {
        out.push(Constant {
            name: limit.name,
            value: json!(limit.value),
            doc: limit.doc.trim().to_owned(),
        });
    }
    out
}
