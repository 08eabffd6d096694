//! The stream shards: threads that each own the [`Streams`] hashing to them, so no lock guards
//! stream state.
//!
//! Everything that reads or changes a stream (verdicts, host actions, the product on screen,
//! listing) is a [`Cmd`] sent through the shard's bounded channel; admission is a semaphore with
//! one permit per slot (policy `block`, counted in `kotae_backpressure_total{channel="shards"}`).
//! A shard thread only receives commands, hands each to the synchronous core
//! ([`crate::stream`]) and sends the answer back; between commands it runs the core's periodic
//! work ([`Streams::tick`]). Host screens learn about changes through a `watch` channel per
//! stream carrying a version number (one slot, so a slow host screen can never make it grow).

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};

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
    AnswerText, HostAction, Out, Processed, QuestionList, Settings, ShardStats, Streams, Unavailable, views,
};

/// Outcomes of a submitted frame, to be awaited.
pub enum Pending {
    Waiting(oneshot::Receiver<Processed>, Vec<String>),
    Failed(Vec<String>),
}

impl Pending {
    /// The outcomes, one per item; items the shard could not take get a shutting-down error.
    pub async fn wait(self) -> Vec<Out> {
        let ids = match self {
            Pending::Waiting(rx, ids) => match rx.await {
                Ok(Processed { outs, durable }) => {
                    if let Some((mut rx, id)) = durable {
                        // Ends when the reservation is committed, or when the stream is gone
                        // (its sender dropped: the server is stopping).
                        let _ = rx.wait_for(|d| *d >= id).await;
                    }
                    return outs;
                }
                Err(_) => ids,
            },
            Pending::Failed(ids) => ids,
        };
        ids.into_iter()
            .map(|id| Out::Error(OutError { id, error: "server is shutting down".into() }, RejectReason::ShuttingDown))
            .collect()
    }
}

/// A host action on a question.

/// A request to a shard, answered through its `reply`.
enum Cmd {
    Process {
        stream: Arc<str>,
        items: Vec<Item>,
        reply: oneshot::Sender<Processed>,
    },
    List {
        stream: Arc<str>,
        reply: oneshot::Sender<QuestionList>,
    },
    Act {
        stream: Arc<str>,
        cluster: u32,
        action: HostAction,
        answer: AnswerText,
        reply: oneshot::Sender<Option<Question>>,
    },
    Faq {
        stream: Arc<str>,
        reply: oneshot::Sender<views::Faq>,
    },
    Overview {
        reply: oneshot::Sender<Vec<views::StreamOverview>>,
    },
    SetProduct {
        stream: Arc<str>,
        product: Option<String>,
        reply: oneshot::Sender<Result<(), Unavailable>>,
    },
    Subscribe {
        stream: Arc<str>,
        reply: oneshot::Sender<Result<watch::Receiver<u64>, Unavailable>>,
    },
    SetCatalog {
        stream: Arc<str>,
        catalog: Arc<Catalog>,
        reply: oneshot::Sender<Result<(), Unavailable>>,
    },
    GetCatalog {
        stream: Arc<str>,
        reply: oneshot::Sender<Result<Arc<Catalog>, Unavailable>>,
    },
    Stats {
        reply: oneshot::Sender<ShardStats>,
    },
    Stop,
}

struct Envelope {
    cmd: Cmd,
    /// Frees the channel slot once the shard has taken the command.
    _permit: Option<OwnedSemaphorePermit>,
}

/// The shard threads.

/// The shard threads.
pub struct Shards {
    /// One bounded channel per shard (`shard_queue`); closed by [`Shards::stop`].
    senders: Vec<Sender<Envelope>>,
    slots: Vec<Arc<Semaphore>>,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
    metrics: Arc<Metrics>,
}

fn shard_of(stream: &str, n: usize) -> usize {
    let mut h = rustc_hash::FxHasher::default();
    stream.hash(&mut h);
    (h.finish() % n as u64) as usize
}

/// What a shard thread needs to start.
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
    /// Starts the shard threads with what the journal restored.
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
        let mut senders = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for (i, core) in cores.into_iter().enumerate() {
            let (tx, rx) = bounded::<Envelope>(config.shard_queue.get());
            let (metrics, clock) = (metrics.clone(), clock.clone());
            let spawn = std::thread::Builder::new().name(format!("kotae-shard-{i}"));
            threads.push(spawn.spawn(move || run(core, &rx, &metrics, &clock))?);
            senders.push(tx);
        }
        let slots = (0..n).map(|_| Arc::new(Semaphore::new(config.shard_queue.get()))).collect();
        Ok(Self { senders, slots, threads: std::sync::Mutex::new(threads), metrics })
    }

    async fn send(&self, stream: &str, cmd: Cmd) -> bool {
        let i = shard_of(stream, self.senders.len());
        let permit = match self.slots[i].clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                self.metrics.backpressure(Channel::Shards);
                match self.slots[i].clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => return false,
                }
            }
        };
        self.senders[i].try_send(Envelope { cmd, _permit: Some(permit) }).is_ok()
    }

    /// Hands a frame's items to its stream's shard; the returned [`Pending`] yields the
    /// outcomes. Frames of one stream submitted one after another are processed in that order.
    pub async fn submit(&self, stream: Arc<str>, items: Vec<Item>) -> Pending {
        let ids: Vec<String> = items
            .iter()
            .map(|i| match i {
                Item::Parsed(m) | Item::Analyzed(m, _) | Item::OverBudget(m) => message_id(m),
                Item::Rejected { id, .. } => id.clone(),
            })
            .collect();
        let (reply, rx) = oneshot::channel();
        if self.send(&stream.clone(), Cmd::Process { stream, items, reply }).await {
            Pending::Waiting(rx, ids)
        } else {
            Pending::Failed(ids)
        }
    }

    /// The ranked questions of a stream.
    pub async fn list(&self, stream: Arc<str>) -> Option<QuestionList> {
        let (reply, rx) = oneshot::channel();
        if !self.send(&stream.clone(), Cmd::List { stream, reply }).await {
            return None;
        }
        rx.await.ok()
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
        let (reply, rx) = oneshot::channel();
        if !self.send(&stream.clone(), Cmd::Act { stream, cluster, action, answer, reply }).await {
            return None;
        }
        rx.await.ok().flatten()
    }

    /// What the stream has answered, newest first (the FAQ for late joiners).
    pub async fn faq(&self, stream: Arc<str>) -> Option<views::Faq> {
        let (reply, rx) = oneshot::channel();
        if !self.send(&stream.clone(), Cmd::Faq { stream, reply }).await {
            return None;
        }
        rx.await.ok()
    }

    /// Every stream in memory, with what a shop running several streams looks at first.
    pub async fn overview(&self) -> Vec<views::StreamOverview> {
        let mut all = Vec::new();
        for tx in &self.senders {
            let (reply, rx) = oneshot::channel();
            if tx.try_send(Envelope { cmd: Cmd::Overview { reply }, _permit: None }).is_ok()
                && let Ok(mut v) = rx.await
            {
                all.append(&mut v);
            }
        }
        all.sort_by(|a, b| a.stream.cmp(&b.stream));
        all
    }

    /// Sets the product on screen.
    pub async fn set_product(&self, stream: Arc<str>, product: Option<String>) -> Result<(), Unavailable> {
        let (reply, rx) = oneshot::channel();
        if !self.send(&stream.clone(), Cmd::SetProduct { stream, product, reply }).await {
            return Err(Unavailable::ShuttingDown);
        }
        rx.await.unwrap_or(Err(Unavailable::ShuttingDown))
    }

    /// Replaces the stream's catalogue (journaled; later questions are matched against it).
    pub async fn set_catalog(&self, stream: Arc<str>, catalog: Arc<Catalog>) -> Result<(), Unavailable> {
        let (reply, rx) = oneshot::channel();
        if !self.send(&stream.clone(), Cmd::SetCatalog { stream, catalog, reply }).await {
            return Err(Unavailable::ShuttingDown);
        }
        rx.await.unwrap_or(Err(Unavailable::ShuttingDown))
    }

    /// The stream's catalogue (empty for a stream never given one).
    pub async fn catalog(&self, stream: Arc<str>) -> Result<Arc<Catalog>, Unavailable> {
        let (reply, rx) = oneshot::channel();
        if !self.send(&stream.clone(), Cmd::GetCatalog { stream, reply }).await {
            return Err(Unavailable::ShuttingDown);
        }
        rx.await.unwrap_or(Err(Unavailable::ShuttingDown))
    }

    /// A receiver that changes whenever the stream's queue does.
    pub async fn subscribe(&self, stream: Arc<str>) -> Result<watch::Receiver<u64>, Unavailable> {
        let (reply, rx) = oneshot::channel();
        if !self.send(&stream.clone(), Cmd::Subscribe { stream, reply }).await {
            return Err(Unavailable::ShuttingDown);
        }
        rx.await.unwrap_or(Err(Unavailable::ShuttingDown))
    }

    /// Totals over all shards.
    pub async fn stats(&self) -> ShardStats {
        let mut total = ShardStats::default();
        for tx in &self.senders {
            let (reply, rx) = oneshot::channel();
            if tx.try_send(Envelope { cmd: Cmd::Stats { reply }, _permit: None }).is_ok()
                && let Ok(s) = rx.await
            {
                total.streams += s.streams;
                total.open_questions += s.open_questions;
            }
        }
        total
    }

    /// Commands waiting over all shards.
    pub fn depth(&self) -> usize {
        self.senders.iter().map(|s| s.len()).sum()
    }

    /// Finishes queued commands, then stops and joins every shard (their journal senders go
    /// with them).
    pub fn stop(&self) {
        for s in &self.slots {
            s.close();
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        if threads.is_empty() {
            return;
        }
        for tx in &self.senders {
            let _ = tx.send(Envelope { cmd: Cmd::Stop, _permit: None });
        }
        for t in threads {
            let _ = t.join();
        }
    }
}

/// A shard thread: takes commands until stopped, running the core's periodic work between them.
fn run(mut core: Streams, rx: &Receiver<Envelope>, metrics: &Metrics, clock: &Clock) {
    loop {
        let wait = core.tick();
        let env = match rx.recv_timeout(wait) {
            Ok(env) => env,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        drop(env._permit);
        if !serve(&mut core, env.cmd, metrics, clock) {
            break;
        }
    }
    core.finish();
}

/// Answers one command; `false` for [`Cmd::Stop`].
fn serve(core: &mut Streams, cmd: Cmd, metrics: &Metrics, clock: &Clock) -> bool {
    match cmd {
        Cmd::Process { stream, items, reply } => {
            let started = clock.now();
            let out = core.process(stream, items);
            metrics.observe(Stage::Stateful, clock.since(started).as_secs_f64());
            let _ = reply.send(out);
        }
        Cmd::List { stream, reply } => {
            let _ = reply.send(core.list(stream));
        }
        Cmd::Act { stream, cluster, action, answer, reply } => {
            let _ = reply.send(core.act(stream, cluster, action, answer));
        }
        Cmd::Faq { stream, reply } => {
            let _ = reply.send(core.faq(stream));
        }
        Cmd::Overview { reply } => {
            let _ = reply.send(core.overview());
        }
        Cmd::SetProduct { stream, product, reply } => {
            let _ = reply.send(core.set_product(stream, product));
        }
        Cmd::SetCatalog { stream, catalog, reply } => {
            let _ = reply.send(core.set_catalog(stream, catalog));
        }
        Cmd::GetCatalog { stream, reply } => {
            let _ = reply.send(Ok(core.catalog(&stream)));
        }
        Cmd::Subscribe { stream, reply } => {
            let _ = reply.send(core.subscribe(&stream));
        }
        Cmd::Stats { reply } => {
            let _ = reply.send(core.stats());
        }
        Cmd::Stop => return false,
    }
    true
}
