//! The fast path against the derived path: on every golden example, and on frames generated
//! from them (fields in random order, the tag first or not, missing or repeated, unknown fields
//! with nested values, repeated keys, escaped keys, wrong field types, missing fields). Wherever
//! the fast path takes a frame, its envelope equals the derived path's result.

use std::path::PathBuf;
use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::Value;

use super::parse_tag_first;
use crate::ws::ClientEnvelope;
use crate::ws::parse::parse_derived;

/// One golden example per client wire type, as text, in `WIRE_TYPES` order.
static EXAMPLES: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/examples/ClientEnvelope");
    ClientEnvelope::WIRE_TYPES
        .iter()
        .map(|wire| {
            let path = dir.join(format!("{wire}.json"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (*wire, text)
        })
        .collect()
});

/// The entries of a golden example other than the tag, as (key, value as JSON text).
fn payload_entries(text: &str) -> Vec<(String, String)> {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) else {
        panic!("an example is not an object: {text}")
    };
    object
        .into_iter()
        .filter(|(key, _)| key != super::TAG)
        .map(|(key, value)| (key, value.to_string()))
        .collect()
}

#[test]
fn every_variant_takes_the_fast_path_on_its_golden_example() {
    for (wire, text) in EXAMPLES.iter() {
        let fast = parse_tag_first(text)
            .unwrap_or_else(|| panic!("`{wire}` has no fast path or its example defers"));
        assert_eq!(fast.wire_type(), *wire);
        assert_eq!(Ok(fast), parse_derived(text), "{wire}");
    }
}

#[test]
fn every_variant_takes_the_fast_path_with_its_fields_shuffled_and_unknown_fields_added() {
    for (wire, text) in EXAMPLES.iter() {
        let mut entries = payload_entries(text);
        entries.reverse();
        entries.push((
            "zUnknown".to_owned(),
            r#"{"a":[1,{"b":null}],"type":"x"}"#.to_owned(),
        ));
        let frame = frame(Some(&format!("{wire:?}")), 0, &entries, ",");
        let fast = parse_tag_first(&frame).unwrap_or_else(|| panic!("deferred: {frame}"));
        assert_eq!(Ok(fast), parse_derived(&frame), "{frame}");
    }
}

#[test]
fn frames_that_must_defer_do() {
    let deferred = [
        // The tag is not first.
        r#"{"serverId":"s","type":"join_server"}"#,
        // A second tag, equal or not (the derived path refuses both).
        r#"{"type":"join_server","serverId":"s","type":"join_server"}"#,
        r#"{"type":"keepalive","type":"typing"}"#,
        // The tag is not a string, or names no client variant.
        r#"{"type":3,"serverId":"s"}"#,
        r#"{"type":null}"#,
        r#"{"type":"teleport"}"#,
        r#"{"type":"connected"}"#,
        // A repeated field (the value pass keeps the last one).
        r#"{"type":"join_server","serverId":"a","serverId":"b"}"#,
        // Not an object, not JSON, trailing text, a missing or wrongly typed field.
        r#"["type","keepalive"]"#,
        r#"{"type":"keepalive""#,
        r#"{"type":"keepalive"} x"#,
        r#"{"type":"join_server"}"#,
        r#"{"type":"join_server","serverId":7}"#,
        "",
    ];
    for frame in deferred {
        assert_eq!(parse_tag_first(frame), None, "{frame}");
    }
}

#[test]
fn escaped_tags_and_keys_read_as_the_derived_path_reads_them() {
    let frames = [
        r#"{"type":"keep\u0061live"}"#,
        r#"{"\u0074ype":"join_server","server\u0049d":"s\u00e9"}"#,
        r#"{"type":"offer","targetUserId":"b","sdp":{"type":"offer","sdp":"v=0\r\n"},"\u0066romUserId":"spoof"}"#,
    ];
    for frame in frames {
        let fast = parse_tag_first(frame).unwrap_or_else(|| panic!("deferred: {frame}"));
        assert_eq!(Ok(fast), parse_derived(frame), "{frame}");
    }
}

/// Writes an object: the tag (its JSON text) at `tag_at` among `entries`, or no tag.
fn frame(
    tag: Option<&str>,
    tag_at: usize,
    entries: &[(String, String)],
    separator: &str,
) -> String {
    let mut parts: Vec<String> = entries
        .iter()
        .map(|(key, value)| format!("{}:{value}", Value::String(key.clone())))
        .collect();
    if let Some(tag) = tag {
        parts.insert(tag_at.min(parts.len()), format!(r#""type":{tag}"#));
    }
    format!("{{{}}}", parts.join(separator))
}

/// Any JSON value, nested up to three levels, as text.
fn any_json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1.0e6f64..1.0e6).prop_map(Value::from),
        "[a-z\u{e9}\"\\\\\n ]{0,8}".prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-zA-Z]{1,6}|type|sdp|candidate", inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    });
    prop_oneof![
        4 => value.prop_map(|value| value.to_string()),
        1 => Just("-0".to_owned()),
        1 => Just("1e400".to_owned()),
        1 => Just(r#""\u00e9\ud83d\ude00""#.to_owned()),
    ]
}

/// What is done to one field of the example.
#[derive(Debug, Clone)]
enum FieldEdit {
    Keep,
    Drop,
    Replace(String),
    Repeat(String),
}

fn field_edit() -> impl Strategy<Value = FieldEdit> {
    prop_oneof![
        12 => Just(FieldEdit::Keep),
        1 => Just(FieldEdit::Drop),
        1 => any_json().prop_map(FieldEdit::Replace),
        1 => any_json().prop_map(FieldEdit::Repeat),
    ]
}

/// The tag's value: mostly the example's own wire type.
fn tag_value(wire: &'static str) -> impl Strategy<Value = Option<String>> {
    let escaped = format!(r#""\u{:04x}{}""#, u32::from(wire.as_bytes()[0]), &wire[1..]);
    prop_oneof![
        12 => Just(Some(format!("{wire:?}"))),
        1 => Just(Some(escaped)),
        1 => prop::sample::select(ClientEnvelope::WIRE_TYPES).prop_map(|w| Some(format!("{w:?}"))),
        1 => Just(Some(r#""teleport""#.to_owned())),
        1 => Just(Some("3".to_owned())),
        1 => Just(None),
    ]
}

#[derive(Debug)]
struct Case {
    text: String,
    /// Only shuffled fields and new unknown keys, the tag first and the example's own: the fast
    /// path must take it.
    must_take: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (0..ClientEnvelope::WIRE_TYPES.len()).prop_flat_map(|index| {
        let (wire, text) = &EXAMPLES[index];
        let entries = payload_entries(text);
        let count = entries.len();
        (
            Just(*wire),
            Just(entries),
            tag_value(wire),
            prop_oneof![3 => Just(0usize), 1 => 1..count + 6],
            prop::collection::vec(field_edit(), count),
            prop::collection::vec(("x[a-zA-Z]{0,6}", any_json()), 0..4),
            prop::option::weighted(0.1, (0..count + 6, tag_value(wire))),
            prop::collection::vec(any::<u16>(), count + 8),
            prop::sample::select(vec![",", " ,\n\t"]),
        )
            .prop_map(
                |(wire, entries, tag, tag_at, edits, unknown, second_tag, order, separator)| {
                    let mut must_take = tag.as_deref() == Some(&format!("{wire:?}")) && tag_at == 0;
                    let mut out = Vec::new();
                    for ((key, value), edit) in entries.into_iter().zip(edits) {
                        match edit {
                            FieldEdit::Keep => out.push((key, value)),
                            FieldEdit::Drop => must_take = false,
                            FieldEdit::Replace(other) => {
                                must_take = false;
                                out.push((key, other));
                            }
                            FieldEdit::Repeat(other) => {
                                must_take = false;
                                out.push((key.clone(), value));
                                out.push((key, other));
                            }
                        }
                    }
                    let mut known: Vec<String> = out.iter().map(|(key, _)| key.clone()).collect();
                    for (key, value) in unknown {
                        // A new key with a valid value (`1e400` is not one).
                        must_take &=
                            !known.contains(&key) && serde_json::from_str::<Value>(&value).is_ok();
                        known.push(key.clone());
                        out.push((key, value));
                    }
                    let mut keyed: Vec<(u16, (String, String))> =
                        order.into_iter().zip(out).collect();
                    keyed.sort_by_key(|(rank, _)| *rank);
                    let mut out: Vec<(String, String)> =
                        keyed.into_iter().map(|(_, entry)| entry).collect();
                    if let Some((at, second)) = second_tag {
                        must_take = false;
                        let second = second.unwrap_or_else(|| "null".to_owned());
                        out.insert(at.min(out.len()), ("type".to_owned(), second));
                    }
                    let text = frame(tag.as_deref(), tag_at, &out, separator);
                    Case { text, must_take }
                },
            )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn the_fast_path_gives_the_derived_envelope_or_defers(case in case()) {
        let derived = parse_derived(&case.text);
        match parse_tag_first(&case.text) {
            Some(fast) => prop_assert_eq!(Ok(fast), derived, "{}", case.text),
            None => prop_assert!(!case.must_take, "deferred a plain frame: {}", case.text),
        }
    }
}

#[test]
fn skipped_unknown_fields_are_parsed_as_fully_as_the_derived_path_parses_them() {
    for value in [
        "1e400",
        r#""\ud800""#,
        r#"[1,{"a":[-1e999]}]"#,
        r#"{"\udc00":1}"#,
    ] {
        let frame = format!(r#"{{"type":"join_server","serverId":"s","x":{value}}}"#);
        assert_eq!(parse_tag_first(&frame), None, "{frame}");
        assert!(parse_derived(&frame).is_err(), "{frame}");
    }
}

/// [`super::Strict`] reads the payload's own skipped fields fully; a skipped field deeper down
/// would be read leniently. So no object nested in a client payload may drop unknown fields.
#[test]
fn every_nested_object_keeps_unknown_fields() {
    fn walk(schema: &Value, depth: usize, path: &str, bad: &mut Vec<String>) {
        match schema {
            Value::Object(map) => {
                let is_object = map.get("type") == Some(&Value::from("object"))
                    || map.contains_key("properties");
                if is_object && depth > 0 && !map.contains_key("additionalProperties") {
                    bad.push(path.to_owned());
                }
                for (key, child) in map {
                    let depth = if key == "properties" {
                        depth + 1
                    } else {
                        depth
                    };
                    walk(child, depth, &format!("{path}/{key}"), bad);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, depth, &format!("{path}/{i}"), bad);
                }
            }
            _ => {}
        }
    }
    let schema = crate::catalog::schema_for::<ClientEnvelope>();
    let defs = schema.get("$defs").cloned().unwrap_or_default();
    let mut bad = Vec::new();
    walk(&schema["oneOf"], 0, "oneOf", &mut bad);
    // A `$defs` entry is only reached through a property, so it is nested.
    walk(&defs, 1, "$defs", &mut bad);
    assert!(bad.is_empty(), "nested objects without `extra`: {bad:?}");
    // The walk does see objects that skip unknown fields: the payloads themselves, some of which
    // have no `extra`.
    walk(&schema["oneOf"], 1, "oneOf", &mut bad);
    assert!(!bad.is_empty());
}
