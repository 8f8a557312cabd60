//! A bounded memory of recent change ids: which copy of a multi-server change is the first.
//!
//! Owns: at most `capacity` ids, the oldest forgotten first. Pure: no I/O, no clock.
//!
//! Never: grows past its capacity (a forgotten id seen again fans out again: at worst a
//! duplicate `status_update`, never a lost one).

use std::collections::{HashSet, VecDeque};

/// Change ids a node remembers (status changes of users in several servers).
pub const REMEMBERED_CHANGES: usize = 4_096;

/// The recent change ids.
#[derive(Debug)]
pub struct Seen {
    capacity: usize,
    ids: HashSet<u64>,
    order: VecDeque<u64>,
}

impl Seen {
    /// Remembers at most `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            ids: HashSet::with_capacity(capacity),
            order: VecDeque::with_capacity(capacity),
        }
    }

    /// True the first time `id` is offered (while remembered); 0 is no id and always first.
    pub fn first(&mut self, id: u64) -> bool {
        if id == 0 {
            return true;
        }
        if !self.ids.insert(id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        self.order.push_back(id);
        true
    }

    /// Ids remembered now.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_copy_is_first() {
        let mut seen = Seen::new(8);
        assert!(seen.first(7));
        assert!(!seen.first(7));
        assert!(seen.first(8));
        assert!(seen.first(0) && seen.first(0), "0 is no id");
    }

    #[test]
    fn the_oldest_is_forgotten_at_capacity() {
        let mut seen = Seen::new(2);
        assert!(seen.first(1));
        assert!(seen.first(2));
        assert!(seen.first(3));
        assert_eq!(seen.len(), 2);
        assert!(seen.first(1), "1 was forgotten");
        assert!(!seen.first(3));
    }
}
