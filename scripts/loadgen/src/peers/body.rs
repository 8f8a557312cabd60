//! The signal body every adapter carries: `SEQ:SENT_AT_US:` padded with `x` to a fixed size, so
//! the same bytes travel through every server and the receiver can check order and latency.
//! Owns only the body's text; never the envelope around it (that is each adapter's job).

/// Builds a body for signal `seq` sent at `sent_at_us` (on the generator's clock), padded to
/// `size` bytes (never shorter than the two numbers need).
pub fn encode(seq: u64, sent_at_us: u64, size: usize) -> String {
    let mut body = format!("{seq}:{sent_at_us}:");
    let pad = size.saturating_sub(body.len());
    body.extend(std::iter::repeat_n('x', pad));
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
    fn a_body_smaller_than_its_numbers_is_not_truncated() {
        assert_eq!(decode(&encode(7, 8, 1)), Ok((7, 8)));
    }

    #[test]
    fn foreign_text_is_refused() {
        assert!(decode("v=0\r\no=- 1 2 IN IP4 127.0.0.1").is_err());
        assert!(decode("12:").is_err());
    }
}
