//! The side-by-side benchmark (`scripts/bench --peers`): one load generator, one adapter per
//! signaling server (signalbox, matchbox_server, the PeerJS server, the bare relay), the same
//! workloads against each. This module owns the adapter dispatch; the adapters own their wire
//! shapes and never measure anything; the workloads never know a wire shape.

mod body;
mod matchbox;
mod peerjs;
mod relay;
pub mod report;
mod signalbox;
pub mod workloads;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Sink, Stream};

/// The servers the adapters speak to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// signalbox's envelopes (`offer` between two members of one chat server).
    Signalbox,
    /// matchbox_server 0.15: `IdAssigned` / `NewPeer` / `Signal`.
    Matchbox,
    /// The PeerJS server 1.0.2: `OPEN`, `OFFER` with `src`/`dst`, `HEARTBEAT`.
    Peerjs,
    /// `bench-relay`: `DST\nBODY` in, `SRC\nBODY` out.
    Relay,
}

/// What one server frame means to the harness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A signal from peer `from` carrying `body` as it was sent.
    Signal {
        /// The sender's id as the server names it.
        from: String,
        /// The signal's text.
        body: String,
    },
    /// The protocol's own bookkeeping (id assignment, peers arriving, greetings).
    Control,
}

/// One connected, registered peer.
pub struct Peer {
    /// The id other peers address it by.
    pub id: String,
    /// The sending half.
    pub sink: Sink,
    /// The receiving half.
    pub stream: Stream,
}

/// Where a peer registers.
pub struct Registration<'a> {
    /// Its name (the id, where the protocol lets the client choose it).
    pub name: &'a str,
    /// Its room (matchbox's path; the others have none).
    pub room: &'a str,
    /// Whether it will exchange signals (signalbox then joins the shared chat server).
    pub signals: bool,
}

impl Protocol {
    /// Connects from `127.0.0.{source}` to the server at `addr` (`IP:port`) and registers.
    pub async fn connect(
        self,
        addr: &str,
        source: u8,
        at: &Registration<'_>,
        server_id: &str,
    ) -> Result<Peer, String> {
        match self {
            Self::Signalbox => {
                signalbox::handshake(addr, source, at.name, at.signals.then_some(server_id)).await
            }
            Self::Matchbox => matchbox::handshake(addr, source, at.room).await,
            Self::Peerjs => peerjs::handshake(addr, source, at.name).await,
            Self::Relay => relay::handshake(addr, source, at.name).await,
        }
    }

    /// The text frame that sends a signal carrying `body` to peer `to`.
    pub fn signal(self, to: &str, body: &str) -> String {
        match self {
            Self::Signalbox => signalbox::signal(to, body),
            Self::Matchbox => matchbox::signal(to, body),
            Self::Peerjs => peerjs::signal(to, body),
            Self::Relay => relay::signal(to, body),
        }
    }

    /// What a text frame from the server means; an error when the adapter cannot parse it or
    /// the server reports a failure.
    pub fn parse(self, text: &str) -> Result<Frame, String> {
        match self {
            Self::Signalbox => signalbox::parse(text),
            Self::Matchbox => matchbox::parse(text),
            Self::Peerjs => peerjs::parse(text),
            Self::Relay => relay::parse(text),
        }
    }

    /// A keepalive frame for long idle holds, where the protocol needs one.
    pub fn keepalive(self) -> Option<String> {
        match self {
            Self::Peerjs => Some(peerjs::heartbeat()),
            _ => None,
        }
    }
}

/// The next text frame on `stream` (ping/pong and binary frames skipped).
pub async fn next_text(stream: &mut Stream) -> Result<String, String> {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Close(frame))) => return Err(format!("closed by server: {frame:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("receive: {e}")),
            None => return Err("connection ended".into()),
        }
    }
}
