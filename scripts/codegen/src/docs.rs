//! `docs/protocol.md`: the wire reference, generated from the same schemas and constants as the
//! bindings, so the docs cannot drift from the code.
//!
//! Every type a field refers to gets a section of its own (the top-level types of the catalog,
//! then every definition their schemas refer to), and a field's type names it with a link. A
//! field is never labelled `any`: values carried untouched are "JSON value".

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use signalbox_protocol::catalog::{self, CatalogVisitor, Entry};
use ts_rs::TS;

use crate::{GENERATED_NOTICE, write_file};

struct DocWriter {
    out: String,
    /// Names of the catalog's top-level types (each has its section already).
    top_level: BTreeSet<String>,
    /// Every definition the top-level schemas refer to, by name (first one wins).
    referenced: BTreeMap<String, Value>,
}

impl CatalogVisitor for DocWriter {
    fn visit<T>(&mut self, entry: Entry)
    where
        T: JsonSchema + TS + Serialize + DeserializeOwned + 'static,
    {
        let name = T::schema_name();
        let schema = catalog::schema_for::<T>();
        self.top_level.insert(name.to_string());
        if let Some(defs) = schema.get("$defs").and_then(Value::as_object) {
            for (def_name, def) in defs {
                self.referenced
                    .entry(def_name.clone())
                    .or_insert_with(|| def.clone());
            }
        }
        self.out
            .push_str(&format!("\n### `{name}`\n\n{}.", entry.usage));
        if let Some(description) = schema.get("description").and_then(Value::as_str) {
            self.out.push_str(&format!(" {}", one_line(description)));
        }
        self.out
            .push_str(&format!(" Schema: `schemas/{name}.schema.json`.\n"));
        match schema.get("oneOf").and_then(Value::as_array) {
            Some(branches) => {
                for branch in branches {
                    let wire = branch
                        .pointer("/properties/type/enum/0")
                        .and_then(Value::as_str)
                        .unwrap_or("?");
                    let description = branch.get("description").and_then(Value::as_str);
                    self.out.push_str(&format!(
                        "\n#### `{wire}`\n\n{}\n",
                        description.map(one_line).unwrap_or_default()
                    ));
                    fields_table(&mut self.out, branch, &schema);
                }
            }
            None => fields_table(&mut self.out, &schema, &schema),
        }
    }
}

fn fields_table(out: &mut String, object: &Value, root: &Value) {
    let Some(properties) = object.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str("\n| field | type | required | description |\n|---|---|---|---|\n");
    for (field, schema) in properties {
        if field == "type" && schema.get("enum").is_some() {
            continue;
        }
        let description = schema
            .get("description")
            .or_else(|| resolve(schema, root).and_then(|s| s.get("description")))
            .and_then(Value::as_str)
            .map(one_line)
            .unwrap_or_default();
        out.push_str(&format!(
            "| `{field}` | {} | {} | {} |\n",
            type_label(schema),
            if required.contains(&field.as_str()) {
                "yes"
            } else {
                "no"
            },
            description.replace('|', "\\|")
        ));
    }
    if object
        .get("additionalProperties")
        .is_some_and(|a| a != &Value::Bool(false))
    {
        out.push_str("| *(any other)* | JSON value | no | kept as sent and forwarded |\n");
    }
}

fn resolve<'a>(schema: &Value, root: &'a Value) -> Option<&'a Value> {
    let target = schema.get("$ref")?.as_str()?.trim_start_matches('#');
    root.pointer(target)
}

fn type_label(schema: &Value) -> String {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        let name = target.rsplit('/').next().unwrap_or(target);
        return format!("[`{name}`](#{})", name.to_lowercase());
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = schema.get(key).and_then(Value::as_array) {
            let labels: Vec<String> = branches
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) != Some("null"))
                .map(type_label)
                .collect();
            if !labels.is_empty() {
                return labels.join(" or ");
            }
        }
    }
    if let Some(value) = schema.get("const") {
        return format!("`{value}`");
    }
    match schema.get("type") {
        Some(Value::String(t)) if t == "array" => {
            let item = schema
                .get("items")
                .map(type_label)
                .unwrap_or_else(|| "JSON value".into());
            format!("array of {item}")
        }
        Some(Value::String(t)) if t == "object" && schema.get("properties").is_none() => {
            "JSON object".into()
        }
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "JSON value".into(),
    }
}

/// The section of one referenced definition: its description, then its fields, its values or
/// what it is on the wire.
fn referenced_section(out: &mut String, name: &str, def: &Value, root: &Value) {
    out.push_str(&format!("\n### `{name}`\n\n"));
    if let Some(description) = def.get("description").and_then(Value::as_str) {
        out.push_str(&format!("{}\n", one_line(description)));
    }
    if def.get("properties").is_some() {
        fields_table(out, def, root);
        return;
    }
    let values: Vec<(&Value, Option<&str>)> = match (def.get("oneOf"), def.get("enum")) {
        (Some(Value::Array(branches)), _) => branches
            .iter()
            .filter_map(|b| {
                b.get("const")
                    .or_else(|| b.pointer("/enum/0"))
                    .map(|v| (v, b.get("description").and_then(Value::as_str)))
            })
            .collect(),
        (_, Some(Value::Array(values))) => values.iter().map(|v| (v, None)).collect(),
        _ => Vec::new(),
    };
    if values.is_empty() {
        out.push_str(&format!("\nOn the wire: {}.\n", type_label(def)));
        return;
    }
    out.push_str("\n| value | description |\n|---|---|\n");
    for (value, description) in values {
        out.push_str(&format!(
            "| `{value}` | {} |\n",
            description
                .map(one_line)
                .unwrap_or_default()
                .replace('|', "\\|")
        ));
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Writes `protocol.md` into `dir`.
pub fn write_all(dir: &Path) -> Result<(), String> {
    write_file(&dir.join("protocol.md"), &render())
}

/// The text of `protocol.md`.
fn render() -> String {
    let mut doc = DocWriter {
        out: format!(
            "<!-- {GENERATED_NOTICE} -->\n# signalbox protocol reference (v{})\n\n\
             Every message that crosses the wire, generated from the `signalbox-protocol` crate. \
             Field names are exact wire names; the server omits optional fields rather than \
             sending `null`, and reads a client's `null` in an optional field as absent. Golden examples of each type are in `schemas/examples/`.\n\n\
             ## Constants\n\n| name | value | description |\n|---|---|---|\n",
            signalbox_protocol::PROTOCOL_VERSION
        ),
        top_level: BTreeSet::new(),
        referenced: BTreeMap::new(),
    };
    for constant in catalog::constants() {
        doc.out.push_str(&format!(
            "| `{}` | `{}` | {} |\n",
            constant.name,
            constant.value,
            one_line(&constant.doc)
        ));
    }
    doc.out.push_str("\n## Types\n");
    catalog::visit(&mut doc);
    doc.out.push_str(
        "\n## Referenced types\n\nThe types the fields above refer to, each described once.\n",
    );
    let root = serde_json::json!({ "$defs": doc.referenced });
    for (name, def) in &doc.referenced {
        if !doc.top_level.contains(name) {
            referenced_section(&mut doc.out, name, def, &root);
        }
    }
    doc.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_optional_reference_names_its_type() {
        let schema = json!({"anyOf": [{"$ref": "#/$defs/UserId"}, {"type": "null"}]});
        assert_eq!(type_label(&schema), "[`UserId`](#userid)");
        assert_eq!(type_label(&json!({"type": ["string", "null"]})), "string");
    }

    #[test]
    fn untyped_values_are_json_values() {
        assert_eq!(type_label(&json!({})), "JSON value");
        assert_eq!(type_label(&json!(true)), "JSON value");
        let object = json!({"type": "object", "additionalProperties": {}});
        assert_eq!(type_label(&object), "JSON object");
    }

    #[test]
    fn every_linked_type_has_a_section_and_no_field_is_any() {
        let doc = render();
        let headings: BTreeSet<String> = doc
            .lines()
            .filter(|line| line.starts_with('#'))
            .filter_map(|line| line.split('`').nth(1))
            .map(str::to_lowercase)
            .collect();
        let mut links = 0;
        for part in doc.split("](#").skip(1) {
            let anchor = part.split(')').next().unwrap_or_default();
            assert!(headings.contains(anchor), "no section for #{anchor}");
            links += 1;
        }
        assert!(links > 100, "only {links} links");
        for name in [
            "UserSummary",
            "IconPeer",
            "PluginRequirement",
            "SessionDescription",
        ] {
            assert!(headings.contains(&name.to_lowercase()), "no section {name}");
        }
        for name in [
            "IceCandidate",
            "IceServer",
            "UserStatus",
            "AccessDeniedReason",
            "ErrorCode",
        ] {
            assert!(headings.contains(&name.to_lowercase()), "no section {name}");
        }
        let any_typed: Vec<&str> = doc
            .lines()
            .filter(|line| line.split('|').nth(2).is_some_and(|t| t.trim() == "any"))
            .collect();
        assert!(any_typed.is_empty(), "fields typed `any`: {any_typed:?}");
    }
}
