//! What became of a targeted envelope sent through the backplane.
//!
//! Owns: [`ForwardOutcome`] and [`ForwardReceipt`] (the reading of `forward.lua`'s answer:
//! -1 forbidden, 0 nobody, n receivers).
//!
//! Never: sends anything, retries (delivery is at-most-once).

use tokio::sync::oneshot;

use super::ClusterError;
use super::scripts::parse_int;

/// What became of a forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardOutcome {
    /// Published to this many other nodes' subscribers.
    Delivered(u32),
    /// No other node holds the target (`TARGET_NOT_FOUND` when it is not local either).
    TargetNotFound,
    /// The forwarding policy refuses it (`FORBIDDEN`).
    Forbidden,
    /// Redis is unreachable (`UNAVAILABLE`).
    Unavailable,
    /// The target is only on this node: delivered locally, Redis never asked.
    LocalOnly,
}

impl ForwardOutcome {
    /// Reads `forward.lua`'s answer.
    pub fn from_reply(reply: Result<redis::Value, ClusterError>) -> Self {
        match reply {
            Ok(value) => match parse_int(&value) {
                Ok(n) if n < 0 => Self::Forbidden,
                Ok(0) => Self::TargetNotFound,
                Ok(n) => Self::Delivered(u32::try_from(n).unwrap_or(u32::MAX)),
                Err(_) => Self::Unavailable,
            },
            Err(_) => Self::Unavailable,
        }
    }
}

/// A forward; await [`ForwardReceipt::outcome`] for the result.
pub struct ForwardReceipt(Receipt);

enum Receipt {
    Ready(ForwardOutcome),
    Pending(oneshot::Receiver<Result<redis::Value, ClusterError>>),
}

impl ForwardReceipt {
    pub(super) fn ready(outcome: ForwardOutcome) -> Self {
        Self(Receipt::Ready(outcome))
    }

    pub(super) fn pending(rx: oneshot::Receiver<Result<redis::Value, ClusterError>>) -> Self {
        Self(Receipt::Pending(rx))
    }

    /// The result, once the publisher ran the forward (at once when Redis was not needed).
    pub async fn outcome(self) -> ForwardOutcome {
        match self.0 {
            Receipt::Ready(outcome) => outcome,
            Receipt::Pending(rx) => match rx.await {
                Ok(reply) => ForwardOutcome::from_reply(reply),
                Err(_) => ForwardOutcome::Unavailable,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    #[test]
    fn replies_read_as_outcomes() {
        assert_eq!(
            ForwardOutcome::from_reply(Ok(Value::Int(-1))),
            ForwardOutcome::Forbidden
        );
        assert_eq!(
            ForwardOutcome::from_reply(Ok(Value::Int(0))),
            ForwardOutcome::TargetNotFound
        );
        assert_eq!(
            ForwardOutcome::from_reply(Ok(Value::Int(2))),
            ForwardOutcome::Delivered(2)
        );
        assert_eq!(
            ForwardOutcome::from_reply(Ok(Value::Nil)),
            ForwardOutcome::Unavailable
        );
        assert_eq!(
            ForwardOutcome::from_reply(Err(ClusterError::Unavailable)),
            ForwardOutcome::Unavailable
        );
    }
}
