//! The stream shards: each shard's [`Streams`] behind its own lock, worked on in place by the
//! task that needs it, and one thread for their periodic work.
//!
//! Streams hash to shards, so two streams on different shards never wait for each other, and a
//! stream's state has one owner at a time: whoever holds its shard's lock. A connection runs
//! its frame's stateful stage itself, on its runtime thread, in the order its frames were
//! analyzed (the synchronous core, [`crate::stream`], takes well under a millisecond a frame).
//! Handing the frame to a shard thread instead cost two thread wake-ups per frame (to the
//! shard, and back to the connection), and on a machine whose cores are all busy each wake-up
//! waited for a time slice: that hand-off was the largest part of the slowest verdicts
//! (`docs/performance.md`). A connection that finds the lock taken waits for it, counted in
//! `kotae_backpressure_total{channel="shards"}`.
//!
//! The `kotae-shard-tick` thread runs each shard's [`Streams::tick`] (idle streams forgotten,
//! due questions journaled) when due. Host screens learn about changes through a `watch`
//! channel per stream carrying a version number (one slot, so a slow host screen can never make
//! it grow).

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender, bounded};
use tokio::sync::watch;

use super::clock::Clock;
use crate::catalog::Catalog;
use crate::ingest::{Item, message_id};
use crate::message::OutError;
use crate::metrics::{Channel, Metrics, RejectReason, Stage};
use crate::moderation::Moderation;
use crate::pipeline::Engine;
use crate::queue::{Question, RankConfig};
use crate::server::config::ServerConfig;
use crate::store::{JournalSender, Restored};
use crate::stream::{
    AnswerText, HostAction, Out, Processed, QuestionList, Settings, ShardStats, StreamSnapshot, Streams, Unavailable,
    views,
};

/// Outcomes of a submitted frame, to be awaited.
pub enum Pending {
    /// Processed: the outcomes, which may still wait for a question id's reservation.
    Done(Processed),
    /// Not processed (the shards are stopping): the ids get a shutting-down error.
    Failed(Vec<String>),
}

impl Pending {
    /// The outcomes, one per item; items the shard could not take get a shutting-down error.
    pub async fn wait(self) -> Vec<Out> {
        match self {
            Pending::Done(Processed { outs, durable }) => {
                if let Some((mut rx, id)) = durable {
                    // Ends when the reservation is committed, or when the stream is gone
                    // (its sender dropped: the server is stopping).
                    let _ = rx.wait_for(|d| *d >= id).await;
                }
                outs
            }
            Pending::Failed(ids) => ids
                .into_iter()
                .map(|id| {
                    Out::Error(OutError { id, error: "server is shutting down".into() }, RejectReason::ShuttingDown)
                })
                .collect(),
        }
    }
}

/// The shards.
pub struct Shards {
    cores: Arc<Vec<Mutex<Streams>>>,
    /// Set by [`Shards::stop`]: nothing more is taken.
    stopped: Arc<AtomicBool>,
    /// Wakes the tick thread to stop (one slot; dropping it also wakes it).
    stop_tick: Mutex<Option<Sender<()>>>,
    ticker: Mutex<Option<JoinHandle<()>>>,
    metrics: Arc<Metrics>,
}

fn shard_of(stream: &str, n: usize) -> usize {
    let mut h = rustc_hash::FxHasher::default();
    stream.hash(&mut h);
    (h.finish() % n as u64) as usize
}

/// What the shards need to start.
pub struct ShardDeps {
    /// The pipeline (stream state is made from it).
    pub engine: Arc<Engine>,
    /// Where records go.
    pub journal: JournalSender,
    /// The metrics handles.
    pub metrics: Arc<Metrics>,
    /// Per-stream moderation.
    pub moderation: Arc<Moderation>,
    /// The one clock.
    pub clock: Clock,
}

impl Shards {
    /// Sets up the shards with what the journal restored and starts their tick thread.
    pub fn start(
        rank: &RankConfig,
        config: &ServerConfig,
        restored: Restored,
        deps: ShardDeps,
    ) -> std::io::Result<Self> {
        let n = config.shards.get();
        let settings = Arc::new(Settings::of(rank, config));
        let ShardDeps { engine, journal, metrics, moderation, clock } = deps;
        let mut cores: Vec<Streams> = (0..n)
            .map(|_| {
                let m = (metrics.clone(), moderation.clone());
                Streams::new(engine.clone(), settings.clone(), journal.clone(), m.0, m.1, clock.clone())
            })
            .collect();
        for (name, st) in restored.streams {
            let name: Arc<str> = Arc::from(name);
            cores[shard_of(&name, n)].restore(name, st);
        }
        let cores = Arc::new(cores.into_iter().map(Mutex::new).collect::<Vec<_>>());
        let (stop_tx, stop_rx) = bounded::<()>(1);
        let ticking = cores.clone();
        let ticker = std::thread::Builder::new().name("kotae-shard-tick".into()).spawn(move || {
            loop {
                let mut wait = Duration::from_secs(1);
                for core in ticking.iter() {
                    wait = wait.min(lock(core).tick());
                }
                match stop_rx.recv_timeout(wait) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })?;
        Ok(Self {
            cores,
            stopped: Arc::default(),
            stop_tick: Mutex::new(Some(stop_tx)),
            ticker: Mutex::new(Some(ticker)),
            metrics,
        })
    }

    /// The stream's shard, locked; `None` once stopped. Waiting for the lock is counted.
    fn shard(&self, stream: &str) -> Option<MutexGuard<'_, Streams>> {
        if self.stopped.load(Ordering::Acquire) {
            return None;
        }
        let core = &self.cores[shard_of(stream, self.cores.len())];
        let guard = match core.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => {
                self.metrics.backpressure(Channel::Shards);
                lock(core)
            }
        };
        // Checked again under the lock: `stop` finishes each shard under it.
        (!self.stopped.load(Ordering::Acquire)).then_some(guard)
    }

    /// Runs a frame's items through their stream's stateful stages; the returned [`Pending`]
    /// yields the outcomes. Frames of one stream submitted one after another are processed in
    /// that order.
    pub async fn submit(&self, stream: Arc<str>, items: Vec<Item>) -> Pending {
        let asked = Instant::now();
        let Some(mut core) = self.shard(&stream) else {
            let ids = items
                .iter()
                .map(|i| match i {
                    Item::Parsed(m) | Item::Analyzed(m, _) | Item::OverBudget(m) => message_id(m),
                    Item::Rejected { id, .. } => id.clone(),
                })
                .collect();
            return Pending::Failed(ids);
        };
        let started = Instant::now();
        self.metrics.observe(Stage::ShardQueue, started.duration_since(asked).as_secs_f64());
        let processed = core.process(stream, items);
        drop(core);
        self.metrics.observe(Stage::Stateful, started.elapsed().as_secs_f64());
        Pending::Done(processed)
    }

    /// The ranked questions of a stream.
    pub async fn list(&self, stream: Arc<str>) -> Option<QuestionList> {
        Some(self.shard(&stream)?.list(stream))
    }

    /// Applies a host action; `None` when the question is unknown.
    pub async fn act(&self, stream: Arc<str>, cluster: u32, action: HostAction) -> Option<Question> {
        self.act_with(stream, cluster, action, AnswerText::Keep).await
    }

    /// Applies a host action with the answer text sent along (`answered` only).
    pub async fn act_with(
        &self,
        stream: Arc<str>,
        cluster: u32,
        action: HostAction,
        answer: AnswerText,
    ) -> Option<Question> {
        self.shard(&stream)?.act(stream, cluster, action, answer)
    }

    /// What the stream has answered, newest first (the FAQ for late joiners).
    pub async fn faq(&self, stream: Arc<str>) -> Option<views::Faq> {
        Some(self.shard(&stream)?.faq(stream))
    }

    /// Every stream in memory, with what a shop running several streams looks at first.
    pub async fn overview(&self) -> Vec<views::StreamOverview> {
        if self.stopped.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut all: Vec<_> = self.cores.iter().flat_map(|c| lock(c).overview()).collect();
        all.sort_by(|a, b| a.stream.cmp(&b.stream));
        all
    }

    /// Sets the product on screen.
    pub async fn set_product(&self, stream: Arc<str>, product: Option<String>) -> Result<(), Unavailable> {
        self.shard(&stream).ok_or(Unavailable::ShuttingDown)?.set_product(stream, product)
    }

    /// Replaces the stream's catalogue (journaled; later questions are matched against it).
    pub async fn set_catalog(&self, stream: Arc<str>, catalog: Arc<Catalog>) -> Result<(), Unavailable> {
        self.shard(&stream).ok_or(Unavailable::ShuttingDown)?.set_catalog(stream, catalog)
    }

    /// The stream's catalogue (empty for a stream never given one).
    pub async fn catalog(&self, stream: Arc<str>) -> Result<Arc<Catalog>, Unavailable> {
        Ok(self.shard(&stream).ok_or(Unavailable::ShuttingDown)?.catalog(&stream))
    }

    /// A receiver that changes whenever the stream's queue does.
    pub async fn subscribe(&self, stream: Arc<str>) -> Result<watch::Receiver<u64>, Unavailable> {
        self.shard(&stream).ok_or(Unavailable::ShuttingDown)?.subscribe(&stream)
    }

    /// Totals over all shards.
    pub async fn stats(&self) -> ShardStats {
        let mut total = ShardStats::default();
        for c in self.cores.iter() {
            let s = lock(c).stats();
            total.streams += s.streams;
            total.open_questions += s.open_questions;
        }
        total
    }

    /// Every stream whose name `pick` accepts, as a snapshot holds it. Each shard is read under
    /// its lock, so a stream's state includes every frame submitted for it before the call.
    pub fn export(&self, pick: &dyn Fn(&str) -> bool) -> Vec<StreamSnapshot> {
        let mut all: Vec<_> = self.cores.iter().flat_map(|c| lock(c).export(pick)).collect();
        all.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Forgets every stream `pick` accepts, then takes back `streams` (a snapshot of them).
    pub fn replace(&self, pick: &dyn Fn(&str) -> bool, streams: Vec<StreamSnapshot>) {
        for c in self.cores.iter() {
            lock(c).forget(pick);
        }
        for st in streams {
            lock(&self.cores[shard_of(&st.name, self.cores.len())]).import(st);
        }
    }

    /// Frames waiting: none are queued (a frame waits for its shard's lock on its own task).
    pub fn depth(&self) -> usize {
        0
    }

    /// Stops taking work, stops the tick thread and journals every question still waiting.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        drop(self.stop_tick.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(t) = self.ticker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        for c in self.cores.iter() {
            lock(c).finish();
        }
    }
}

/// A shard's lock; a panic while it was held leaves the state as the panic found it, which
/// the next frame can still use.
fn lock(core: &Mutex<Streams>) -> MutexGuard<'_, Streams> {
    core.lock().unwrap_or_else(|e| e.into_inner())
}
