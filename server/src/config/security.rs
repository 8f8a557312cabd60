//! The `security` section of the variables file: the bounds on what anonymous and
//! authenticated clients may make the server store, compute or hold (issue 10, "trust
//! boundary"). Every bound is here once, with its default; `docs/configuration.md` is generated
//! from these doc comments and `docs/security.md` names the test that crosses each one.
//!
//! Never enforces anything itself: the REST router, the hub, the directory and the password
//! workers read these values.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::RateLimit;

/// One per-address token bucket: a burst and a refill rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bucket {
    /// Requests one address may make in a burst.
    pub burst: u32,
    /// Requests added back to the address's bucket per second.
    pub refill_per_sec: u32,
}

impl Bucket {
    /// The bucket's arithmetic settings.
    pub fn rate_limit(self) -> RateLimit {
        RateLimit {
            burst: self.burst,
            refill_per_sec: self.refill_per_sec,
        }
    }
}

/// Per-address token buckets of the REST routes (`429 RATE_LIMITED` with `Retry-After` past
/// them). Every address has one bucket per class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RestRateLimits {
    /// `/api/auth/*` (challenges, guest tokens, verification): tight, since each may create
    /// state or cost a signature check.
    pub auth: Bucket,
    /// `GET` routes: loose.
    pub reads: Bucket,
    /// Every other method (writes).
    pub writes: Bucket,
}

impl Default for RestRateLimits {
    fn default() -> Self {
        Self {
            auth: Bucket {
                burst: 10,
                refill_per_sec: 1,
            },
            reads: Bucket {
                burst: 120,
                refill_per_sec: 30,
            },
            writes: Bucket {
                burst: 30,
                refill_per_sec: 5,
            },
        }
    }
}

/// `security` in `data/variables.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Security {
    /// Argon2 password hashes or checks running at once (the others wait); each is tens of
    /// milliseconds of one core.
    pub password_hash_concurrency: usize,
    /// Per-address token buckets of the REST routes.
    pub rest_rate_limits: RestRateLimits,
    /// Client addresses whose REST buckets are remembered at once; past it, full (idle)
    /// buckets are forgotten, then the longest-unused one.
    pub rest_rate_limit_tracked_addresses: usize,
    /// How often expired auth challenges and unused ephemeral identities (guest or token-less
    /// rows that own nothing and are members of nothing, older than `guestTokenTtlSeconds`) are
    /// deleted, in seconds.
    pub purge_interval_seconds: u32,
    /// Servers one user may own (`403 FORBIDDEN` past it).
    pub max_servers_per_owner: u32,
    /// Longest `q` of `GET /api/servers`, in characters (`400 BAD_REQUEST` past it).
    pub max_search_query_chars: usize,
    /// Servers one realtime connection may have joined at once (`LIMIT_EXCEEDED` past it).
    pub max_joined_servers_per_connection: usize,
    /// Servers one realtime connection may view at once (`LIMIT_EXCEEDED` past it).
    pub max_viewed_servers_per_connection: usize,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            password_hash_concurrency: 2,
            rest_rate_limits: RestRateLimits::default(),
            rest_rate_limit_tracked_addresses: 65_536,
            purge_interval_seconds: 60,
            max_servers_per_owner: 100,
            max_search_query_chars: 64,
            max_joined_servers_per_connection: Self::DEFAULT_MAX_JOINED,
            max_viewed_servers_per_connection: Self::DEFAULT_MAX_VIEWED,
        }
    }
}

impl Security {
    /// Default of `maxJoinedServersPerConnection`.
    pub const DEFAULT_MAX_JOINED: usize = 200;
    /// Default of `maxViewedServersPerConnection`.
    pub const DEFAULT_MAX_VIEWED: usize = 50;

    /// Every value must be positive; the error names the key (`security.NAME`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let limits = &self.rest_rate_limits;
        let values: [(&str, u64); 13] = [
            (
                "purgeIntervalSeconds",
                u64::from(self.purge_interval_seconds),
            ),
            ("maxServersPerOwner", u64::from(self.max_servers_per_owner)),
            ("maxSearchQueryChars", self.max_search_query_chars as u64),
            ("restRateLimits.auth.burst", u64::from(limits.auth.burst)),
            (
                "restRateLimits.auth.refillPerSec",
                u64::from(limits.auth.refill_per_sec),
            ),
            ("restRateLimits.reads.burst", u64::from(limits.reads.burst)),
            (
                "restRateLimits.reads.refillPerSec",
                u64::from(limits.reads.refill_per_sec),
            ),
            (
                "restRateLimits.writes.burst",
                u64::from(limits.writes.burst),
            ),
            (
                "restRateLimits.writes.refillPerSec",
                u64::from(limits.writes.refill_per_sec),
            ),
            (
                "restRateLimitTrackedAddresses",
                self.rest_rate_limit_tracked_addresses as u64,
            ),
            (
                "passwordHashConcurrency",
                self.password_hash_concurrency as u64,
            ),
            (
                "maxJoinedServersPerConnection",
                self.max_joined_servers_per_connection as u64,
            ),
            (
                "maxViewedServersPerConnection",
                self.max_viewed_servers_per_connection as u64,
            ),
        ];
        for (key, value) in values {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key: format!("security.{key}"),
                    message: "must be greater than 0".into(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zeros_are_refused() {
        Security::default().validate().expect("valid");
        let zero = Security {
            password_hash_concurrency: 0,
            ..Security::default()
        };
        let err = zero.validate().expect_err("refused");
        assert!(
            err.to_string().contains("security.passwordHashConcurrency"),
            "{err}"
        );
        let mut no_refill = Security::default();
        no_refill.rest_rate_limits.auth.refill_per_sec = 0;
        let err = no_refill.validate().expect_err("refused");
        assert!(
            err.to_string()
                .contains("security.restRateLimits.auth.refillPerSec"),
            "{err}"
        );
    }
}
