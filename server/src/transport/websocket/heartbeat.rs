//! When a connection is pinged and when its silence closes it (4002), as plain arithmetic over
//! instants the caller passes in: one timer per connection serves both, and a frame only moves
//! a field forward instead of re-arming a timer.
//!
//! Owns: the ping schedule (every `heartbeatIntervalMs`, counted from the previous ping) and the
//! liveness deadline (`heartbeatTimeoutMs` after the last frame read). Never reads a clock,
//! sleeps, or touches a socket: [`super::connection`] sleeps until [`Heartbeat::next_wake`] and
//! asks [`Heartbeat::due`] what to do when it wakes.

use std::time::Duration;

use tokio::time::Instant;

/// What is due when the connection's timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing yet (a frame arrived since the timer was set): sleep until the next wake.
    Nothing,
    /// Send a ping.
    Ping,
    /// The client has been silent for the whole timeout: close with 4002.
    TimedOut,
}

/// One connection's ping schedule and liveness deadline.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    ping_every: Duration,
    silence: Duration,
    last_seen: Instant,
    next_ping: Instant,
}

impl Heartbeat {
    /// A connection that was last heard from at `now`; the first ping is due `ping_every` later.
    pub fn new(now: Instant, ping_every: Duration, silence: Duration) -> Self {
        Self {
            ping_every,
            silence,
            last_seen: now,
            next_ping: now + ping_every,
        }
    }

    /// A frame (any frame) arrived at `now`.
    pub fn seen(&mut self, now: Instant) {
        self.last_seen = now;
    }

    /// The earliest instant something may be due: the next ping or the liveness deadline.
    pub fn next_wake(&self) -> Instant {
        self.next_ping.min(self.deadline())
    }

    /// What is due at `now`. A ping reported here is counted as sent: the next one is due
    /// `ping_every` after `now`, so a late timer never sends a burst of pings.
    pub fn due(&mut self, now: Instant) -> Due {
        if now >= self.deadline() {
            return Due::TimedOut;
        }
        if now >= self.next_ping {
            self.next_ping = now + self.ping_every;
            return Due::Ping;
        }
        Due::Nothing
    }

    fn deadline(&self) -> Instant {
        self.last_seen + self.silence
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PING: Duration = Duration::from_secs(30);
    const SILENCE: Duration = Duration::from_secs(45);

    #[test]
    fn a_silent_connection_is_pinged_then_timed_out() {
        let start = Instant::now();
        let mut beat = Heartbeat::new(start, PING, SILENCE);
        assert_eq!(beat.next_wake(), start + PING);
        assert_eq!(
            beat.due(start + PING - Duration::from_millis(1)),
            Due::Nothing
        );
        assert_eq!(beat.due(start + PING), Due::Ping);
        assert_eq!(
            beat.next_wake(),
            start + SILENCE,
            "the deadline comes before the next ping"
        );
        assert_eq!(beat.due(start + SILENCE), Due::TimedOut);
    }

    #[test]
    fn a_frame_moves_the_deadline_without_a_wake_in_between() {
        let start = Instant::now();
        let mut beat = Heartbeat::new(start, PING, SILENCE);
        assert_eq!(beat.due(start + PING), Due::Ping);
        beat.seen(start + Duration::from_secs(40));
        // The timer set for the old deadline fires: nothing is due, and the next wake is the
        // ping (70 s), before the new deadline (85 s).
        assert_eq!(beat.due(start + SILENCE), Due::Nothing);
        assert_eq!(beat.next_wake(), start + PING * 2);
        assert_eq!(beat.due(start + PING * 2), Due::Ping);
        assert_eq!(beat.next_wake(), start + Duration::from_secs(85));
        assert_eq!(beat.due(start + Duration::from_secs(85)), Due::TimedOut);
    }

    #[test]
    fn a_late_timer_sends_one_ping_and_counts_from_then() {
        let start = Instant::now();
        let mut beat = Heartbeat::new(start, PING, Duration::from_secs(600));
        let late = start + PING * 3;
        assert_eq!(beat.due(late), Due::Ping);
        assert_eq!(beat.due(late), Due::Nothing);
        assert_eq!(beat.next_wake(), late + PING);
    }
}
