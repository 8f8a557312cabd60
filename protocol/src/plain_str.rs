//! Serializing long strings without serde_json's per-byte escape loop.
//!
//! Owns: [`serialize_option`], a `serialize_with` helper for long forwarded strings (an SDP, an
//! ICE candidate line). serde_json escapes a string one byte at a time through a lookup table;
//! for a 300-byte SDP that loop was the largest user-space item of a forward. Here the string is
//! scanned in wide chunks (the compiler vectorizes the check) for the only bytes JSON makes us
//! escape (below 0x20, `"` and `\`): a clean chunk is copied whole, a chunk with such a byte is
//! escaped byte by byte exactly as serde_json does (`\n`, `\r`, `\t`, `\b`, `\f`, `\"`, `\\`,
//! `\u00xx` in lower-case hex), so an SDP with its CRLF line ends takes the same path. The
//! quoted, escaped text is then written through serde_json's raw-value path: byte for byte what
//! serde_json would have written.
//!
//! Must never: change a byte of the output (the golden files pin it), change a schema or a
//! TypeScript type (it is a `serialize_with` only), or be used for a value that is not a string.
//!
//! The raw-value path is serde_json's (the `raw_value` feature): with serde_json's writer the
//! text is copied as is; with serde_json's `Value` serializer (`to_value`) it is parsed back
//! into the same string. Other data formats are not used for envelopes; for a serializer that is
//! not human-readable the helper takes the normal path.

use std::cell::RefCell;

use serde::Serializer;
use serde::ser::SerializeStruct;

/// serde_json's private name for a raw JSON value (`serde_json::value::RawValue` serializes as
/// a struct of this name with one field of this name; its `raw_value` feature writes that field
/// without escaping).
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Strings shorter than this take the normal path: the scan and the copy do not pay there.
pub const MIN_LEN: usize = 64;

/// Bytes checked per step; wide enough for the compiler to use vector registers.
const CHUNK: usize = 32;

/// The scratch buffer's capacity kept between strings: after a longer one it is freed.
const QUOTED_KEPT_BYTES: usize = 16 * 1024;

thread_local! {
    /// The quoted, escaped copy of the string being written, reused so a delivery allocates
    /// nothing for it.
    static QUOTED: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Whether serde_json would write `text` without any escape (no byte below 0x20, no `"`, no
/// `\`; every other byte, UTF-8 included, is written as is).
pub fn needs_no_escape(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut chunks = bytes.chunks_exact(CHUNK);
    for chunk in &mut chunks {
        if is_dirty(chunk) {
            return false;
        }
    }
    !chunks.remainder().iter().any(|&b| must_escape(b))
}

fn is_dirty(chunk: &[u8]) -> bool {
    chunk.iter().fold(false, |dirty, &b| dirty | must_escape(b))
}

fn must_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// Appends `text` to `out` as the contents of a JSON string, escaped as serde_json escapes.
pub fn push_escaped(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    // Start of the run of bytes not yet copied; every escaped byte is ASCII, so every split
    // falls on a character boundary.
    let mut run = 0;
    let mut escape_at = |out: &mut String, at: usize| {
        out.push_str(&text[run..at]);
        push_escape(out, bytes[at]);
        run = at + 1;
    };
    let mut at = 0;
    while at + CHUNK <= bytes.len() {
        if is_dirty(&bytes[at..at + CHUNK]) {
            for i in (at..at + CHUNK).filter(|&i| must_escape(bytes[i])) {
                escape_at(out, i);
            }
        }
        at += CHUNK;
    }
    for i in (at..bytes.len()).filter(|&i| must_escape(bytes[i])) {
        escape_at(out, i);
    }
    out.push_str(&text[run..]);
}

fn push_escape(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match byte {
        b'"' => out.push_str("\\\""),
        b'\\' => out.push_str("\\\\"),
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        b'\t' => out.push_str("\\t"),
        0x08 => out.push_str("\\b"),
        0x0c => out.push_str("\\f"),
        _ => {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
}

/// `serialize_with` for an `Option<String>` that is skipped when `None`: a long string is
/// written without the per-byte escape loop, everything else as serde would.
pub fn serialize_option<S: Serializer>(
    value: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(text) => serialize_str(text, serializer),
        None => serializer.serialize_none(),
    }
}

/// Writes one string (see the module docs).
pub fn serialize_str<S: Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    if text.len() < MIN_LEN || !serializer.is_human_readable() {
        return serializer.serialize_str(text);
    }
    QUOTED.with(|quoted| {
        let Ok(mut quoted) = quoted.try_borrow_mut() else {
            return serializer.serialize_str(text);
        };
        quoted.clear();
        quoted.reserve(text.len() + 2);
        quoted.push('"');
        push_escaped(&mut quoted, text);
        quoted.push('"');
        let mut raw = serializer.serialize_struct(RAW_VALUE_TOKEN, 1)?;
        let written = raw.serialize_field(RAW_VALUE_TOKEN, quoted.as_str());
        if quoted.capacity() > QUOTED_KEPT_BYTES {
            *quoted = String::new();
        }
        written?;
        raw.end()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Holder {
        #[serde(serialize_with = "serialize_option")]
        text: Option<String>,
    }

    fn both_ways(text: &str) -> (String, String) {
        let fast = serde_json::to_string(&Holder {
            text: Some(text.to_owned()),
        })
        .expect("serializes");
        let plain = serde_json::to_string(&serde_json::json!({ "text": text })).expect("json");
        (fast, plain)
    }

    fn sdp_like(len: usize) -> String {
        let line = "a=candidate:1 1 udp 2130706431 192.0.2.1 54400 typ host generation 0 ";
        line.chars().cycle().take(len).collect()
    }

    #[test]
    fn clean_long_strings_are_byte_identical_to_serde_json() {
        for len in [MIN_LEN, MIN_LEN + 1, 100, 300, 1000, 4096] {
            let (fast, plain) = both_ways(&sdp_like(len));
            assert_eq!(fast, plain, "length {len}");
        }
        let unicode = "é€😀 ".repeat(40);
        let (fast, plain) = both_ways(&unicode);
        assert_eq!(fast, plain);
    }

    #[test]
    fn every_byte_that_needs_escaping_takes_the_escaping_path() {
        let base = sdp_like(300);
        let escaped: Vec<char> = (0u8..0x20).map(char::from).chain(['"', '\\']).collect();
        for ch in escaped {
            for at in [0, 31, 32, 150, 299] {
                let mut text = base.clone();
                text.replace_range(at..=at, ch.encode_utf8(&mut [0; 4]));
                assert!(!needs_no_escape(&text), "{:#x} at {at}", ch as u32);
                let (fast, plain) = both_ways(&text);
                assert_eq!(fast, plain);
                let back: serde_json::Value = serde_json::from_str(&fast).expect("valid JSON");
                assert_eq!(back["text"], text.as_str());
            }
        }
        // Bytes that serde_json leaves alone: DEL, '/', and everything non-ASCII.
        assert!(needs_no_escape(&format!("{}\u{7f}/\u{80}", sdp_like(300))));
    }

    #[test]
    fn escaped_strings_are_byte_identical_to_serde_json() {
        let sdp = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
                   a=group:BUNDLE 0\r\na=msid-semantic: WMS \"stream\" \\ end\r\n";
        let dense: String = (0u8..0x20).map(char::from).cycle().take(200).collect();
        let mixed = format!("{dense}\"é\\{}\u{1}", sdp_like(100));
        for text in [sdp.repeat(4).as_str(), dense.as_str(), mixed.as_str()] {
            for len in [MIN_LEN, 65, 95, 96, 97, text.len()] {
                let cut: String = text.chars().take(len).collect();
                let (fast, plain) = both_ways(&cut);
                assert_eq!(fast, plain, "length {len}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_string_is_byte_identical_to_serde_json(
            text in "(\\PC|[\\x00-\\x1f\"\\\\]){0,300}",
        ) {
            let (fast, plain) = both_ways(&text);
            proptest::prop_assert_eq!(fast, plain);
        }
    }

    #[test]
    fn short_strings_none_and_to_value_read_the_same() {
        let (fast, plain) = both_ways("v=0");
        assert_eq!(fast, plain);
        let none = serde_json::to_string(&Holder { text: None }).expect("serializes");
        assert_eq!(none, r#"{"text":null}"#);
        let long = sdp_like(300);
        let value = serde_json::to_value(Holder {
            text: Some(long.clone()),
        })
        .expect("to_value");
        assert_eq!(value, serde_json::json!({ "text": long }));
    }
}
