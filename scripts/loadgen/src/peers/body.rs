//! The signal body every adapter carries: `SEQ:SENT_AT_US:` padded with `x` to a fixed size, so
//! the same bytes travel through every server and the receiver can check order and latency.
//! Owns only the body's text; never the envelope around it (that is each adapter's job).

use std::fmt::Write as _;

/// The padding, copied in one piece for bodies up to its length.
const PADDING: &str = concat!(
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
);

/// Builds a body for signal `seq` sent at `sent_at_us` (on the generator's clock), padded to
/// `size` bytes (never shorter than the two numbers need).
pub fn encode(seq: u64, sent_at_us: u64, size: usize) -> String {
    let mut body = String::with_capacity(size.max(42));
    // `write!` to a `String` cannot fail.
    let _ = write!(body, "{seq}:{sent_at_us}:");
    let pad = size.saturating_sub(body.len());
    // One copy of the padding rather than a `char` at a time (it showed in the generator's
    // profile, which runs on one core and must not be the slowest part of the measurement).
    body.push_str(&PADDING[..pad.min(PADDING.len())]);
    for _ in PADDING.len()..pad {
        body.push('x');
    }
    body
}

/// The `(seq, sent_at_us)` of a body made by [`encode`].
pub fn decode(body: &str) -> Result<(u64, u64), String> {
    let mut parts = body.splitn(3, ':');
    let mut number = |what: &str| {
        parts
            .next()
            .and_then(|part| part.parse::<u64>().ok())
            .ok_or_else(|| format!("signal body without a {what}: {:.40}", body))
    };
    let seq = number("sequence number")?;
    let sent_at = number("send time")?;
    Ok((seq, sent_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_has_the_requested_size_and_decodes_to_its_numbers() {
        let body = encode(42, 1_234_567, 300);
        assert_eq!(body.len(), 300);
        assert_eq!(decode(&body), Ok((42, 1_234_567)));
    }

    #[test]
    fn a_body_longer_than_the_padding_constant_has_the_requested_size() {
        let body = encode(3, 4, 2000);
        assert_eq!(body.len(), 2000);
        assert!(body[4..].bytes().all(|b| b == b'x'));
        assert_eq!(decode(&body), Ok((3, 4)));
    }

    #[test]
    fn a_body_smaller_than_its_numbers_is_not_truncated() {
        assert_eq!(decode(&encode(7, 8, 1)), Ok((7, 8)));
    }

    #[test]
    fn foreign_text_is_refused() {
        assert!(decode("v=0\r\no=- 1 2 IN IP4 127.0.0.1").is_err());
        assert!(decode("12:").is_err());
    }
}
