//! One stream's state: dedupe and clusters, the host queue, its own time, question-id
//! reservations and the questions waiting to be journaled.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashSet;
use tokio::sync::watch;

use crate::i18n::Locale;
use crate::pipeline::{Engine, StreamState};
use crate::queue::{QuestionState, Queue, RankConfig};
use crate::runtime::clock::Clock;
use crate::store::{JournalSender, Record};

/// Question ids are reserved in the journal this many at a time, the next block once half of
/// the current one is used: an id is only issued once a committed reservation covers it.
pub(crate) const ID_BLOCK: u32 = 1024;

pub(super) struct StreamCtx {
    pub(super) name: Arc<str>,
    pub(super) state: StreamState,
    pub(super) queue: Queue,
    /// Added to dedupe's cluster numbers, so numbers restored from the journal are never reused.
    pub(super) base: u32,
    /// Stream time: the newest message timestamp, advanced by wall time since it arrived.
    pub(super) last_ts: u64,
    pub(super) last_wall: Instant,
    pub(super) version: watch::Sender<u64>,
    /// Last command for this stream (idle streams are evicted).
    pub(super) touched: Instant,
    /// Highest question id issued, so an evicted stream that comes back continues above it.
    pub(super) max_id: u32,
    /// Questions asked since they were last journaled, with when they were first asked since,
    /// oldest first; and their ids.
    pub(super) unjournaled: VecDeque<(Instant, u32)>,
    pub(super) unjournaled_ids: FxHashSet<u32>,
    /// Highest question id a reservation sent to the journal covers.
    pub(super) reserved: u32,
    /// Highest question id a committed reservation covers (set by the journal writer).
    pub(super) durable: Arc<watch::Sender<u32>>,
}

impl StreamCtx {
    pub(super) fn new(name: Arc<str>, engine: &Engine, rank: &RankConfig, locale: Locale, clock: &Clock) -> Self {
        let mut queue = Queue::new(rank);
        queue.set_locale(locale);
        let now = clock.now();
        Self {
            name,
            state: engine.stream_state(),
            queue,
            base: 0,
            last_ts: 0,
            last_wall: now,
            version: watch::channel(0).0,
            touched: now,
            max_id: 0,
            unjournaled: VecDeque::new(),
            unjournaled_ids: FxHashSet::default(),
            reserved: 0,
            durable: Arc::new(watch::channel(0).0),
        }
    }

    /// Starts issuing ids above `base` (restored, or left by an evicted stream).
    pub(super) fn continue_from(&mut self, base: u32) {
        self.base = base;
        self.max_id = base;
        self.reserved = base;
        self.durable.send_replace(base);
    }

    /// Before question id `id` goes out: reserves the next block when half of this one is used.
    /// Returns what the frame's verdicts must wait for, if `id` is not yet durably reserved.
    pub(super) fn reserve(&mut self, id: u32, journal: &JournalSender) -> Option<(watch::Receiver<u32>, u32)> {
        if id.saturating_add(ID_BLOCK / 2) > self.reserved {
            self.reserved = id.max(self.reserved).saturating_add(ID_BLOCK);
            let queued = journal.send(Record::Reserve {
                stream: self.name.clone(),
                upto: self.reserved,
                durable: self.durable.clone(),
            });
            if !queued {
                // No journal (or it has stopped): nothing survives a restart to collide with.
                self.durable.send_replace(self.reserved);
            }
        }
        (*self.durable.borrow() < id).then(|| (self.durable.subscribe(), id))
    }

    /// The time of a message: its `ts`, clamped to `max_skew` ahead of the wall clock (a wild
    /// `ts` would otherwise carry the stream's clock with it); the stream's clock without one.
    /// Whether it was clamped comes second.
    pub(super) fn message_ts(&self, ts: Option<u64>, max_skew: u64, clock: &Clock) -> (u64, bool) {
        match ts {
            None => (self.now(clock), false),
            Some(ts) => {
                let high = clock.unix_ms().saturating_add(max_skew);
                if ts > high { (high, true) } else { (ts, false) }
            }
        }
    }

    /// Idle long enough, nothing open for the host and nobody watching: safe to forget.
    pub(super) fn evictable(&self, idle: Duration, clock: &Clock) -> bool {
        clock.since(self.touched) >= idle
            && self.version.receiver_count() == 0
            && !self.queue.all().any(|q| matches!(q.state, QuestionState::Open | QuestionState::Pinned))
    }

    /// The stream's time (ms): its newest message's, advanced by the wall time since.
    pub(super) fn now(&self, clock: &Clock) -> u64 {
        if self.last_ts == 0 {
            clock.unix_ms()
        } else {
            self.last_ts.saturating_add(clock.since(self.last_wall).as_millis() as u64)
        }
    }

    /// Tells host screens watching the stream that it changed.
    pub(super) fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }
}
