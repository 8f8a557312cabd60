//! `docs/protocol.md`: the wire reference, generated from the same schemas and constants as the
//! bindings, so the docs cannot drift from the code.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use signalbox_protocol::catalog::{self, CatalogVisitor, Entry};
use ts_rs::TS;

use crate::{GENERATED_NOTICE, write_file};

struct DocWriter {
    out: String,
}

impl CatalogVisitor for DocWriter {
    fn visit<T>(&mut self, entry: Entry)
    where
        T: JsonSchema + TS + Serialize + DeserializeOwned + 'static,
    {
        let name = T::schema_name();
        let schema = catalog::schema_for::<T>();
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
        out.push_str("| *(any other)* | any | no | kept as sent and forwarded |\n");
    }
}

fn resolve<'a>(schema: &Value, root: &'a Value) -> Option<&'a Value> {
    let target = schema.get("$ref")?.as_str()?.trim_start_matches('#');
    root.pointer(target)
}

fn type_label(schema: &Value) -> String {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        return format!("`{}`", target.rsplit('/').next().unwrap_or(target));
    }
    match schema.get("type") {
        Some(Value::String(t)) if t == "array" => {
            let item = schema
                .get("items")
                .map(type_label)
                .unwrap_or_else(|| "any".into());
            format!("array of {item}")
        }
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".into(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Writes `protocol.md` into `dir`.
pub fn write_all(dir: &Path) -> Result<(), String> {
    let mut doc = DocWriter {
        out: format!(
            "<!-- {GENERATED_NOTICE} -->\n# signalbox protocol reference (v{})\n\n\
             Every message that crosses the wire, generated from the `signalbox-protocol` crate. \
             Field names are exact wire names; optional fields are omitted rather than sent as \
             `null`. Golden examples of each type are in `schemas/examples/`.\n\n\
             ## Constants\n\n| name | value | description |\n|---|---|---|\n",
            signalbox_protocol::PROTOCOL_VERSION
        ),
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
    write_file(&dir.join("protocol.md"), &doc.out)
}
