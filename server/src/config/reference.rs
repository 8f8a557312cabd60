//! The operator's reference of `data/variables.json`, generated from the [`Variables`] type
//! (its doc comments, types and defaults) so the document cannot drift from the code.
//!
//! `docs/configuration.md` is this module's output followed by the gauges' section, put together
//! by `crate::export::reference` (this module stays a leaf: it never reads the gauges table); a
//! test there fails when the committed file differs (`SIGNALBOX_BLESS=1 cargo test -p signalbox
//! configuration_reference` rewrites it).

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::Variables;

/// The Markdown reference of every key, nested sections included (without the gauges' section).
pub fn markdown() -> String {
    let schema = serde_json::to_value(schemars::schema_for!(Variables)).unwrap_or(Value::Null);
    let defaults = serde_json::to_value(Variables::default()).unwrap_or(Value::Null);
    let mut out = String::from(
        "<!-- generated from server/src/config (Variables); do not edit: run \
         `SIGNALBOX_BLESS=1 cargo test -p signalbox configuration_reference` -->\n\
         # Configuration reference: `data/variables.json`\n\n\
         The server reads `<data-dir>/variables.json` (created with these defaults on first \
         start), then environment variables, then command-line flags (`signalbox --help`). An \
         unknown key, a value of the wrong type or an out-of-range value stops the server with an \
         error naming the key. Every key is optional.\n",
    );
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    section(&mut out, "", &schema, &defaults, &defs);
    out
}

/// Every key of the reference that holds a value (nested sections' keys as `section.key`).
pub fn keys() -> Vec<String> {
    fn walk(prefix: &str, schema: &Value, defs: &Value, out: &mut Vec<String>) {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (key, property) in properties {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            let resolved = resolve(property, defs);
            if resolved.get("properties").is_some() {
                walk(&path, resolved, defs, out);
            } else {
                out.push(path);
            }
        }
    }
    let schema = serde_json::to_value(schemars::schema_for!(Variables)).unwrap_or(Value::Null);
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    let mut out = Vec::new();
    walk("", &schema, &defs, &mut out);
    out
}

fn section(out: &mut String, prefix: &str, schema: &Value, defaults: &Value, defs: &Value) {
    let title = if prefix.is_empty() {
        "Top level".to_owned()
    } else {
        format!("`{prefix}`")
    };
    let _ = writeln!(out, "\n## {title}\n");
    if let Some(description) = schema.get("description").and_then(Value::as_str)
        && !prefix.is_empty()
    {
        let _ = writeln!(out, "{}\n", one_line(description));
    }
    let _ = writeln!(out, "| key | type | default | meaning |\n|---|---|---|---|");
    let empty = Map::new();
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut nested = Vec::new();
    for (key, property) in properties {
        let resolved = resolve(property, defs);
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let default = defaults.get(key).cloned().unwrap_or(Value::Null);
        if resolved.get("properties").is_some() {
            nested.push((path.clone(), resolved.clone(), default));
            let _ = writeln!(
                out,
                "| `{path}` | object | see below | {} |",
                one_line(description_of(property, resolved))
            );
            continue;
        }
        let _ = writeln!(
            out,
            "| `{path}` | {} | `{}` | {} |",
            type_of(resolved, defs),
            default,
            one_line(description_of(property, resolved))
        );
    }
    for (path, schema, defaults) in nested {
        section(out, &path, &schema, &defaults, defs);
    }
}

fn resolve<'a>(schema: &'a Value, defs: &'a Value) -> &'a Value {
    let reference = schema.get("$ref").and_then(Value::as_str).or_else(|| {
        schema
            .get("allOf")
            .and_then(Value::as_array)
            .and_then(|all| all.first())
            .and_then(|first| first.get("$ref"))
            .and_then(Value::as_str)
    });
    match reference.and_then(|r| r.strip_prefix("#/$defs/")) {
        Some(name) => defs.get(name).unwrap_or(schema),
        None => schema,
    }
}

fn description_of<'a>(property: &'a Value, resolved: &'a Value) -> &'a str {
    property
        .get("description")
        .or_else(|| resolved.get("description"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn type_of(schema: &Value, defs: &Value) -> String {
    if let Some(values) = enum_values(schema, defs) {
        return values.join(" \\| ");
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let parts: Vec<_> = any
            .iter()
            .map(|s| type_of(resolve(s, defs), defs))
            .collect();
        return parts.join(" or ");
    }
    match schema.get("type") {
        Some(Value::String(t)) if t == "array" => {
            let items = schema.get("items").map(|i| type_of(resolve(i, defs), defs));
            format!("list of {}", items.unwrap_or_else(|| "values".into()))
        }
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "value".into(),
    }
}

fn enum_values(schema: &Value, defs: &Value) -> Option<Vec<String>> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Some(values.iter().map(|v| format!("`{v}`")).collect());
    }
    let variants = schema.get("oneOf").and_then(Value::as_array)?;
    let mut values = Vec::new();
    for variant in variants {
        let variant = resolve(variant, defs);
        if let Some(c) = variant.get("const") {
            values.push(format!("`{c}`"));
        } else if let Some(e) = variant.get("enum").and_then(Value::as_array) {
            values.extend(e.iter().map(|v| format!("`{v}`")));
        } else {
            return None;
        }
    }
    Some(values)
}

fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_documented() {
        let text = markdown();
        for key in [
            "`port`",
            "`realtime.heartbeatTimeoutMs`",
            "`realtime.forwarding`",
            "`auth`",
        ] {
            assert!(text.contains(key), "{key} missing");
        }
        assert!(text.contains("`\"shared-server\"`"), "{text}");
        assert!(!text.contains("| value |"), "a key has no type: {text}");
    }
}
