//! Every golden example, parsed through the typify-generated types and serialized back, equals
//! the original JSON: the schemas alone describe the wire completely, unknown forwarded fields
//! included.

use std::path::Path;

#[test]
fn every_golden_example_round_trips_through_the_generated_types() {
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(schemas.join("index.json")).expect("schemas/index.json"),
    )
    .expect("index.json is JSON");
    let mut failures = Vec::new();
    let mut checked = 0;
    for entry in index["types"].as_array().expect("types array") {
        let name = entry["name"].as_str().expect("name");
        let dir = schemas.join("examples").join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).expect("readable example");
            let original: serde_json::Value = serde_json::from_str(&text).expect("example is JSON");
            match signalbox_bindings::roundtrip(name, &text) {
                None => failures.push(format!("{name}: no generated type")),
                Some(Err(e)) => failures.push(format!("{}: does not parse: {e}", path.display())),
                Some(Ok(back)) if back != original => failures.push(format!(
                    "{}: changed by the round trip:\n  was {original}\n  now {back}",
                    path.display()
                )),
                Some(Ok(_)) => checked += 1,
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 60, "only {checked} examples checked");
}

#[test]
fn the_generated_union_checks_the_tag() {
    // `offer` and `answer` share a payload shape; only the tag tells them apart.
    let offer = r#"{"type":"offer","targetUserId":"u2","sdp":{"type":"offer","sdp":"v=0"}}"#;
    let parsed: signalbox_bindings::client_envelope::ClientEnvelope =
        serde_json::from_str(offer).expect("offer parses");
    assert!(matches!(
        parsed,
        signalbox_bindings::client_envelope::ClientEnvelope::OfferEnvelope { .. }
    ));
    let unknown = r#"{"type":"no_such_type","targetUserId":"u2"}"#;
    assert!(
        serde_json::from_str::<signalbox_bindings::client_envelope::ClientEnvelope>(unknown)
            .is_err()
    );
}
