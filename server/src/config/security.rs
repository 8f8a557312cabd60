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

/// `security` in `data/variables.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Security {
    /// Argon2 password hashes or checks running at once (the others wait); each is tens of
    /// milliseconds of one core.
    pub password_hash_concurrency: usize,
    /// Servers one realtime connection may have joined at once (`LIMIT_EXCEEDED` past it).
    pub max_joined_servers_per_connection: usize,
    /// Servers one realtime connection may view at once (`LIMIT_EXCEEDED` past it).
    pub max_viewed_servers_per_connection: usize,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            password_hash_concurrency: 2,
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
        let values: [(&str, u64); 3] = [
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
    }
}
