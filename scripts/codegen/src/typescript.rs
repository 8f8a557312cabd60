//! TypeScript output: ts-rs declarations, an `index.ts` exporting them all, `constants.ts`, and
//! the generated type-check of every golden example.

use std::collections::BTreeSet;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use signalbox_protocol::catalog::{self, CatalogVisitor, Entry};
use ts_rs::{Config, TS};

use crate::{GENERATED_NOTICE, write_file};

struct TsExporter<'a> {
    config: &'a Config,
    /// Top-level type names, with the example stems they must have.
    top_level: Vec<String>,
    result: Result<(), String>,
}

impl CatalogVisitor for TsExporter<'_> {
    fn visit<T>(&mut self, _entry: Entry)
    where
        T: JsonSchema + TS + Serialize + DeserializeOwned + 'static,
    {
        if self.result.is_err() {
            return;
        }
        self.top_level.push(T::name(self.config));
        self.result = T::export_all(self.config)
            .map_err(|e| format!("ts-rs export of {} failed: {e}", T::name(self.config)));
    }
}

/// Writes `src/` and `test/examples.generated.ts` under `package_dir`.
pub fn write_all(package_dir: &Path, examples_dir: &Path) -> Result<(), String> {
    let src = package_dir.join("src");
    // The whole folder is generated (ts-rs also writes `serde_json/JsonValue.ts`).
    if src.exists() {
        std::fs::remove_dir_all(&src)
            .map_err(|e| format!("cannot clear {}: {e}", src.display()))?;
    }
    // Relative imports carry `.js`: Node's ESM resolution (and TypeScript's `node16`/`nodenext`)
    // needs the extension, and the compiled package keeps the specifiers as written.
    let config = Config::new()
        .with_out_dir(&src)
        .with_large_int("number")
        .with_import_extension(Some("js"));
    let mut exporter = TsExporter {
        config: &config,
        top_level: Vec::new(),
        result: Ok(()),
    };
    catalog::visit(&mut exporter);
    exporter.result?;
    name_flattened_json_objects(&src)?;

    let mut modules = BTreeSet::new();
    collect_modules(&src, "", &mut modules)?;
    let mut index = format!("// {GENERATED_NOTICE}\n\n");
    for module in &modules {
        index.push_str(&format!("export type * from \"./{module}.js\";\n"));
    }
    index.push_str("export * from \"./constants.js\";\n");
    write_file(&src.join("index.ts"), &index)?;
    write_file(&src.join("constants.ts"), &constants_ts())?;
    write_file(
        &package_dir.join("test/examples.generated.ts"),
        &examples_ts(examples_dir)?,
    )
}

/// What ts-rs writes for a `#[serde(flatten)]` JSON object (the unknown fields a forwarded
/// envelope or a WebRTC object keeps): `JsonValue`'s definition spelled out in place.
const FLATTENED_JSON_OBJECT: &str = "& ({ [key in string]: number | string | boolean | Array<JsonValue> | { [key in string]: JsonValue } | null })";

/// The name those fields are given: a type of their own, beside the declared fields (the ones
/// the server sets, such as `fromUserId`, stay declared fields).
const EXTRA_FIELDS_TYPE: &str = "ExtraFields";

/// `ExtraFields.ts`.
fn extra_fields_ts() -> String {
    format!(
        "// {GENERATED_NOTICE}\nimport type {{ JsonValue }} from \"./serde_json/JsonValue.js\";\n\n\
         /**\n * The fields of an object that the protocol does not name: kept as sent and forwarded\n \
         * untouched (a peer message's payload, a WebRTC object's newer fields). Opaque JSON to the\n \
         * server; their shape is the peers' business.\n */\n\
         export type {EXTRA_FIELDS_TYPE} = {{ [key in string]: JsonValue }};\n"
    )
}

/// Rewrites the spelled-out form of flattened JSON objects to `& ExtraFields` in every file of
/// `src` (same type, readable, and one name for the contract checker and for readers).
fn name_flattened_json_objects(src: &Path) -> Result<(), String> {
    let mut modules = BTreeSet::new();
    collect_modules(src, "", &mut modules)?;
    let import_json = "import type { JsonValue } from \"./serde_json/JsonValue.js\";\n";
    let import_extra =
        format!("import type {{ {EXTRA_FIELDS_TYPE} }} from \"./{EXTRA_FIELDS_TYPE}.js\";\n");
    for module in modules {
        let path = src.join(format!("{module}.ts"));
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if !text.contains(FLATTENED_JSON_OBJECT) {
            continue;
        }
        let mut text = text.replace(FLATTENED_JSON_OBJECT, &format!("& {EXTRA_FIELDS_TYPE}"));
        if text.matches("JsonValue").count() == 2 {
            // Only the import and its name in it are left: the import is not needed any more.
            text = text.replace(import_json, "");
        }
        // ts-rs writes one header line, then the imports.
        let header_end = text.find('\n').map_or(0, |i| i + 1);
        text.insert_str(header_end, &import_extra);
        write_file(&path, &text)?;
    }
    write_file(
        &src.join(format!("{EXTRA_FIELDS_TYPE}.ts")),
        &extra_fields_ts(),
    )
}

/// Every `.ts` file under `dir`, as module paths relative to `src/` without the extension.
fn collect_modules(dir: &Path, prefix: &str, modules: &mut BTreeSet<String>) -> Result<(), String> {
    for name in sorted_entries(dir)? {
        let path = dir.join(&name);
        if path.is_dir() {
            collect_modules(&path, &format!("{prefix}{name}/"), modules)?;
        } else if let Some(stem) = name.strip_suffix(".ts") {
            modules.insert(format!("{prefix}{stem}"));
        }
    }
    Ok(())
}

fn constants_ts() -> String {
    let mut out = format!("// {GENERATED_NOTICE}\n");
    for constant in catalog::constants() {
        let value = serde_json::to_string_pretty(&constant.value).unwrap_or_default();
        out.push_str(&format!(
            "\n/** {} */\nexport const {} = {} as const;\n",
            constant.doc.replace('\n', " "),
            constant.name,
            value
        ));
    }
    out
}

/// Every file `examples/<Type>/<stem>.json` becomes `export const <Type>__<stem> = ... satisfies
/// <Type>;`, so `tsc --strict` checks each golden example against its generated type (excess
/// properties included).
fn examples_ts(examples_dir: &Path) -> Result<String, String> {
    let mut out = format!(
        "// {GENERATED_NOTICE}\n// Every golden example of schemas/examples/, checked against its type by tsc.\n\n"
    );
    let mut imports = BTreeSet::new();
    let mut checks = String::new();
    let types = sorted_entries(examples_dir)?;
    for type_name in types {
        let type_dir = examples_dir.join(&type_name);
        if !type_dir.is_dir() {
            continue;
        }
        for file in sorted_entries(&type_dir)? {
            let Some(stem) = file.strip_suffix(".json") else {
                continue;
            };
            let path = type_dir.join(&file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
            let ident = format!("{type_name}__{}", stem.replace(['-', '.'], "_"));
            let literal = serde_json::to_string_pretty(&value).unwrap_or_default();
            checks.push_str(&format!(
                "export const {ident} = {literal} satisfies {type_name};\n\n"
            ));
            imports.insert(type_name.clone());
        }
    }
    for name in imports {
        out.push_str(&format!(
            "import type {{ {name} }} from \"../src/{name}\";\n"
        ));
    }
    out.push('\n');
    out.push_str(&checks);
    Ok(out)
}

fn sorted_entries(dir: &Path) -> Result<Vec<String>, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}
