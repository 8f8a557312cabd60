//! [`Secret`]: a string that is secret on the wire (a token, a password, a TURN credential).
//!
//! It serializes as the plain string it is, and its JSON Schema and TypeScript type are those
//! of a string, so wrapping a field changes no wire shape. What it changes is printing: `Debug`
//! and `Display` show `<redacted>`, so a `{:?}` of an envelope, a request or a log line never
//! carries the secret. Read it with [`Secret::expose`], where it is used and nowhere else.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// What `Debug` and `Display` print instead of a secret.
pub const REDACTED: &str = "<redacted>";

/// A secret string (see the module docs).
#[derive(Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; never log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret itself, by value.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Exactly the schema of a `String`, inlined: the wire shape does not change.
impl JsonSchema for Secret {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        String::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        String::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        String::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_redacted_and_serializes_plain() {
        let secret = Secret::from("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "<redacted> <redacted>");
        assert_eq!(serde_json::to_string(&secret).expect("json"), "\"hunter2\"");
        let back: Secret = serde_json::from_str("\"hunter2\"").expect("parses");
        assert_eq!(back.expose(), "hunter2");
    }

    #[test]
    fn no_secret_bearing_type_prints_its_secret() {
        let parsed = |json: &str| -> String {
            let envelope: crate::ClientEnvelope = serde_json::from_str(json).expect("parses");
            format!("{envelope:?}")
        };
        let identify = parsed(r#"{"type":"identify","displayName":"A","token":"tok-SECRET-1"}"#);
        let join = parsed(r#"{"type":"join_server","serverId":"s","password":"pw-SECRET-2"}"#);
        let set_password: crate::http::SetPasswordRequest =
            serde_json::from_str(r#"{"password":"pw-SECRET-3"}"#).expect("parses");
        let token: crate::http::TokenResponse = serde_json::from_str(
            r#"{"token":"jwt-SECRET-4","userId":"u","expiresAt":1,"guest":true}"#,
        )
        .expect("parses");
        let turn: crate::sse::IceServer = serde_json::from_str(
            r#"{"urls":["turn:t"],"username":"1:u","credential":"cred-SECRET-5"}"#,
        )
        .expect("parses");
        let printed = [
            identify,
            join,
            format!("{set_password:?}"),
            format!("{token:?}"),
            format!("{turn:?}"),
        ];
        for text in printed {
            assert!(!text.contains("SECRET"), "a secret printed: {text}");
            assert!(text.contains(REDACTED), "{text}");
        }
        assert_eq!(set_password.password.expose(), "pw-SECRET-3");
    }
}
