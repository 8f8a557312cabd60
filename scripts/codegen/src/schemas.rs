//! JSON Schema output: one self-contained draft 2020-12 schema per top-level type, an index, and
//! the constants.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use signalbox_protocol::catalog::{self, CatalogVisitor, Entry};
use ts_rs::TS;

use crate::{GENERATED_NOTICE, remove_owned_files, write_file};

/// The schema of one top-level type, as committed in `schemas/`.
pub fn schema_for<T: JsonSchema>() -> Value {
    let mut value = catalog::schema_for::<T>();
    if let Value::Object(map) = &mut value {
        map.insert("$comment".into(), json!(GENERATED_NOTICE));
    }
    value
}

struct SchemaWriter<'a> {
    dir: &'a Path,
    index: Vec<Value>,
    result: Result<(), String>,
}

impl CatalogVisitor for SchemaWriter<'_> {
    fn visit<T>(&mut self, entry: Entry)
    where
        T: JsonSchema + TS + Serialize + DeserializeOwned + 'static,
    {
        if self.result.is_err() {
            return;
        }
        let name = T::schema_name();
        let file = format!("{name}.schema.json");
        self.index.push(json!({
            "name": name,
            "surface": entry.surface.label(),
            "usage": entry.usage,
            "schema": file,
            "examples": entry.examples.required_stems()
                .iter()
                .map(|stem| format!("examples/{name}/{stem}.json"))
                .collect::<Vec<_>>(),
        }));
        self.result = write_file(&self.dir.join(&file), &pretty(&schema_for::<T>()));
    }
}

/// Writes `*.schema.json`, `index.json` and `constants.json` into `dir`.
pub fn write_all(dir: &Path) -> Result<(), String> {
    remove_owned_files(dir, |name| name.ends_with(".schema.json"))?;
    let mut writer = SchemaWriter {
        dir,
        index: Vec::new(),
        result: Ok(()),
    };
    catalog::visit(&mut writer);
    writer.result?;
    let index = json!({
        "$comment": GENERATED_NOTICE,
        "protocolVersion": signalbox_protocol::PROTOCOL_VERSION,
        "types": writer.index,
    });
    write_file(&dir.join("index.json"), &pretty(&index))?;
    let constants: serde_json::Map<String, Value> = catalog::constants()
        .into_iter()
        .map(|c| {
            (
                c.name.to_owned(),
                json!({ "value": c.value, "description": c.doc }),
            )
        })
        .collect();
    let constants = json!({ "$comment": GENERATED_NOTICE, "constants": constants });
    write_file(&dir.join("constants.json"), &pretty(&constants))
}

/// Pretty JSON with a trailing newline, the committed form of every generated JSON file.
pub fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}
