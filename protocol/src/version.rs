//! The protocol version: the crate's own semver, so it cannot drift from the published crate.
//!
//! `connected.protocolVersion` carries it; a client may ask for a major version with `?v=MAJOR` at
//! upgrade and is refused with close code [`CloseCode::UnsupportedVersion`](crate::CloseCode) when
//! the server speaks another. Additive changes are minor versions, renames and removals major
//! ones, each recorded in CHANGELOG.md.

/// The protocol's semantic version, e.g. `"0.1.0"`.
pub const PROTOCOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The major component of [`PROTOCOL_VERSION`], the only part a client negotiates.
pub const PROTOCOL_MAJOR: u32 = parse_major(PROTOCOL_VERSION);

const fn parse_major(version: &str) -> u32 {
    let bytes = version.as_bytes();
    let mut major = 0u32;
    let mut i = 0;
    while i < bytes.len() && bytes[i] != b'.' {
        major = major * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    major
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_is_the_first_component() {
        assert_eq!(parse_major("12.3.4"), 12);
        assert_eq!(parse_major("0.1.0"), 0);
        assert!(PROTOCOL_VERSION.starts_with(&format!("{PROTOCOL_MAJOR}.")));
    }
}
