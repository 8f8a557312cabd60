//! `docs/configuration.md`: the variables reference ([`crate::config::reference`]) followed by
//! the gauges of bounded structures ([`crate::telemetry::gauges::reference_section`]).
//!
//! Owns putting the two together and the test that keeps the committed file current; never
//! renders either part itself (so `config` stays a leaf that knows nothing of the gauges).

/// The whole of `docs/configuration.md`.
pub fn configuration_markdown() -> String {
    let mut out = crate::config::reference::markdown();
    out.push_str(&crate::telemetry::gauges::reference_section());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_reference_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
        let generated = configuration_markdown();
        if std::env::var_os("SIGNALBOX_BLESS").is_some() {
            std::fs::write(path, &generated).expect("write docs/configuration.md");
            return;
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/configuration.md is stale: run `SIGNALBOX_BLESS=1 cargo test -p signalbox \
             configuration_reference` and commit it"
        );
    }
}
