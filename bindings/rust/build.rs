//! Generates Rust types from `schemas/` with typify, reading nothing but the committed schemas
//! and their index: this crate proves the schemas alone are enough for a client in another
//! language. Each schema becomes a module named after its type; `roundtrip` dispatches on the
//! type name so tests can push any golden example through the generated types.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let schemas_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let index_path = schemas_dir.join("index.json");
    println!("cargo:rerun-if-changed={}", schemas_dir.display());
    println!("cargo:rerun-if-changed={}", index_path.display());

    let index: serde_json::Value =
        serde_json::from_str(&read(&index_path)).expect("schemas/index.json is JSON");
    let types = index["types"]
        .as_array()
        .expect("index.json has a `types` array");

    let mut modules = String::new();
    let mut dispatch = String::new();
    for entry in types {
        let name = entry["name"].as_str().expect("index entry has a name");
        let file = schemas_dir.join(entry["schema"].as_str().expect("index entry has a schema"));
        println!("cargo:rerun-if-changed={}", file.display());
        let root: schemars08::schema::RootSchema = serde_json::from_str(&read(&file))
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));

        let mut settings = typify::TypeSpaceSettings::default();
        settings.with_struct_builder(false);
        let mut space = typify::TypeSpace::new(&settings);
        space
            .add_root_schema(root)
            .unwrap_or_else(|e| panic!("typify cannot read {}: {e}", file.display()));
        let code = prettyplease::unparse(
            &syn::parse2::<syn::File>(space.to_stream()).expect("typify emits valid Rust"),
        );
        let module = module_name(name);
        writeln!(
            modules,
            "/// Types generated from `schemas/{name}.schema.json`."
        )
        .ok();
        writeln!(
            modules,
            "#[allow(missing_docs, clippy::all, clippy::pedantic)]"
        )
        .ok();
        writeln!(modules, "pub mod {module} {{\n{code}\n}}\n").ok();
        writeln!(
            dispatch,
            "        {name:?} => Some(reserialize::<{module}::{name}>(json)),"
        )
        .ok();
    }

    let generated = format!(
        "{modules}\n\
         /// Parses `json` as the generated type named `type_name` and serializes it back;\n\
         /// `None` when no schema of that name exists.\n\
         pub fn roundtrip(type_name: &str, json: &str) -> Option<Result<serde_json::Value, serde_json::Error>> {{\n\
             match type_name {{\n{dispatch}        _ => None,\n    }}\n}}\n"
    );
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("generated.rs"), generated).expect("OUT_DIR is writable");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn module_name(type_name: &str) -> String {
    let mut out = String::new();
    for (i, c) in type_name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
