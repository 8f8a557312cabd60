//! Where the `forward` scenario's pairs connect, and what each receiver got: the arithmetic of
//! a cluster run (`scripts/bench --cluster`).
//!
//! Owns: which node URL each pair's sender and receiver use (both on one node, or on two
//! different nodes), and the per-receiver delivery check (every sequence number exactly once,
//! in order). Never opens a connection, reads a clock or prints.

use std::fmt;

/// How a pair's two members are spread over the node URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Placement {
    /// Sender and receiver on the same node (pairs spread round-robin over the nodes).
    Same,
    /// Sender on one node, receiver on the next one (the envelope crosses the backplane).
    Cross,
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Same => "same-node",
            Self::Cross => "cross-node",
        })
    }
}

/// The node URLs of a run and how pairs use them.
#[derive(Debug, Clone)]
pub struct Nodes {
    urls: Vec<String>,
    placement: Placement,
}

impl Nodes {
    /// `urls` must not be empty; `Cross` needs at least two different ones.
    pub fn new(urls: Vec<String>, placement: Placement) -> Result<Self, String> {
        if urls.is_empty() {
            return Err("no node URL".into());
        }
        if placement == Placement::Cross && urls.iter().all(|url| url == &urls[0]) {
            return Err("cross-node placement needs at least two different --urls".into());
        }
        Ok(Self { urls, placement })
    }

    /// How many node URLs.
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// The placement.
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// The URL connection `index` uses: pair `index / 2`'s sender (even) or receiver (odd).
    /// Pair `k`'s sender is on node `k mod n`; its receiver on the same node or the next.
    pub fn url_of(&self, index: usize) -> &str {
        let n = self.urls.len();
        let pair = index / 2;
        let sender_node = pair % n;
        let node = match (index % 2, self.placement) {
            (0, _) | (_, Placement::Same) => sender_node,
            (_, Placement::Cross) => (sender_node + 1) % n,
        };
        &self.urls[node]
    }
}

/// The highest sequence number a receiver tracks: far above what one pair sends in a run.
pub const MAX_SEQ: u64 = 1 << 24;

/// What one receiver got from its sender, by sequence number (the sender numbers from 0).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivery {
    next: u64,
    /// Distinct sequence numbers received.
    pub distinct: u64,
    /// Sequence numbers received more than once.
    pub duplicates: u64,
    /// Sequence numbers that arrived after a higher one.
    pub out_of_order: u64,
    seen: Vec<bool>,
}

impl Delivery {
    /// Records the arrival of `seq` (one above [`MAX_SEQ`] is not one this generator sent).
    pub fn record(&mut self, seq: u64) {
        let Ok(slot) = usize::try_from(seq) else {
            return;
        };
        if seq > MAX_SEQ {
            return;
        }
        if slot >= self.seen.len() {
            self.seen.resize(slot + 1, false);
        }
        if self.seen[slot] {
            self.duplicates += 1;
            return;
        }
        self.seen[slot] = true;
        self.distinct += 1;
        if seq < self.next {
            self.out_of_order += 1;
        }
        self.next = self.next.max(seq + 1);
    }

    /// Signals the sender sent that never arrived.
    pub fn lost(&self, sent: u64) -> u64 {
        sent.saturating_sub(self.distinct)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("ws://127.0.0.1:{i}/ws")).collect()
    }

    #[test]
    fn same_node_pairs_share_a_node_and_spread_round_robin() {
        let nodes = Nodes::new(urls(3), Placement::Same).expect("three urls");
        let placed: Vec<(&str, &str)> = (0..4)
            .map(|pair| (nodes.url_of(pair * 2), nodes.url_of(pair * 2 + 1)))
            .collect();
        assert_eq!(
            placed,
            vec![
                ("ws://127.0.0.1:1/ws", "ws://127.0.0.1:1/ws"),
                ("ws://127.0.0.1:2/ws", "ws://127.0.0.1:2/ws"),
                ("ws://127.0.0.1:3/ws", "ws://127.0.0.1:3/ws"),
                ("ws://127.0.0.1:1/ws", "ws://127.0.0.1:1/ws"),
            ]
        );
    }

    #[test]
    fn cross_node_pairs_put_the_receiver_on_the_next_node() {
        let nodes = Nodes::new(urls(3), Placement::Cross).expect("three urls");
        for pair in 0..9 {
            assert_ne!(nodes.url_of(pair * 2), nodes.url_of(pair * 2 + 1));
        }
        assert_eq!(nodes.url_of(4), "ws://127.0.0.1:3/ws");
        assert_eq!(nodes.url_of(5), "ws://127.0.0.1:1/ws");
    }

    #[test]
    fn cross_node_placement_refuses_a_single_node() {
        assert!(Nodes::new(urls(1), Placement::Cross).is_err());
        let twice = vec!["ws://127.0.0.1:1/ws".to_owned(); 2];
        assert!(Nodes::new(twice, Placement::Cross).is_err());
        assert!(Nodes::new(Vec::new(), Placement::Same).is_err());
        assert!(Nodes::new(urls(1), Placement::Same).is_ok());
    }

    #[test]
    fn delivery_counts_losses_duplicates_and_reordering() {
        let mut delivery = Delivery::default();
        for seq in [0, 1, 3, 2, 3, 5] {
            delivery.record(seq);
        }
        assert_eq!(delivery.distinct, 5);
        assert_eq!(delivery.duplicates, 1);
        assert_eq!(delivery.out_of_order, 1);
        assert_eq!(delivery.lost(7), 2);
        assert_eq!(Delivery::default().lost(0), 0);
    }
}
