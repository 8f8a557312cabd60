//! Which local users also have identified connections on other nodes (the "devices" hint).
//!
//! Owns: user → the other nodes holding it, learnt from `identify.lua`'s answer (the nodes
//! already holding the user when this node registers it) and from the hints other nodes
//! publish on this node's channel when they register or drop the user. A forward whose
//! target is local and on no other node is delivered without touching Redis.
//!
//! Never: decides delivery for a target that is not local (that always goes through
//! `forward.lua`), or keeps a node it learnt is dead. A hint still in flight may leave a
//! just-arrived device of the user on another node out of a forward for that moment: the
//! price of not asking Redis for every local forward (docs/design/cluster-plan.md §3.3).

use std::collections::{HashMap, HashSet};

/// The hint set of one node.
#[derive(Debug, Default)]
pub struct Elsewhere {
    users: HashMap<String, HashSet<String>>,
}

impl Elsewhere {
    /// `nodes` hold `user` besides this node (the registry's answer). Merged, not replaced:
    /// the answer and a hint travel on different connections and may cross; a node kept
    /// too long only sends a forward through Redis, a node dropped too early would lose one.
    pub fn learn(&mut self, user: &str, nodes: Vec<String>) {
        if !nodes.is_empty() {
            self.users.entry(user.to_owned()).or_default().extend(nodes);
        }
    }

    /// This node no longer holds `user`: nothing to remember about it.
    pub fn forget_user(&mut self, user: &str) {
        self.users.remove(user);
    }

    /// A hint from `node`: it now holds `user` (`present`) or no longer does.
    pub fn hint(&mut self, user: &str, node: &str, present: bool) {
        if present {
            self.users
                .entry(user.to_owned())
                .or_default()
                .insert(node.to_owned());
        } else if let Some(nodes) = self.users.get_mut(user) {
            nodes.remove(node);
            if nodes.is_empty() {
                self.users.remove(user);
            }
        }
    }

    /// `node` is dead: it holds nobody.
    pub fn forget_node(&mut self, node: &str) {
        self.users.retain(|_, nodes| {
            nodes.remove(node);
            !nodes.is_empty()
        });
    }

    /// Whether another node holds `user`.
    pub fn holds_elsewhere(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// Users with a device elsewhere.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no local user has a device elsewhere.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_add_and_remove_nodes() {
        let mut e = Elsewhere::default();
        assert!(!e.holds_elsewhere("a"));
        e.hint("a", "n2", true);
        e.hint("a", "n3", true);
        e.hint("a", "n2", false);
        assert!(e.holds_elsewhere("a"));
        e.hint("a", "n3", false);
        assert!(!e.holds_elsewhere("a"));
        assert!(e.is_empty());
    }

    #[test]
    fn the_registry_answer_merges_and_a_dead_node_is_dropped() {
        let mut e = Elsewhere::default();
        e.learn("a", vec!["n2".into()]);
        e.learn("a", Vec::new());
        assert!(
            e.holds_elsewhere("a"),
            "an empty answer never erases a hint"
        );
        e.learn("b", vec!["n2".into(), "n3".into()]);
        e.forget_node("n2");
        assert!(!e.holds_elsewhere("a"));
        assert!(e.holds_elsewhere("b"));
        e.forget_user("b");
        assert!(e.is_empty());
    }
}
