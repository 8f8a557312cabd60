//! # signalbox-bindings
//!
//! Rust types for signalbox's wire, generated at build time by typify from the JSON Schema in
//! `schemas/` and nothing else: this crate does not depend on `signalbox-protocol`. It exists to
//! prove that the published schemas are complete enough to build a client in another language;
//! its tests push every golden example through these types and back.
//!
//! Each schema becomes a module named after its type, e.g. [`client_envelope::ClientEnvelope`].

fn reserialize<T>(json: &str) -> Result<serde_json::Value, serde_json::Error>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let parsed: T = serde_json::from_str(json)?;
    serde_json::to_value(&parsed)
}

include!(concat!(env!("OUT_DIR"), "/generated.rs"));
