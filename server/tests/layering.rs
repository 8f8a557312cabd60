//! The module dependency graph of `server/src` (issue 13; `docs/design/cluster-plan.md` §1.4).
//!
//! Reads every `server/src/**/*.rs`, drops comment lines, and collects each top-level module's
//! `crate::<module>` edges (`use crate::{a, b::c}` groups included; `super::` paths stay inside a
//! module and are not read; `crate::name!` macro calls are not edges). Every edge must be in
//! [`TARGET`], the graph the refactor aims at, or in [`DEBT`], the edges that exist today and
//! the step of §1.5 that removes each. So no new violation can appear, and paying a debt means
//! deleting its line here (a debt line whose edge is gone fails too, until it is deleted).
//!
//! Never compiles or expands anything: it reads text, so a path spelled through a `pub use`
//! re-export counts as an edge to the module that re-exports it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crate root's items (`crate::RunError`), as an edge target.
const ROOT: &str = "crate root";

/// The target graph: what each top-level module may import. `config` (the settings) is a leaf;
/// `app` wires everything (`"*"`) and nothing imports it. Modules that do not exist yet
/// (`admission`, `cluster`, `lifecycle`, `observe`) have their rows so the branches that add
/// them need no edit here.
const TARGET: &[(&str, &[&str])] = &[
    ("config", &[]),
    ("shutdown", &[]),
    ("listener", &[]),
    ("cli", &["config"]),
    ("auth", &["config"]),
    ("directory", &["config"]),
    ("outbound", &["config"]),
    ("hub", &["config"]),
    ("ice", &["config"]),
    ("peer", &["config"]),
    ("lifecycle", &["config"]),
    // Log levels and subscriber set-up only, once the gauges move to `observe` (R9).
    ("telemetry", &["config"]),
    ("cluster", &["hub", "config", "telemetry"]),
    ("plugins", &["directory", "config"]),
    ("admission", &["directory", "auth", "config"]),
    // Error mapping (directory, auth, outbound) and refusal log levels (telemetry).
    (
        "http",
        &["directory", "auth", "outbound", "config", "telemetry"],
    ),
    (
        "handlers",
        &[
            "hub",
            "directory",
            "auth",
            "admission",
            "plugins",
            "telemetry",
            "config",
        ],
    ),
    (
        "transport",
        &[
            "handlers",
            "http",
            "hub",
            "auth",
            "admission",
            "ice",
            "peer",
            "telemetry",
            "config",
            "lifecycle",
        ],
    ),
    ("withdrawal", &["hub", "directory", "transport", "config"]),
    (
        "routes",
        &[
            "http",
            "directory",
            "auth",
            "admission",
            "outbound",
            "plugins",
            "withdrawal",
            "hub",
            "config",
            "lifecycle",
        ],
    ),
    (
        "observe",
        &[
            "hub",
            // Its numbers only (`Backplane::metrics`), in redis mode.
            "cluster",
            "directory",
            "transport",
            "auth",
            "outbound",
            "http",
            "config",
            "lifecycle",
            "telemetry",
        ],
    ),
    (
        "admin",
        &[
            "observe",
            "auth",
            "http",
            "peer",
            "transport",
            "hub",
            "config",
            "lifecycle",
            "telemetry",
        ],
    ),
    ("tls", &["config", "peer", "telemetry", "listener"]),
    ("demo", &["http"]),
    ("export", &["routes", "config", "telemetry", "observe"]),
    ("app", &["*"]),
];

/// Edges that exist today and are scheduled to go: `(from, to, the step that removes it)`.
/// Delete a line when its step lands (the test says when).
const DEBT: &[(&str, &str, &str)] = &[
    // R3 directory ⊥ auth.
    (
        "directory",
        "auth",
        "R3: access::admit becomes admission::Admission::admit; access never verifies a password",
    ),
    (
        "directory",
        "transport",
        "R3: the SSE half of access.rs's secrets-are-not-printed test moves to transport::sse",
    ),
    (
        "transport",
        "directory",
        "R3/R8: the SSE connect admits through Admission and receives its deps",
    ),
    // R7 route families, Router, Lifecycle, Withdrawal.
    (
        "routes",
        "handlers",
        "R7: the text checks routes/servers.rs borrows (handlers::validate) move below both",
    ),
    (
        "http",
        "transport",
        "R7: AddressLimits moves with the Router; its TokenBucket moves below http",
    ),
    // R8 realtime deps.
    (
        "handlers",
        "app",
        "R8: Session holds Arc<RealtimeDeps>, not the state",
    ),
    (
        "transport",
        "app",
        "R8: the websocket and sse filters take their deps",
    ),
    // R9 observe.
    (
        "telemetry",
        "observe",
        "R9: the gauge table (telemetry/gauges.rs, reading Observed) moves into observe/; tests/gauges.rs keeps its path through a re-export",
    ),
    (
        "observe",
        "routes",
        "R9: routes::link_metadata::PreviewCache moves below routes (outbound/)",
    ),
    (
        "telemetry",
        "auth",
        "R9: telemetry/gauges.rs moves to observe/",
    ),
    (
        "telemetry",
        "hub",
        "R9: telemetry/gauges.rs moves to observe/",
    ),
    (
        "telemetry",
        "transport",
        "R9: telemetry/gauges.rs moves to observe/",
    ),
    (
        "admin",
        "routes",
        "R9: admin's bearer-token parsing (routes::bearer) moves to http",
    ),
];

/// One `crate::` reference.
#[derive(Debug, Clone)]
struct Edge {
    from: String,
    to: String,
    /// `server/src/...:line`.
    at: String,
}

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules `lib.rs` declares (`mod name;` / `pub mod name;`).
fn top_level_modules(root: &Path) -> BTreeSet<String> {
    let lib = std::fs::read_to_string(root.join("lib.rs")).expect("read src/lib.rs");
    lib.lines()
        .map(str::trim)
        .filter_map(|line| {
            let rest = line.strip_prefix("pub ").unwrap_or(line);
            let name = rest.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_owned())
        })
        .collect()
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The leading identifier of `text` (after whitespace) and the bytes it took.
fn leading_ident(text: &str) -> Option<(&str, usize)> {
    let skipped = text.len() - text.trim_start().len();
    let rest = &text[skipped..];
    let len = rest.bytes().take_while(|b| is_ident_byte(*b)).count();
    (len > 0).then(|| (&rest[..len], skipped + len))
}

/// Every `crate::<name>` of `source` with its 1-based line: the first segment of a path, or of
/// each item of a `crate::{...}` group. Comment lines are dropped; `$crate::` and macro calls
/// (`crate::name!`) are not read.
fn crate_references(source: &str) -> Vec<(String, usize)> {
    let mut code = String::new();
    let mut line_of = Vec::new();
    for (index, line) in source.lines().enumerate() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        code.push_str(line);
        code.push('\n');
        line_of.extend(std::iter::repeat_n(index + 1, line.len() + 1));
    }
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = code[from..].find("crate::") {
        let start = from + found;
        let after = start + "crate::".len();
        from = after;
        if start > 0 && (is_ident_byte(bytes[start - 1]) || bytes[start - 1] == b'$') {
            continue;
        }
        if bytes.get(after) == Some(&b'{') {
            let mut depth = 0usize;
            let mut item_start = after + 1;
            for (offset, &b) in bytes[after..].iter().enumerate() {
                let at = after + offset;
                match b {
                    b'{' => depth += 1,
                    b'}' | b',' if depth == 1 => {
                        if let Some((name, len)) = leading_ident(&code[item_start..at]) {
                            let name_start = item_start + len - name.len();
                            out.push((name.to_owned(), line_of[name_start]));
                        }
                        item_start = at + 1;
                        if b == b'}' {
                            break;
                        }
                    }
                    b'}' => depth -= 1,
                    _ => {}
                }
            }
        } else if let Some((name, len)) = leading_ident(&code[after..])
            && bytes.get(after + len) != Some(&b'!')
        {
            out.push((name.to_owned(), line_of[start]));
        }
    }
    out
}

/// Every cross-module edge of `server/src` (lib.rs and main.rs, the crate root and the binary,
/// are not modules and are not read).
fn edges() -> Vec<Edge> {
    let root = source_root();
    let modules = top_level_modules(&root);
    assert!(
        modules.len() > 10,
        "src/lib.rs declares its modules: {modules:?}"
    );
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut out = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&root).expect("under src");
        let first = relative
            .components()
            .next()
            .expect("a path")
            .as_os_str()
            .to_string_lossy();
        let from = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
        if from == "lib" || from == "main" {
            continue;
        }
        let source = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        for (name, line) in crate_references(&source) {
            let to = if modules.contains(&name) {
                name
            } else {
                ROOT.to_owned()
            };
            if to != from {
                out.push(Edge {
                    from: from.clone(),
                    to,
                    at: format!("server/src/{}:{line}", relative.display()),
                });
            }
        }
    }
    assert!(!out.is_empty(), "no `crate::` edge found under {root:?}");
    out
}

fn target_allows(from: &str, to: &str) -> Option<bool> {
    TARGET
        .iter()
        .find(|(module, _)| *module == from)
        .map(|(_, allowed)| allowed.contains(&"*") || allowed.contains(&to))
}

fn is_debt(from: &str, to: &str) -> bool {
    DEBT.iter().any(|(f, t, _)| *f == from && *t == to)
}

#[test]
fn every_edge_is_in_the_target_graph_or_scheduled_debt() {
    let mut violations = BTreeSet::new();
    for edge in edges() {
        match target_allows(&edge.from, &edge.to) {
            Some(true) => {}
            Some(false) if is_debt(&edge.from, &edge.to) => {}
            Some(false) => {
                violations.insert(format!(
                    "{}: `{}` imports `{}`, which the target graph does not allow (see \
                     cluster-plan §1.4; TARGET in tests/layering.rs)",
                    edge.at, edge.from, edge.to
                ));
            }
            None => {
                violations.insert(format!(
                    "{}: module `{}` has no row in TARGET (tests/layering.rs): add it with what \
                     it may import",
                    edge.at, edge.from
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n  {}",
        violations.into_iter().collect::<Vec<_>>().join("\n  ")
    );
}

#[test]
fn config_imports_nothing_of_the_crate() {
    let imports: Vec<String> = edges()
        .into_iter()
        .filter(|e| e.from == "config")
        .map(|e| format!("{}: config imports `{}`", e.at, e.to))
        .collect();
    assert!(
        imports.is_empty(),
        "config (the settings) must be a leaf that imports only signalbox_protocol:\n  {}",
        imports.join("\n  ")
    );
}

#[test]
fn nothing_imports_app_but_scheduled_debt() {
    let imports: Vec<String> = edges()
        .into_iter()
        .filter(|e| e.to == "app" && !is_debt(&e.from, "app"))
        .map(|e| format!("{}: `{}` imports `app`", e.at, e.from))
        .collect();
    assert!(
        imports.is_empty(),
        "app only wires; a module receives the services it uses instead:\n  {}",
        imports.join("\n  ")
    );
}

#[test]
fn every_debt_edge_still_exists_and_is_not_in_the_target() {
    let present: BTreeSet<(String, String)> = edges().into_iter().map(|e| (e.from, e.to)).collect();
    let mut stale = Vec::new();
    for (from, to, step) in DEBT {
        assert_eq!(
            target_allows(from, to),
            Some(false),
            "DEBT lists `{from}` -> `{to}`, which TARGET already allows: delete the DEBT line"
        );
        if !present.contains(&((*from).to_owned(), (*to).to_owned())) {
            stale.push(format!("`{from}` -> `{to}` ({step})"));
        }
    }
    assert!(
        stale.is_empty(),
        "debt paid: these edges no longer exist, delete their lines from DEBT in \
         tests/layering.rs:\n  {}",
        stale.join("\n  ")
    );
}

#[test]
fn the_target_graph_is_acyclic() {
    let graph: BTreeMap<&str, Vec<&str>> = TARGET
        .iter()
        .map(|(module, allowed)| {
            let allowed = if allowed.contains(&"*") {
                TARGET
                    .iter()
                    .map(|(m, _)| *m)
                    .filter(|m| m != module)
                    .collect()
            } else {
                allowed.to_vec()
            };
            (*module, allowed)
        })
        .collect();
    fn visit<'a>(
        module: &'a str,
        graph: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(module) {
            return;
        }
        if let Some(at) = path.iter().position(|m| *m == module) {
            panic!(
                "TARGET has a cycle: {} -> {module}",
                path[at..].join(" -> ")
            );
        }
        path.push(module);
        for next in graph.get(module).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(module);
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
    for (module, allowed) in TARGET {
        for to in *allowed {
            assert!(
                *to == "*" || graph.contains_key(to),
                "TARGET: `{module}` may import `{to}`, which has no row"
            );
        }
    }
}

#[test]
fn the_scanner_reads_paths_and_groups_and_skips_comments_macros_and_super() {
    let source = "\
//! Docs name [`crate::app`], which is not an edge.
use crate::config::Variables;
use crate::{
    hub::Hub,
    routes::{self, Req},
    auth,
};
use super::sibling;
/// Also not an edge: crate::telemetry.
fn f() { let _ = crate::op!(\"x\"); let _ = $crate::lib; let _ = my_crate::x; crate::peer::addr(); }
";
    let found: Vec<(String, usize)> = crate_references(source);
    let expected: Vec<(String, usize)> = [
        ("config", 2),
        ("hub", 4),
        ("routes", 5),
        ("auth", 6),
        ("peer", 10),
    ]
    .into_iter()
    .map(|(name, line)| (name.to_owned(), line))
    .collect();
    assert_eq!(found, expected);
}
