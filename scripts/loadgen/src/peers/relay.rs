//! The bare relay's adapter (`bench-relay`, this package's second binary): a client connects to
//! `/NAME` and is greeted `hello NAME`; it sends `DST\nBODY` and its partner receives
//! `SRC\nBODY`. The framing is deliberately trivial: the relay is the practical limit.

use futures_util::StreamExt;

use super::{Frame, Peer, next_text};
use crate::client;

/// The greeting's prefix.
pub const HELLO: &str = "hello ";

/// The WebSocket URL for `name` on `addr` (`IP:port`).
pub fn url(addr: &str, name: &str) -> String {
    format!("ws://{addr}/{name}")
}

/// A signal to `to` carrying `body`.
pub fn signal(to: &str, body: &str) -> String {
    format!("{to}\n{body}")
}

/// What one relay frame means.
pub fn parse(text: &str) -> Result<Frame, String> {
    if text.starts_with(HELLO) {
        return Ok(Frame::Control);
    }
    match text.split_once('\n') {
        Some((from, body)) if !from.is_empty() => Ok(Frame::Signal {
            from: from.to_owned(),
            body: body.to_owned(),
        }),
        _ => Err(format!("not a relay frame: {text:.80}")),
    }
}

/// Connects as `name` and waits for the greeting.
pub async fn handshake(addr: &str, source: u8, name: &str) -> Result<Peer, String> {
    let (sink, mut stream) = client::open_socket(&url(addr, name), source).await?.split();
    let first = next_text(&mut stream).await?;
    if first.strip_prefix(HELLO) != Some(name) {
        return Err(format!("expected `{HELLO}{name}`, got {first:.80}"));
    }
    Ok(Peer {
        id: name.to_owned(),
        sink,
        stream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_FRAME: &str = include_str!("../../fixtures/relay/hello.txt");
    const SIGNAL: &str = include_str!("../../fixtures/relay/signal.txt");

    #[test]
    fn the_greeting_is_control_and_a_signal_names_its_sender() {
        assert_eq!(parse(HELLO_FRAME), Ok(Frame::Control));
        assert_eq!(
            parse(SIGNAL),
            Ok(Frame::Signal {
                from: "alice".into(),
                body: "12:345:xxxx".into()
            })
        );
        assert!(parse("no newline").is_err());
        assert!(parse("\nbody without sender").is_err());
    }

    #[test]
    fn the_frame_sent_names_the_destination() {
        assert_eq!(signal("bob", "1:2:x"), "bob\n1:2:x");
    }
}
