//! Opaque JSON carried through the server untouched.

/// A JSON object the server carries without interpreting it (a chat message record, a voice
/// state, the unknown fields of a forwarded envelope).
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// Any JSON value the server carries without interpreting it (an SSE signal, a plugin payload).
pub type JsonValue = serde_json::Value;
