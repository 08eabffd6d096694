//! The one clock of the stateful stages: monotonic instants and wall-clock milliseconds from
//! one place, so a test can hold time still or move it on ([`Clock::manual`], [`Clock::advance`]).
//!
//! Stream state never reads `Instant::now()` or `SystemTime::now()` itself: idle eviction, the
//! question journaling interval and a stream's own time all go through a [`Clock`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds since the Unix epoch (0 if the system clock is before it).
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A time source: the system's, or a manual one that only moves when told to.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<Manual>>);

#[derive(Debug)]
struct Manual {
    start: Instant,
    wall_ms: u64,
    /// Nanoseconds advanced since `start`.
    advanced: AtomicU64,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock standing still at `wall_ms` until [`Clock::advance`] moves it.
    pub fn manual(wall_ms: u64) -> Self {
        Self(Some(Arc::new(Manual { start: Instant::now(), wall_ms, advanced: AtomicU64::new(0) })))
    }

    /// Moves a manual clock (and every copy of it) on by `d`; the system clock ignores this.
    pub fn advance(&self, d: Duration) {
        if let Some(m) = &self.0 {
            m.advanced.fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
        }
    }

    /// The current instant.
    pub fn now(&self) -> Instant {
        match &self.0 {
            None => Instant::now(),
            Some(m) => m.start + Duration::from_nanos(m.advanced.load(Ordering::Relaxed)),
        }
    }

    /// The current wall-clock time in milliseconds since the Unix epoch.
    pub fn unix_ms(&self) -> u64 {
        match &self.0 {
            None => unix_ms(),
            Some(m) => m.wall_ms + m.advanced.load(Ordering::Relaxed) / 1_000_000,
        }
    }

    /// Time since `earlier` by this clock (zero if `earlier` is later).
    pub fn since(&self, earlier: Instant) -> Duration {
        self.now().saturating_duration_since(earlier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_copies_move_with_it() {
        let c = Clock::manual(1_000);
        let copy = c.clone();
        let t0 = c.now();
        assert_eq!((c.unix_ms(), c.since(t0)), (1_000, Duration::ZERO));
        copy.advance(Duration::from_millis(1500));
        assert_eq!(c.unix_ms(), 2_500);
        assert_eq!(c.since(t0), Duration::from_millis(1500));
    }
}
