//! Per-connection message rate: a token bucket.

use std::time::Instant;

/// Token bucket refilled at `rate` tokens per second up to `burst`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket that starts full: `burst` tokens at once, then `rate` a second (messages, for
    /// the per-connection limit).
    pub fn new(rate: u32, burst: u32) -> Self {
        Self { rate: rate as f64, burst: burst as f64, tokens: burst as f64, last: Instant::now() }
    }

    /// Takes up to `n` tokens at `now`; returns how many were granted.
    pub fn take(&mut self, n: usize, now: Instant) -> usize {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        let granted = (self.tokens.floor() as usize).min(n);
        self.tokens -= granted as f64;
        granted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_passes_then_the_rate_limits() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 5);
        assert_eq!(b.take(8, t0), 5);
        assert_eq!(b.take(1, t0), 0);
        assert_eq!(b.take(10, t0 + Duration::from_millis(300)), 3);
        assert_eq!(b.take(100, t0 + Duration::from_secs(60)), 5, "never more than the burst");
    }
}
