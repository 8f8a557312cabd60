//! Server passwords as Argon2id hashes (PHC strings).
//!
//! Owns hashing and verification only, and [`PasswordWork`], the one way async code runs them:
//! on Tokio's blocking pool (never on the reactor), never while holding a database connection,
//! and at most `security.passwordHashConcurrency` at a time (an Argon2 run is tens of
//! milliseconds of CPU and its memory; unbounded, a burst of guesses would take every core).
//! Never stores, returns or logs a plain-text password.

use std::sync::Arc;

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use signalbox_protocol::Secret;
use tokio::sync::Semaphore;

/// Why hashing a password failed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Argon2 refused the input (cannot happen with the sizes the routes allow).
    #[error("password hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
    /// The blocking task could not run (runtime shutting down).
    #[error("password worker failed: {0}")]
    Worker(String),
}

/// Runs Argon2 work on the blocking pool, a bounded number at a time. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PasswordWork {
    permits: Arc<Semaphore>,
}

impl PasswordWork {
    /// At most `concurrency` (at least 1) hashes or verifications at once; the others wait.
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Hashes `password` with a fresh salt.
    pub async fn hash(&self, password: Secret) -> Result<String, PasswordError> {
        self.run(move || hash(password.expose()).map_err(PasswordError::Hash))
            .await?
    }

    /// Whether `password` matches `hash`.
    pub async fn verify(&self, hash: String, password: Secret) -> Result<bool, PasswordError> {
        self.run(move || verify(&hash, password.expose())).await
    }

    /// Checks in flight now (for tests and gauges).
    pub fn in_flight(&self, concurrency: usize) -> usize {
        concurrency.max(1) - self.permits.available_permits()
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| PasswordError::Worker(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .map_err(|e| PasswordError::Worker(e.to_string()))
    }
}

/// Hashes `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Whether `password` matches `hash` (a malformed hash never matches).
pub fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash("hunter2").expect("hash");
        let b = hash("hunter2").expect("hash");
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(verify(&a, "hunter2"));
        assert!(!verify(&a, "hunter3"));
        assert!(!verify("not a hash", "hunter2"));
    }

    #[tokio::test]
    async fn password_work_runs_at_most_its_concurrency_at_once() {
        let work = PasswordWork::new(1);
        let stored = work.hash(Secret::from("hunter2")).await.expect("hash");
        let held = Arc::clone(&work.permits)
            .acquire_owned()
            .await
            .expect("permit");
        assert_eq!(work.in_flight(1), 1);
        let waiting = tokio::spawn({
            let work = work.clone();
            let stored = stored.clone();
            async move { work.verify(stored, Secret::from("hunter2")).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a check waits for a free slot");
        drop(held);
        assert!(waiting.await.expect("joined").expect("ran"));
        assert!(
            !work
                .verify(stored, Secret::from("nope"))
                .await
                .expect("ran")
        );
    }
}
