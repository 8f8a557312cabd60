//! Golden examples: every top-level wire type of the catalog has its examples in
//! `schemas/examples/<Type>/`, and each one validates against the type's JSON Schema, parses into
//! the Rust type, and serializes back to the same JSON. A union needs one example per wire
//! `type`, named after it. An example folder or file the catalog does not ask for fails too, so
//! examples cannot go stale silently.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use signalbox_protocol::catalog::{self, CatalogVisitor, Entry, Examples};
use ts_rs::TS;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/examples")
}

#[derive(Default)]
struct GoldenChecker {
    seen_types: BTreeSet<String>,
    checked: usize,
    failures: Vec<String>,
}

impl GoldenChecker {
    fn check_file<T>(
        &mut self,
        type_name: &str,
        entry: Entry,
        path: &Path,
        validator: &jsonschema::Validator,
    ) where
        T: Serialize + DeserializeOwned,
    {
        let label = format!(
            "{type_name}/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => return self.failures.push(format!("{label}: unreadable: {e}")),
        };
        let original: Value = match serde_json::from_str(&text) {
            Ok(value) => value,
            Err(e) => return self.failures.push(format!("{label}: not JSON: {e}")),
        };
        let errors: Vec<String> = validator
            .iter_errors(&original)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if !errors.is_empty() {
            self.failures
                .push(format!("{label}: fails its schema: {}", errors.join("; ")));
        }
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if let Examples::PerWireType(types) = entry.examples {
            let wire = stem.split('.').next().unwrap_or_default();
            if !types.contains(&wire) {
                self.failures.push(format!(
                    "{label}: `{wire}` is not a wire type of {type_name}"
                ));
            }
            if original.get("type") != Some(&Value::String(wire.to_owned())) {
                self.failures
                    .push(format!("{label}: its `type` is not `{wire}`"));
            }
        }
        let parsed: T = match serde_json::from_value(original.clone()) {
            Ok(parsed) => parsed,
            Err(e) => {
                return self
                    .failures
                    .push(format!("{label}: does not parse as {type_name}: {e}"));
            }
        };
        match serde_json::to_value(&parsed) {
            Ok(back) if back == original => self.checked += 1,
            Ok(back) => self.failures.push(format!(
                "{label}: round trip changed it:\n  was {original}\n  now {back}"
            )),
            Err(e) => self
                .failures
                .push(format!("{label}: does not serialize: {e}")),
        }
    }
}

impl CatalogVisitor for GoldenChecker {
    fn visit<T>(&mut self, entry: Entry)
    where
        T: JsonSchema + TS + Serialize + DeserializeOwned + 'static,
    {
        let type_name = T::schema_name().into_owned();
        self.seen_types.insert(type_name.clone());
        let schema = catalog::schema_for::<T>();
        let validator = match jsonschema::validator_for(&schema) {
            Ok(v) => v,
            Err(e) => {
                return self
                    .failures
                    .push(format!("{type_name}: schema does not compile: {e}"));
            }
        };
        let dir = examples_dir().join(&type_name);
        for stem in entry.examples.required_stems() {
            if !dir.join(format!("{stem}.json")).is_file() {
                self.failures
                    .push(format!("{type_name}: no golden example {stem}.json"));
            }
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for path in files {
            if path.extension().is_some_and(|ext| ext == "json") {
                self.check_file::<T>(&type_name, entry, &path, &validator);
            } else {
                self.failures
                    .push(format!("{}: not a .json example", path.display()));
            }
        }
    }
}

#[test]
fn every_golden_example_validates_parses_and_round_trips() {
    let mut checker = GoldenChecker::default();
    catalog::visit(&mut checker);

    let on_disk: BTreeSet<String> = std::fs::read_dir(examples_dir())
        .expect("schemas/examples exists")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for stale in on_disk.difference(&checker.seen_types) {
        checker
            .failures
            .push(format!("examples/{stale}: no such type in the catalog"));
    }

    assert!(
        checker.failures.is_empty(),
        "golden examples failed:\n{}",
        checker.failures.join("\n")
    );
    assert!(
        checker.checked >= 60,
        "only {} examples checked",
        checker.checked
    );
}
