//! The hasher of the hub's maps: foldhash, randomly seeded.
//!
//! Owns: the `HashMap`/`HashSet` aliases every index of the hub uses. Their keys are ids a
//! client chooses (`oderId`, `serverId`) or connection numbers, hashed on every delivery (a
//! forward looks up the sender, the target and their servers); std's SipHash-1-3 showed up as
//! about 2% of the server's CPU in the closed-loop forward benchmark. foldhash is several times
//! cheaper on short keys and keeps HashDoS resistance the way std does: every map gets a random
//! seed (`foldhash::fast::RandomState`), so a client cannot pick ids that collide.
//!
//! Never: a fixed or predictable seed (no `FixedState`), or a map keyed by client input that
//! bypasses these aliases in the hub.

/// A `HashMap` with a randomly seeded foldhash; build it with `HashMap::default()`.
pub(super) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A `HashSet` with a randomly seeded foldhash; build it with `HashSet::default()`.
pub(super) type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn every_map_gets_its_own_seed() {
        let a: HashSet<&str> = HashSet::default();
        let b: HashSet<&str> = HashSet::default();
        let key = "alice";
        assert_ne!(
            a.hasher().hash_one(key),
            b.hasher().hash_one(key),
            "two maps hash the same key alike: the seed is not random"
        );
    }
}
