//! The server's analysis workers: a [`Pool`] of threads, each owning an
//! [`Analyzer`](crate::pipeline::Analyzer) (normalize → tokenize → classify, fused), taking a
//! frame's messages as one job.
//!
//! Admission is a semaphore with as many permits as the pool's channel has slots, so an async
//! sender never blocks a runtime thread: it waits for a permit (policy `block`, counted in
//! `kotae_backpressure_total{channel="workers"}`) until the frame's latency budget runs out, then
//! answers with the budget verdict instead.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::pool::{Pool, PoolSpec};
use crate::ingest::{Item, message_id};
use crate::metrics::{Channel, Metrics, RejectReason, Stage};
use crate::pipeline::{Analyzer, Engine, Reject};

/// A frame's messages for the workers.
struct Job {
    items: Vec<Item>,
    deadline: Instant,
    arrived: Instant,
    /// The items, and when the worker finished them.
    reply: oneshot::Sender<(Vec<Item>, Instant)>,
    /// Frees the channel slot once a worker has taken the job.
    _permit: OwnedSemaphorePermit,
}

/// The stateless worker pool.
pub struct Workers {
    pool: Pool<Job>,
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

/// Analyzes one job's messages; those past the deadline when the job is taken are over budget.
fn work(analyzer: &mut Analyzer, metrics: &Metrics, job: Job) {
    let Job { items, deadline, arrived, reply, _permit } = job;
    drop(_permit);
    let now = Instant::now();
    metrics.observe(Stage::Queue, now.duration_since(arrived).as_secs_f64());
    let late = now > deadline;
    // The frame's messages are analyzed together, stage by stage ([`Analyzer::analyze_batch`]);
    // each is timed as its share of the whole.
    let parsed = items.iter().filter_map(|i| if let Item::Parsed(m) = i { Some(m.text.as_str()) } else { None });
    let texts: Vec<&str> = if late { Vec::new() } else { parsed.collect() };
    let mut analyses = analyzer.analyze_batch(&texts).into_iter();
    drop(texts);
    let share = now.elapsed().as_secs_f64() / analyses.len().max(1) as f64;
    let out = items
        .into_iter()
        .map(|item| match item {
            Item::Parsed(m) if late => Item::OverBudget(m),
            Item::Parsed(m) => {
                metrics.observe(Stage::Analyze, share);
                match analyses.next().expect("an analysis per parsed message") {
                    Ok(a) => Item::Analyzed(m, Box::new(a)),
                    Err(e) => {
                        let reason = match e {
                            Reject::TooLarge(..) => RejectReason::TooLarge,
                            Reject::Empty => RejectReason::Empty,
                        };
                        Item::Rejected { id: message_id(&m), error: e.to_string(), reason }
                    }
                }
            }
            other => other,
        })
        .collect();
    let done = Instant::now();
    metrics.observe(Stage::Worker, done.duration_since(now).as_secs_f64());
    // The connection drains its frames before going away, so a closed reply is only possible
    // when its task panicked; nothing is left to answer then.
    let _ = reply.send((out, done));
}

impl Workers {
    /// Starts `n` workers with a queue of `queue` frames, at `nice` (see [`super::Sizing`]).
    pub fn start(
        engine: &Arc<Engine>,
        n: usize,
        queue: usize,
        nice: i32,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let m = metrics.clone();
        let spec = PoolSpec { name: "kotae-worker", threads: n, queue, nice };
        let pool = Pool::start(spec, || engine.analyzer(), move |a: &mut Analyzer, job| work(a, &m, job))?;
        Ok(Self { pool, slots: Arc::new(Semaphore::new(queue.max(1))), metrics })
    }

    /// Analyzes a frame's items, waiting for a slot at most until `deadline`; items not taken
    /// by then come back as [`Item::OverBudget`].
    pub async fn analyze(&self, items: Vec<Item>, arrived: Instant, deadline: Instant) -> Vec<Item> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                self.metrics.backpressure(Channel::Workers);
                match tokio::time::timeout_at(deadline.into(), self.slots.clone().acquire_owned()).await {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => return shutting_down(items),
                    Err(_) => return over_budget(items),
                }
            }
        };
        let (reply, rx) = oneshot::channel();
        // A permit guarantees a free slot, so try_send only fails once the pool has stopped.
        if let Err(job) = self.pool.try_send(Job { items, deadline, arrived, reply, _permit: permit }) {
            return shutting_down(job.items);
        }
        match rx.await {
            Ok((items, done)) => {
                self.metrics.observe(Stage::WorkerReply, done.elapsed().as_secs_f64());
                items
            }
            Err(_) => Vec::new(),
        }
    }

    /// Frames waiting for a worker.
    pub fn depth(&self) -> usize {
        self.pool.depth()
    }

    /// Lets queued frames finish, then stops and joins every worker.
    pub fn stop(&self) {
        self.slots.close();
        self.pool.stop();
    }
}

fn over_budget(items: Vec<Item>) -> Vec<Item> {
    items.into_iter().map(|i| if let Item::Parsed(m) = i { Item::OverBudget(m) } else { i }).collect()
}

fn shutting_down(items: Vec<Item>) -> Vec<Item> {
    items
        .into_iter()
        .map(|i| match i {
            Item::Parsed(m) => Item::Rejected {
                id: message_id(&m),
                error: "server is shutting down".into(),
                reason: RejectReason::ShuttingDown,
            },
            other => other,
        })
        .collect()
}
