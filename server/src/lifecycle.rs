//! The server's lifecycle: when it started and whether it is draining (shutting down).
//!
//! Owns those two facts and nothing else; readers (`/api/health`, `/api/ready`, the admin page,
//! the transports refusing new connections) share one [`Lifecycle`]. Never decides what draining
//! does (closing connections is [`crate::app::RunningServer::shutdown`]'s job).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// When the server started and whether it is shutting down.
#[derive(Debug)]
pub struct Lifecycle {
    started: Instant,
    draining: AtomicBool,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifecycle {
    /// A lifecycle starting now, not draining.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            draining: AtomicBool::new(false),
        }
    }

    /// How long the server has been up.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether the server is shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Marks the server as shutting down (`/api/ready` answers 503 from now on).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_once_asked_and_stays_draining() {
        let lifecycle = Lifecycle::new();
        assert!(!lifecycle.is_draining());
        lifecycle.start_draining();
        assert!(lifecycle.is_draining());
        lifecycle.start_draining();
        assert!(lifecycle.is_draining());
    }
}
