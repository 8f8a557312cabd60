//! The writing half of one socket: drains the hub's outbound queue into the socket, sends the
//! heartbeat pings, and ends with a close frame.
//!
//! Every socket operation is bounded by `realtime.writeTimeoutMs`: a peer that stops reading
//! cannot pin the task (its queue overflows and the hub closes it with 4008; if even the close
//! frame cannot be written in time, the socket is simply dropped).

use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{Sink, SinkExt};
use signalbox_protocol::CloseCode;
use tokio::time::{MissedTickBehavior, interval, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::handshake::WsStream;

use crate::hub::{Frame, OutboundReceiver};
use crate::transport::metrics::TransportMetrics;

/// Frames taken from the queue per socket flush.
const BATCH: usize = 64;

/// How the writer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterEnd {
    /// A close frame with this code was sent (or attempted).
    Closed(CloseCode),
    /// The socket failed or a write timed out.
    SocketGone,
}

/// Timings of one writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    /// Interval between pings.
    pub ping_every: Duration,
    /// Longest one socket operation may take.
    pub write_timeout: Duration,
}

/// Runs until the hub asks for a close or the socket fails; hands the sink back (the reader may
/// need the whole socket again to drain it after a close).
pub async fn run(
    mut sink: SplitSink<WsStream, Message>,
    outbound: OutboundReceiver,
    settings: WriterSettings,
    metrics: &TransportMetrics,
) -> (WriterEnd, SplitSink<WsStream, Message>) {
    let end = drive(&mut sink, outbound, settings, metrics).await;
    (end, sink)
}

async fn drive(
    sink: &mut SplitSink<WsStream, Message>,
    mut outbound: OutboundReceiver,
    settings: WriterSettings,
    metrics: &TransportMetrics,
) -> WriterEnd {
    let mut ping = interval(settings.ping_every);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ping.tick().await;
    let mut batch: Vec<Frame> = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            close = outbound.recv_many(&mut batch, BATCH) => {
                if let Some(code) = close {
                    metrics.close(code);
                    let frame = close_message(code, code.reason().to_owned());
                    let _ = timeout(settings.write_timeout, sink.send(frame)).await;
                    return WriterEnd::Closed(code);
                }
                for frame in batch.drain(..) {
                    // The frame's bytes are shared, not copied, with every recipient.
                    let message = Message::Text(frame.to_text());
                    if !bounded(settings.write_timeout, sink.feed(message)).await {
                        return WriterEnd::SocketGone;
                    }
                }
                if !bounded(settings.write_timeout, sink.flush()).await {
                    return WriterEnd::SocketGone;
                }
            }
            _ = ping.tick() => {
                if !bounded(settings.write_timeout, sink.send(Message::Ping(Default::default()))).await {
                    return WriterEnd::SocketGone;
                }
            }
        }
    }
}

/// Awaits one socket operation for at most `limit`; `false` when it failed or took too long.
async fn bounded<E>(limit: Duration, operation: impl Future<Output = Result<(), E>>) -> bool {
    matches!(timeout(limit, operation).await, Ok(Ok(())))
}

/// Sends a close frame on a socket that never joined the hub (refused version).
pub async fn close_now<S>(sink: &mut S, code: CloseCode, reason: String, limit: Duration)
where
    S: Sink<Message> + Unpin,
{
    let _ = timeout(limit, sink.send(close_message(code, reason))).await;
}

fn close_message(code: CloseCode, reason: String) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.code().into(),
        reason: reason.into(),
    }))
}
