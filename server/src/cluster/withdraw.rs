//! Withdrawals of access across nodes (issue 13): a ban, a kick, a deleted server or changed
//! rules on one node take the affected connections out on every node.
//!
//! Owns: the order's payload on the wire (after the [`super::wire`] header of a
//! [`Kind::Withdraw`](super::wire::Kind::Withdraw) message: one scope byte, then the reason's
//! wire name), [`WithdrawGlue`] (the [`WithdrawRemote`] hook: publishes on the withdraw
//! channel every node subscribes to), [`WithdrawSlot`] (hands received orders to the attached
//! [`WithdrawInbound`]) and [`WithdrawSink`] (takes `Withdraw` out of the node's inbound
//! traffic).
//!
//! Why one channel for all nodes, not the server's: a node holding only a viewer (or an SSE
//! session not yet joined) of the server is on no server channel, and withdrawals are rare.
//! Ordering: the publishing node sends the order on its one ordered publisher, so a node
//! receives it before any broadcast the same node published after the withdrawal, and applies
//! a user's or everyone's withdrawal inline (a recheck asks the directory in a spawned task).
//!
//! Never: trusts anything but the order's fields (a recheck carries no decisions: each node
//! asks the directory), re-announces an order it received, or blocks the subscriber.
//! Delivery is at most once: a node that misses an order (Redis down) keeps those
//! connections until they leave or a later order reaches it (docs/cluster.md).

use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};
use signalbox_protocol::{AccessDeniedReason, ServerId, UserId};

use super::{Backplane, Inbound, Sink};
use crate::hub::withdraw_remote::{WithdrawInbound, WithdrawOrder, WithdrawRemote};

const SCOPE_USER: u8 = 1;
const SCOPE_EVERYONE: u8 = 2;
const SCOPE_RECHECK: u8 = 3;

/// The payload and user field of `order` on the wire.
pub fn encode(order: &WithdrawOrder) -> (Bytes, &str) {
    let (scope, reason, user) = match order {
        WithdrawOrder::User { user, reason } => (SCOPE_USER, Some(*reason), user.as_str()),
        WithdrawOrder::Everyone { reason } => (SCOPE_EVERYONE, Some(*reason), ""),
        WithdrawOrder::Recheck => (SCOPE_RECHECK, None, ""),
    };
    let name = reason.map(reason_name).unwrap_or_default();
    let mut out = BytesMut::with_capacity(1 + name.len());
    out.put_u8(scope);
    out.put_slice(name.as_bytes());
    (out.freeze(), user)
}

/// The order in a received message; `None` for anything this build does not know.
pub fn decode(user: &str, payload: &[u8]) -> Option<WithdrawOrder> {
    let (&scope, name) = payload.split_first()?;
    let reason = || reason_of(std::str::from_utf8(name).ok()?);
    match scope {
        SCOPE_USER if !user.is_empty() => Some(WithdrawOrder::User {
            user: UserId::from(user),
            reason: reason()?,
        }),
        SCOPE_EVERYONE => Some(WithdrawOrder::Everyone { reason: reason()? }),
        SCOPE_RECHECK => Some(WithdrawOrder::Recheck),
        _ => None,
    }
}

/// The reason's wire name (`access_denied.reason`).
fn reason_name(reason: AccessDeniedReason) -> String {
    match serde_json::to_value(reason) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

fn reason_of(name: &str) -> Option<AccessDeniedReason> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// The [`WithdrawRemote`] hook over one node's backplane.
pub struct WithdrawGlue {
    backplane: Arc<Backplane>,
}

impl WithdrawGlue {
    /// The hook over `backplane`.
    pub fn new(backplane: Arc<Backplane>) -> Self {
        Self { backplane }
    }
}

impl WithdrawRemote for WithdrawGlue {
    fn announce(&self, server: &ServerId, order: &WithdrawOrder) {
        let (payload, user) = encode(order);
        if let Err(error) = self.backplane.withdraw(server.as_str(), user, payload) {
            tracing::warn!(%error, "a withdrawal of access did not reach the other nodes");
        }
    }
}

/// Where received orders go: empty until `app` attaches `withdrawal` (before that no
/// connection exists here, so there is nothing to withdraw).
#[derive(Default, Clone)]
pub struct WithdrawSlot(Arc<OnceLock<Arc<dyn WithdrawInbound>>>);

impl WithdrawSlot {
    /// Attaches the local side (once; a second call is ignored).
    pub fn attach(&self, inbound: Arc<dyn WithdrawInbound>) {
        let _ = self.0.set(inbound);
    }

    /// Applies a `Withdraw` (`None` back) and gives anything else back untouched.
    pub fn route(&self, event: Inbound) -> Option<Inbound> {
        let Inbound::Withdraw {
            server,
            user,
            order,
        } = event
        else {
            return Some(event);
        };
        match decode(&user, &order) {
            Some(order) => {
                if let Some(inbound) = self.0.get() {
                    inbound.apply(ServerId::from(server), order);
                }
            }
            None => tracing::debug!("a withdrawal this build does not read: dropped"),
        }
        None
    }
}

/// The node's sink: withdrawals to the [`WithdrawSlot`], everything else to `next`.
pub struct WithdrawSink {
    next: Arc<dyn Sink>,
    slot: WithdrawSlot,
}

impl WithdrawSink {
    /// `next`, with withdrawals taken to `slot`.
    pub fn new(next: Arc<dyn Sink>, slot: WithdrawSlot) -> Self {
        Self { next, slot }
    }
}

impl Sink for WithdrawSink {
    fn deliver(&self, event: Inbound) {
        if let Some(event) = self.slot.route(event) {
            self.next.deliver(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn every_order_survives_the_wire() {
        let mut orders = vec![WithdrawOrder::Recheck];
        for reason in AccessDeniedReason::ALL {
            orders.push(WithdrawOrder::Everyone { reason });
            orders.push(WithdrawOrder::User {
                user: UserId::from("u-1"),
                reason,
            });
        }
        for order in orders {
            let (payload, user) = encode(&order);
            assert_eq!(decode(user, &payload), Some(order));
        }
    }

    #[test]
    fn unknown_or_incomplete_orders_are_refused() {
        assert_eq!(decode("u", b""), None);
        assert_eq!(decode("u", b"\x09banned"), None);
        assert_eq!(decode("u", b"\x01no_such_reason"), None);
        assert_eq!(
            decode("", b"\x01banned"),
            None,
            "a user order names its user"
        );
        assert_eq!(decode("u", b"\x02\xff"), None);
    }

    #[derive(Default)]
    struct Applied(Mutex<Vec<(ServerId, WithdrawOrder)>>);

    impl WithdrawInbound for Applied {
        fn apply(&self, server: ServerId, order: WithdrawOrder) {
            self.0.lock().expect("lock").push((server, order));
        }
    }

    #[test]
    fn the_slot_applies_withdrawals_and_passes_everything_else_on() {
        let slot = WithdrawSlot::default();
        let applied = Arc::new(Applied::default());
        slot.attach(applied.clone());
        let ban = WithdrawOrder::User {
            user: UserId::from("bob"),
            reason: AccessDeniedReason::Banned,
        };
        let (order, user) = encode(&ban);
        let event = Inbound::Withdraw {
            server: "s".into(),
            user: user.to_owned(),
            order,
        };
        assert_eq!(slot.route(event), None);
        let forward = Inbound::Forward {
            target: "t".into(),
            frame: Bytes::from_static(b"{}"),
        };
        assert_eq!(slot.route(forward.clone()), Some(forward));
        let applied = applied.0.lock().expect("lock").clone();
        assert_eq!(
            applied,
            vec![(
                ServerId::from("s"),
                WithdrawOrder::User {
                    user: UserId::from("bob"),
                    reason: AccessDeniedReason::Banned
                }
            )]
        );
    }
}
