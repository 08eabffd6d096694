//! Stream shards: the stateful stages and the host queue, one owner per stream.
//!
//! Each shard is a thread owning the [`StreamState`] (dedupe, clusters) and the ranked
//! [`Queue`] of the streams that hash to it, so no lock guards them. Everything that reads or
//! changes a stream (verdicts, host actions, the product on screen, listing) is a [`Cmd`] sent
//! through the shard's bounded channel; admission is a semaphore with one permit per slot
//! (policy `block`, counted in `kotae_backpressure_total{channel="shards"}`). Host screens learn
//! about changes through a `watch` channel per stream carrying a version number (one slot, so a
//! slow host screen can never make it grow).

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, bounded};
use rustc_hash::FxHashSet;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};

use crate::catalog::Catalog;
use crate::i18n::{self, Locale};
use crate::ingest::{Item, message_id};
use crate::label::{Action, Label, LabelSet};
use crate::message::{OutError, OutVerdict, Scores};
use crate::metrics::{Channel, Metrics, Refusal, RejectReason, Stage};
use crate::moderation::Moderation;
use crate::pipeline::{Engine, Meta, StreamState};
use crate::rank::{Asked, Question, QuestionState, Queue, RankConfig, Ranked};
use crate::server::config::{FailPolicy, ServerConfig};
use crate::store::{JournalSender, Record, Restored};

pub mod views;

/// A verdict frame: the contract's verdict plus optional flags.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictFrame {
    #[serde(flatten)]
    pub verdict: OutVerdict,
    /// `"over_budget"` when this is the fail-open or fail-closed verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<&'static str>,
    /// When the message's question was already answered: the local time it was ("12:03").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<String>,
    /// With `answered_at`: the answer the host typed, so the platform can reply at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Box<str>>,
}

/// What one message gets back.
#[derive(Debug, Clone)]
pub enum Out {
    Verdict(VerdictFrame),
    Error(OutError, RejectReason),
}

/// A frame's outcomes as the shard hands them back.
pub struct Processed {
    pub outs: Vec<Out>,
    /// When the outcomes carry question ids beyond the stream's durable reservation: wait until
    /// the journal has committed one covering them, so an id that reached the platform is never
    /// issued again after a crash.
    pub durable: Option<(watch::Receiver<u32>, u32)>,
}

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostAction {
    Answered,
    Pin,
    Unpin,
    Dismiss,
    Reopen,
}

impl HostAction {
    /// Parses the last path segment of `POST …/questions/QID/{action}`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "answered" => HostAction::Answered,
            "pin" => HostAction::Pin,
            "unpin" => HostAction::Unpin,
            "dismiss" => HostAction::Dismiss,
            "reopen" => HostAction::Reopen,
            _ => return None,
        })
    }
    fn as_str(self) -> &'static str {
        match self {
            HostAction::Answered => "answered",
            HostAction::Pin => "pin",
            HostAction::Unpin => "unpin",
            HostAction::Dismiss => "dismiss",
            HostAction::Reopen => "reopen",
        }
    }
}

/// An answered question that viewers asked again: shown as "answered at 12:03", not as new.
#[derive(Debug, Clone, Serialize)]
pub struct AnsweredAgain {
    pub id: String,
    pub answered_at: String,
    pub asked_again: u32,
    pub why: String,
    #[serde(flatten)]
    pub question: Question,
}

/// The host's view of a stream.
#[derive(Debug, Clone, Serialize)]
pub struct QuestionList {
    pub stream: String,
    /// Stream time (ms) the ranking was computed at.
    pub now: u64,
    pub current_product: Option<String>,
    /// The stream's products (`PUT /v1/streams/ID/catalog`), for showing names.
    pub products: Vec<ProductName>,
    /// Open and pinned questions, most urgent first.
    pub questions: Vec<Ranked>,
    /// Answered questions asked again since.
    pub answered_again: Vec<AnsweredAgain>,
}

/// A product's id and name, as the host screen shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ProductName {
    pub id: String,
    pub name: String,
}

/// The answer text sent with `answered`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AnswerText {
    /// No text sent: a text given before stays.
    #[default]
    Keep,
    /// This text (edits the one given before).
    Set(Box<str>),
    /// An empty text: the question is answered without one.
    Clear,
}

/// Totals over a shard's streams.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShardStats {
    pub streams: usize,
    pub open_questions: usize,
}

/// Why a request about a stream could not be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The shards are stopping.
    ShuttingDown,
    /// A new stream while `max_streams` are in memory.
    TooManyStreams,
}

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
pub struct Shards {
    /// One bounded channel per shard (`shard_queue`); closed by [`Shards::stop`].
    senders: Vec<Sender<Envelope>>,
    slots: Vec<Arc<Semaphore>>,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
    metrics: Arc<Metrics>,
}

/// Wall-clock milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// `HH:MM` of a millisecond timestamp at a UTC offset.
pub fn clock(ms: u64, utc_offset_minutes: i32) -> String {
    let minutes = (ms / 60_000) as i64 + utc_offset_minutes as i64;
    format!("{:02}:{:02}", minutes.div_euclid(60).rem_euclid(24), minutes.rem_euclid(60))
}

struct Settings {
    rank: RankConfig,
    /// The language of the "why" and answered notes.
    locale: Locale,
    policy: FailPolicy,
    max_questions: usize,
    utc_offset: i32,
    record_messages: bool,
    stream_idle: std::time::Duration,
    /// Questions asked are journaled at most this often (zero: after every batch).
    question_interval: std::time::Duration,
    /// Streams in memory over all shards, at most `max_streams`.
    max_streams: usize,
    live_streams: Arc<std::sync::atomic::AtomicUsize>,
    /// A message `ts` further than this ahead of the wall clock is clamped to it.
    max_ts_skew: u64,
}

/// Question ids are reserved in the journal this many at a time, the next block once half of
/// the current one is used: an id is only issued once a committed reservation covers it.
const ID_BLOCK: u32 = 1024;

struct StreamCtx {
    name: Arc<str>,
    state: StreamState,
    queue: Queue,
    /// Added to dedupe's cluster numbers, so numbers restored from the journal are never reused.
    base: u32,
    /// Stream time: the newest message timestamp, advanced by wall time since it arrived.
    last_ts: u64,
    last_wall: Instant,
    version: watch::Sender<u64>,
    /// Last command for this stream (idle streams are evicted).
    touched: Instant,
    /// Highest question id issued, so an evicted stream that comes back continues above it.
    max_id: u32,
    /// Questions asked since they were last journaled, with when they were first asked since,
    /// oldest first; and their ids.
    unjournaled: VecDeque<(Instant, u32)>,
    unjournaled_ids: FxHashSet<u32>,
    /// Highest question id a reservation sent to the journal covers.
    reserved: u32,
    /// Highest question id a committed reservation covers (set by the journal writer).
    durable: Arc<watch::Sender<u32>>,
}

impl StreamCtx {
    fn new(name: Arc<str>, engine: &Engine, rank: &RankConfig, locale: Locale) -> Self {
        let mut queue = Queue::new(rank);
        queue.set_locale(locale);
        Self {
            name,
            state: engine.stream_state(),
            queue,
            base: 0,
            last_ts: 0,
            last_wall: Instant::now(),
            version: watch::channel(0).0,
            touched: Instant::now(),
            max_id: 0,
            unjournaled: VecDeque::new(),
            unjournaled_ids: FxHashSet::default(),
            reserved: 0,
            durable: Arc::new(watch::channel(0).0),
        }
    }

    /// Starts issuing ids above `base` (restored, or left by an evicted stream).
    fn continue_from(&mut self, base: u32) {
        self.base = base;
        self.max_id = base;
        self.reserved = base;
        self.durable.send_replace(base);
    }

    /// Before question id `id` goes out: reserves the next block when half of this one is used.
    /// Returns what the frame's verdicts must wait for, if `id` is not yet durably reserved.
    fn reserve(&mut self, id: u32, journal: &JournalSender) -> Option<(watch::Receiver<u32>, u32)> {
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
    fn message_ts(&self, ts: Option<u64>, max_skew: u64) -> (u64, bool) {
        match ts {
            None => (self.now(), false),
            Some(ts) => {
                let high = unix_ms().saturating_add(max_skew);
                if ts > high { (high, true) } else { (ts, false) }
            }
        }
    }

    /// Idle long enough, nothing open for the host and nobody watching: safe to forget.
    fn evictable(&self, idle: std::time::Duration) -> bool {
        self.touched.elapsed() >= idle
            && self.version.receiver_count() == 0
            && !self.queue.all().any(|q| matches!(q.state, QuestionState::Open | QuestionState::Pinned))
    }

    fn now(&self) -> u64 {
        if self.last_ts == 0 {
            unix_ms()
        } else {
            self.last_ts.saturating_add(self.last_wall.elapsed().as_millis() as u64)
        }
    }

    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }
}

struct Shard {
    engine: Arc<Engine>,
    settings: Arc<Settings>,
    streams: HashMap<Arc<str>, StreamCtx>,
    /// Question ids to continue from, per evicted stream (a few bytes each).
    evicted: HashMap<Arc<str>, u32>,
    /// The catalogues of evicted streams, given back if they come back.
    evicted_catalogs: HashMap<Arc<str>, Arc<Catalog>>,
    last_sweep: Instant,
    /// When the questions asked were last journaled.
    last_questions: Instant,
    journal: JournalSender,
    metrics: Arc<Metrics>,
    moderation: Arc<Moderation>,
}

/// Every message of a frame for a stream that could not be created.
fn too_many_streams(items: Vec<Item>) -> Vec<Out> {
    items
        .into_iter()
        .map(|i| {
            let id = match &i {
                Item::Parsed(m) | Item::Analyzed(m, _) | Item::OverBudget(m) => message_id(m),
                Item::Rejected { id, .. } => id.clone(),
            };
            match i {
                Item::Rejected { id, error, reason } => Out::Error(OutError { id, error }, reason),
                _ => Out::Error(OutError { id, error: "too many streams".into() }, RejectReason::TooManyStreams),
            }
        })
        .collect()
}

/// How often a shard looks for questions due to be journaled.
const QUESTION_TICK: std::time::Duration = std::time::Duration::from_millis(10);

fn shard_of(stream: &str, n: usize) -> usize {
    let mut h = rustc_hash::FxHasher::default();
    stream.hash(&mut h);
    (h.finish() % n as u64) as usize
}

impl Shards {
    /// Starts the shard threads with what the journal restored.
    pub fn start(
        engine: &Arc<Engine>,
        rank: &RankConfig,
        config: &ServerConfig,
        restored: Restored,
        journal: JournalSender,
        metrics: Arc<Metrics>,
        moderation: Arc<Moderation>,
    ) -> std::io::Result<Self> {
        let n = config.shards.get();
        let settings = Arc::new(Settings {
            rank: rank.clone(),
            locale: config.locale,
            policy: config.on_budget_exceeded,
            max_questions: config.max_questions_per_stream.get(),
            utc_offset: config.utc_offset_minutes,
            record_messages: config.journal.record_messages,
            stream_idle: std::time::Duration::from_secs(config.stream_idle_minutes.get() * 60),
            question_interval: std::time::Duration::from_millis(config.journal.question_interval_ms),
            max_streams: config.max_streams.get(),
            live_streams: Arc::default(),
            max_ts_skew: config.max_ts_skew_ms.get(),
        });
        let mut initial: Vec<HashMap<Arc<str>, StreamCtx>> = (0..n).map(|_| HashMap::new()).collect();
        let mut initial_evicted: Vec<HashMap<Arc<str>, u32>> = (0..n).map(|_| HashMap::new()).collect();
        for (name, st) in restored.streams {
            let name: Arc<str> = Arc::from(name);
            let base = st.questions.iter().map(|q| q.cluster).fold(st.reserved, u32::max);
            if st.questions.is_empty() && st.product.is_none() && st.catalog.is_none() {
                // Nothing to show: only where its ids continue.
                initial_evicted[shard_of(&name, n)].insert(name, base);
                continue;
            }
            let mut ctx = StreamCtx::new(name.clone(), engine, rank, config.locale);
            ctx.queue.current_product = st.product;
            ctx.continue_from(base);
            if let Some(spec) = st.catalog
                && let Ok(c) = Catalog::compile(spec, &engine.config.normalize)
            {
                ctx.state.set_catalog(Arc::new(c));
            }
            for q in st.questions {
                ctx.last_ts = ctx.last_ts.max(q.last_ts);
                ctx.queue.restore(q);
            }
            settings.live_streams.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            initial[shard_of(&name, n)].insert(name, ctx);
        }
        let mut senders = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for (i, (streams, evicted)) in initial.into_iter().zip(initial_evicted).enumerate() {
            let (tx, rx) = bounded::<Envelope>(config.shard_queue.get());
            let mut shard = Shard {
                engine: engine.clone(),
                settings: settings.clone(),
                streams,
                evicted,
                evicted_catalogs: HashMap::new(),
                last_sweep: Instant::now(),
                last_questions: Instant::now(),
                journal: journal.clone(),
                metrics: metrics.clone(),
                moderation: moderation.clone(),
            };
            threads.push(std::thread::Builder::new().name(format!("kotae-shard-{i}")).spawn(move || shard.run(rx))?);
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

impl Shard {
    fn run(&mut self, rx: Receiver<Envelope>) {
        let sweep_every = (self.settings.stream_idle / 4).max(std::time::Duration::from_millis(10));
        let interval = self.settings.question_interval;
        let wake_every = if interval.is_zero() { sweep_every } else { sweep_every.min(QUESTION_TICK) };
        loop {
            if self.last_sweep.elapsed() >= sweep_every {
                self.sweep();
            }
            if !interval.is_zero() && self.last_questions.elapsed() >= QUESTION_TICK {
                self.journal_questions(false);
            }
            let env = match rx.recv_timeout(wake_every) {
                Ok(env) => env,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    self.journal_questions(true);
                    return;
                }
            };
            drop(env._permit);
            match env.cmd {
                Cmd::Process { stream, items, reply } => {
                    let started = Instant::now();
                    let out = self.process(stream, items);
                    self.metrics.observe(Stage::Stateful, started.elapsed().as_secs_f64());
                    let _ = reply.send(out);
                }
                Cmd::List { stream, reply } => {
                    let _ = reply.send(self.list(stream));
                }
                Cmd::Act { stream, cluster, action, answer, reply } => {
                    let _ = reply.send(self.act(stream, cluster, action, answer));
                }
                Cmd::Faq { stream, reply } => {
                    let _ = reply.send(self.faq(stream));
                }
                Cmd::Overview { reply } => {
                    let _ = reply.send(self.overview());
                }
                Cmd::SetProduct { stream, product, reply } => {
                    let Some(ctx) = self.stream(&stream) else {
                        let _ = reply.send(Err(Unavailable::TooManyStreams));
                        continue;
                    };
                    let at = ctx.now();
                    ctx.queue.current_product = product.clone();
                    ctx.changed();
                    self.journal.send(Record::Product { stream: stream.clone(), product: product.clone() });
                    self.journal.send(Record::HostAction {
                        stream,
                        cluster: None,
                        action: "product",
                        at,
                        detail: product,
                    });
                    let _ = reply.send(Ok(()));
                }
                Cmd::SetCatalog { stream, catalog, reply } => {
                    let Some(ctx) = self.stream(&stream) else {
                        let _ = reply.send(Err(Unavailable::TooManyStreams));
                        continue;
                    };
                    ctx.state.set_catalog(catalog.clone());
                    ctx.changed();
                    self.journal.send(Record::Catalog { stream, catalog: catalog.spec().clone() });
                    let _ = reply.send(Ok(()));
                }
                Cmd::GetCatalog { stream, reply } => {
                    // A read creates no stream state.
                    let catalog = match self.streams.get(&stream) {
                        Some(ctx) => ctx.state.catalog().clone(),
                        None => self.evicted_catalogs.get(&stream).cloned().unwrap_or_else(Catalog::empty),
                    };
                    let _ = reply.send(Ok(catalog));
                }
                Cmd::Subscribe { stream, reply } => {
                    let rx = self.stream(&stream).map(|c| c.version.subscribe()).ok_or(Unavailable::TooManyStreams);
                    let _ = reply.send(rx);
                }
                Cmd::Stats { reply } => {
                    let open = self
                        .streams
                        .values()
                        .map(|s| {
                            s.queue
                                .all()
                                .filter(|q| matches!(q.state, QuestionState::Open | QuestionState::Pinned))
                                .count()
                        })
                        .sum();
                    let _ = reply.send(ShardStats { streams: self.streams.len(), open_questions: open });
                }
                Cmd::Stop => {
                    self.journal_questions(true);
                    return;
                }
            }
        }
    }

    /// The stream's state, created on first use while fewer than `max_streams` streams are in
    /// memory (idle ones are forgotten first); `None` past that, counted.
    fn stream(&mut self, name: &Arc<str>) -> Option<&mut StreamCtx> {
        use std::sync::atomic::Ordering;
        if !self.streams.contains_key(name) {
            let live = self.settings.live_streams.clone();
            if live.load(Ordering::Relaxed) >= self.settings.max_streams {
                self.sweep();
            }
            if live.fetch_add(1, Ordering::Relaxed) >= self.settings.max_streams {
                live.fetch_sub(1, Ordering::Relaxed);
                self.metrics.refused(Refusal::Streams);
                return None;
            }
            let mut ctx = StreamCtx::new(name.clone(), &self.engine, &self.settings.rank, self.settings.locale);
            ctx.continue_from(self.evicted.remove(name).unwrap_or(0));
            if let Some(c) = self.evicted_catalogs.remove(name) {
                ctx.state.set_catalog(c);
            }
            self.streams.insert(name.clone(), ctx);
        }
        let ctx = self.streams.get_mut(name)?;
        ctx.touched = Instant::now();
        Some(ctx)
    }

    /// Journals, each once in its current state, the questions first asked (since they were last
    /// journaled) `question_interval` ago or more; all of them when `all`. A question changes with
    /// nearly every message that asks it, and each journal write rewrites its table page: at full
    /// load over 10 streams, journaling them after every batch was 85% of the journal's bytes.
    /// Going by each question's own time spreads the writes over the interval instead of
    /// sending every question at once. Until journaled they count as journal lag.
    fn journal_questions(&mut self, all: bool) {
        self.last_questions = Instant::now();
        let interval = self.settings.question_interval;
        for ctx in self.streams.values_mut() {
            while let Some(&(since, cluster)) = ctx.unjournaled.front() {
                if !all && since.elapsed() < interval {
                    break;
                }
                ctx.unjournaled.pop_front();
                ctx.unjournaled_ids.remove(&cluster);
                self.metrics.journal_lag.dec();
                if let Some(q) = ctx.queue.get(cluster) {
                    self.journal.send(Record::Question { stream: ctx.name.clone(), question: q.clone() });
                }
            }
        }
    }

    /// Forgets streams idle for `stream_idle_minutes` with no open question and no host
    /// screen, so memory follows the live streams, not every stream ever seen.
    fn sweep(&mut self) {
        self.last_sweep = Instant::now();
        let idle = self.settings.stream_idle;
        let gone: Vec<Arc<str>> = self.streams.values().filter(|c| c.evictable(idle)).map(|c| c.name.clone()).collect();
        if gone.iter().any(|name| self.streams.get(name).is_some_and(|c| !c.unjournaled.is_empty())) {
            self.journal_questions(true);
        }
        for name in gone {
            if let Some(ctx) = self.streams.remove(&name) {
                tracing::debug!(stream = %name, "idle stream evicted");
                self.settings.live_streams.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                // Ids continue above everything reserved, issued or not.
                if !ctx.state.catalog().is_empty() {
                    self.evicted_catalogs.insert(name.clone(), ctx.state.catalog().clone());
                }
                self.evicted.insert(name, ctx.reserved.max(ctx.max_id));
            }
        }
    }

    fn process(&mut self, stream: Arc<str>, items: Vec<Item>) -> Processed {
        let settings = self.settings.clone();
        let journal = self.journal.clone();
        let metrics = self.metrics.clone();
        let classify = self.engine.config.classify.clone();
        if self.stream(&stream).is_none() {
            return Processed { outs: too_many_streams(items), durable: None };
        }
        let moderation = self.moderation.stream(&stream);
        let mut moderation = moderation.lock().unwrap_or_else(|e| e.into_inner());
        let policy = moderation.settings.fail_policy.unwrap_or(settings.policy);
        let Some(ctx) = self.stream(&stream) else {
            return Processed { outs: too_many_streams(items), durable: None };
        };
        let mut changed = false;
        let mut asked: Vec<u32> = Vec::new();
        let mut durable = None;
        let out = items
            .into_iter()
            .map(|item| match item {
                Item::Analyzed(m, analysis) => {
                    let (ts, clamped) = ctx.message_ts(m.ts, settings.max_ts_skew);
                    if clamped {
                        metrics.refused(Refusal::Timestamp);
                    }
                    if ts >= ctx.last_ts {
                        ctx.last_ts = ts;
                        ctx.last_wall = Instant::now();
                    }
                    let mut verdict = ctx.state.process(
                        Meta { user: m.user.as_deref(), ts, product: ctx.queue.current_product.as_deref() },
                        *analysis,
                    );
                    if let Some(c) = verdict.cluster.as_mut() {
                        c.id = c.id.saturating_add(ctx.base);
                        if c.id > ctx.max_id {
                            ctx.max_id = c.id;
                            if let Some(wait) = ctx.reserve(c.id, &journal) {
                                durable = Some(wait);
                            }
                        }
                    }
                    let id = message_id(&m);
                    let product = ctx.queue.current_product.as_deref();
                    moderation.observe(&id, m.user.as_deref(), &m.text, ts, product, &mut verdict, &classify);
                    let (mut answered_at, mut answer) = (None, None);
                    if let (Some(c), Action::Allow) = (verdict.cluster, verdict.action) {
                        let q = ctx.queue.observe(&Asked {
                            cluster: c.id,
                            askers: c.askers,
                            user: m.user.as_deref(),
                            text: &m.text,
                            ts,
                            topics: &verdict.topics,
                            product: verdict.about.product(),
                            shop: verdict.about.is_shop(),
                            paid: m.paid_money().ok().flatten(),
                            intent: verdict.labels.contains(Label::PurchaseIntent),
                        });
                        if let QuestionState::Answered(at) = q.state {
                            answered_at = Some(clock(at, settings.utc_offset));
                            answer = q.answer.clone();
                        }
                        if !asked.contains(&c.id) {
                            asked.push(c.id);
                        }
                        if ctx.queue.len() > settings.max_questions {
                            // Down to 90% at once, so a full queue is not re-scored per question.
                            let excess = ctx.queue.len() - settings.max_questions * 9 / 10;
                            for victim in ctx.queue.trim_candidates(ts, c.id, excess) {
                                ctx.queue.remove(victim);
                                metrics.questions_trimmed.inc();
                                journal.send(Record::QuestionRemoved { stream: ctx.name.clone(), cluster: victim });
                            }
                        }
                        changed = true;
                    }
                    let frame = VerdictFrame {
                        verdict: OutVerdict::new(id.clone(), m.text.len(), None, &verdict),
                        degraded: None,
                        answered_at,
                        answer,
                    };
                    if settings.record_messages {
                        journal.send(Record::Message {
                            stream: ctx.name.clone(),
                            id,
                            ts,
                            user: m.user,
                            text: m.text,
                            action: verdict.action,
                            labels: verdict.labels,
                            cluster: verdict.cluster.map(|c| c.id),
                            product: verdict.about.product().map(Arc::from),
                        });
                    }
                    Out::Verdict(frame)
                }
                Item::OverBudget(m) => {
                    let action = match policy {
                        FailPolicy::Open => Action::Allow,
                        FailPolicy::Closed => Action::Hold,
                    };
                    let id = message_id(&m);
                    let (ts, _) = ctx.message_ts(m.ts, settings.max_ts_skew);
                    moderation.over_budget(&id, m.user.as_deref(), &m.text, ts, action);
                    if settings.record_messages {
                        journal.send(Record::Message {
                            stream: ctx.name.clone(),
                            id: id.clone(),
                            ts,
                            user: m.user,
                            text: m.text,
                            action,
                            labels: LabelSet::default(),
                            cluster: None,
                            product: ctx.queue.current_product.as_deref().map(Arc::from),
                        });
                    }
                    Out::Verdict(VerdictFrame {
                        verdict: OutVerdict {
                            id,
                            labels: Vec::new(),
                            action,
                            scores: Scores { question: 0.0, purchase_intent: 0.0, spam: 0.0, abuse: 0.0 },
                            cluster: None,
                            reasons: Vec::new(),
                            abuse_category: None,
                            topics: Vec::new(),
                            product: None,
                            shop: false,
                        },
                        degraded: Some("over_budget"),
                        answered_at: None,
                        answer: None,
                    })
                }
                Item::Rejected { id, error, reason } => Out::Error(OutError { id, error }, reason),
                Item::Parsed(m) => Out::Error(
                    OutError { id: message_id(&m), error: "server is shutting down".into() },
                    RejectReason::ShuttingDown,
                ),
            })
            .collect();
        // Each question asked is journaled once per `question_interval`, in its state then (the
        // record is an upsert); one trimmed meanwhile was journaled as removed.
        for cluster in asked {
            if settings.question_interval.is_zero() {
                if let Some(q) = ctx.queue.get(cluster) {
                    journal.send(Record::Question { stream: ctx.name.clone(), question: q.clone() });
                }
            } else if ctx.unjournaled_ids.insert(cluster) {
                ctx.unjournaled.push_back((Instant::now(), cluster));
                metrics.journal_lag.inc();
            }
        }
        metrics.dedupe_evicted(ctx.state.take_evictions());
        if changed {
            ctx.changed();
        }
        Processed { outs: out, durable }
    }

    /// The stream's questions; an unknown stream is listed empty and not created (reads never
    /// make state).
    fn list(&mut self, stream: Arc<str>) -> QuestionList {
        let offset = self.settings.utc_offset;
        let Some(ctx) = self.streams.get_mut(&stream) else {
            return QuestionList {
                stream: stream.to_string(),
                now: unix_ms(),
                current_product: None,
                products: self
                    .evicted_catalogs
                    .get(&stream)
                    .map(|c| {
                        c.products().iter().map(|p| ProductName { id: p.id.clone(), name: p.name.clone() }).collect()
                    })
                    .unwrap_or_default(),
                questions: Vec::new(),
                answered_again: Vec::new(),
            };
        };
        ctx.touched = Instant::now();
        let locale = self.settings.locale;
        let now = ctx.now();
        let answered_again = ctx
            .queue
            .all()
            .filter_map(|q| match q.state {
                QuestionState::Answered(at) if q.asked_after_answer > 0 => {
                    let answered_at = clock(at, offset);
                    Some(AnsweredAgain {
                        id: format!("q{}", q.cluster),
                        why: i18n::format(locale, "answered.again", &[&answered_at, &q.asked_after_answer]),
                        answered_at,
                        asked_again: q.asked_after_answer,
                        question: q.clone(),
                    })
                }
                _ => None,
            })
            .collect();
        let catalog = ctx.state.catalog().clone();
        let mut questions = ctx.queue.ranked(now);
        for q in &mut questions {
            q.product_name = q.question.product.as_deref().and_then(|p| catalog.name_of(p)).map(str::to_string);
        }
        QuestionList {
            stream: stream.to_string(),
            now,
            current_product: ctx.queue.current_product.clone(),
            products: catalog
                .products()
                .iter()
                .map(|p| ProductName { id: p.id.clone(), name: p.name.clone() })
                .collect(),
            questions,
            answered_again,
        }
    }

    fn act(&mut self, stream: Arc<str>, cluster: u32, action: HostAction, answer: AnswerText) -> Option<Question> {
        let ctx = self.streams.get_mut(&stream)?;
        ctx.touched = Instant::now();
        let at = ctx.now();
        let q = ctx.queue.get_mut(cluster)?;
        q.state = match action {
            HostAction::Answered => {
                q.asked_after_answer = 0;
                match answer {
                    AnswerText::Keep => {}
                    AnswerText::Set(text) => q.answer = Some(text),
                    AnswerText::Clear => q.answer = None,
                }
                // Answering again (or editing the answer) keeps the time it was first answered:
                // that is when viewers heard it, and what the FAQ and verdicts say.
                match q.state {
                    QuestionState::Answered(first) => QuestionState::Answered(first),
                    _ => QuestionState::Answered(at),
                }
            }
            HostAction::Pin => QuestionState::Pinned,
            HostAction::Unpin | HostAction::Reopen => QuestionState::Open,
            HostAction::Dismiss => QuestionState::Dismissed(at),
        };
        let q = q.clone();
        ctx.changed();
        self.journal.send(Record::HostAction {
            stream: stream.clone(),
            cluster: Some(cluster),
            action: action.as_str(),
            at,
            // The answer text as given, so the journal keeps every edit.
            detail: if action == HostAction::Answered { q.answer.as_deref().map(str::to_string) } else { None },
        });
        self.journal.send(Record::Question { stream, question: q.clone() });
        Some(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answered_times_are_shown_in_local_time() {
        // 2026-11-22 03:03 UTC is 12:03 in Japan.
        let ms = 1_795_316_580_000;
        assert_eq!(clock(ms, 540), "12:03");
        assert_eq!(clock(ms, 0), "03:03");
        assert_eq!(clock(ms, -240), "23:03");
    }

    fn shard(idle: std::time::Duration) -> (Shard, crate::pipeline::Analyzer) {
        let engine = Engine::new(crate::pipeline::PipelineConfig::default()).expect("engine");
        let metrics = Arc::new(Metrics::new());
        let settings = Settings {
            rank: RankConfig::default(),
            locale: Locale::Ja,
            policy: FailPolicy::Open,
            max_questions: 10,
            utc_offset: 540,
            record_messages: false,
            stream_idle: idle,
            question_interval: std::time::Duration::from_millis(250),
            max_streams: 4,
            live_streams: Arc::default(),
            max_ts_skew: 300_000,
        };
        let shard = Shard {
            engine: engine.clone(),
            settings: Arc::new(settings),
            streams: HashMap::new(),
            evicted: HashMap::new(),
            evicted_catalogs: HashMap::new(),
            last_sweep: Instant::now(),
            last_questions: Instant::now(),
            journal: JournalSender::disabled(metrics.clone()),
            metrics,
            moderation: Arc::new(Moderation::new(crate::moderation::Audit::open(None))),
        };
        (shard, engine.analyzer())
    }

    fn ask(shard: &mut Shard, analyzer: &mut crate::pipeline::Analyzer, stream: &Arc<str>, text: &str) -> String {
        let m = crate::message::InMessage {
            text: text.into(),
            id: Some(serde_json::Value::String("m".into())),
            stream: None,
            user: Some("u".into()),
            ts: Some(1_000),
            paid: None,
            product: None,
            paid_currency: None,
            paid_exponent: None,
        };
        let a = analyzer.analyze(text).expect("analyzed");
        match &shard.process(stream.clone(), vec![Item::Analyzed(m, Box::new(a))]).outs[0] {
            Out::Verdict(v) => v.verdict.cluster.clone().expect("a question"),
            Out::Error(e, _) => panic!("{}", e.error),
        }
    }

    #[test]
    fn idle_streams_without_open_questions_are_forgotten_and_continue_their_ids() {
        let (mut shard, mut analyzer) = shard(std::time::Duration::ZERO);
        let s: Arc<str> = Arc::from("s");
        assert_eq!(ask(&mut shard, &mut analyzer, &s, "敏感肌でも使えますか"), "q1");
        shard.sweep();
        assert_eq!(shard.streams.len(), 1, "an open question keeps the stream");
        assert!(shard.act(s.clone(), 1, HostAction::Answered, AnswerText::Keep).is_some());
        shard.sweep();
        assert!(shard.streams.is_empty(), "nothing open, nobody watching: forgotten");
        let next = ask(&mut shard, &mut analyzer, &s, "送料いくらですか");
        let n: u32 = next.trim_start_matches('q').parse().unwrap();
        assert!(n > ID_BLOCK, "ids continue above everything reserved after eviction: {next}");
    }

    #[test]
    fn questions_are_journaled_once_per_interval_in_their_latest_state() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::server::config::JournalConfig {
            path: dir.path().join("j.db"),
            ..crate::server::config::JournalConfig::default()
        };
        let (mut shard, mut analyzer) = shard(std::time::Duration::from_secs(3600));
        let (journal, _) = crate::store::Journal::open(&config, shard.metrics.clone()).unwrap();
        shard.journal = journal.sender();
        let s: Arc<str> = Arc::from("s");
        let stored = || -> Vec<(u32, u32)> {
            let conn = rusqlite::Connection::open(&config.path).unwrap();
            let mut stmt = conn.prepare("SELECT cluster, body FROM questions").unwrap();
            stmt.query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?)))
                .unwrap()
                .map(|r| {
                    let (cluster, body) = r.unwrap();
                    let q: Question = serde_json::from_str(&body).unwrap();
                    (cluster, q.askers)
                })
                .collect()
        };
        assert_eq!(ask(&mut shard, &mut analyzer, &s, "敏感肌でも使えますか"), "q1");
        assert_eq!(ask(&mut shard, &mut analyzer, &s, "敏感肌でも使えますか？"), "q1");
        journal.sender().flush();
        assert_eq!(shard.metrics.journal_lag.get(), 1, "one question waits, counted as lag");
        journal.sender().flush();
        assert!(stored().is_empty(), "not before its interval");
        shard.journal_questions(false);
        journal.sender().flush();
        assert!(stored().is_empty(), "still not before its interval");
        shard.journal_questions(true);
        journal.sender().flush();
        assert_eq!(shard.metrics.journal_lag.get(), 0);
        assert_eq!(stored(), vec![(1, 1)], "once, in its state after both asks (one asker)");
        drop(shard);
        journal.close();
    }

    fn ask_at(
        shard: &mut Shard,
        analyzer: &mut crate::pipeline::Analyzer,
        stream: &Arc<str>,
        text: &str,
        ts: u64,
    ) -> Processed {
        let m = crate::message::InMessage {
            text: text.into(),
            id: Some(serde_json::Value::String("m".into())),
            stream: None,
            user: Some(format!("u{ts}")),
            ts: Some(ts),
            paid: None,
            product: None,
            paid_currency: None,
            paid_exponent: None,
        };
        let a = analyzer.analyze(text).expect("analyzed");
        shard.process(stream.clone(), vec![Item::Analyzed(m, Box::new(a))])
    }

    fn cluster_of(p: &Processed) -> String {
        match &p.outs[0] {
            Out::Verdict(v) => v.verdict.cluster.clone().unwrap_or_default(),
            Out::Error(e, _) => e.error.clone(),
        }
    }

    #[test]
    fn a_wild_timestamp_is_clamped_and_neither_wraps_the_clock_nor_splits_a_question() {
        let (mut shard, mut analyzer) = shard(std::time::Duration::from_secs(3600));
        let s: Arc<str> = Arc::from("s");
        let now = unix_ms();
        let a = ask_at(&mut shard, &mut analyzer, &s, "敏感肌でも使えますか", now);
        let b = ask_at(&mut shard, &mut analyzer, &s, "敏感肌でも使えますか？", u64::MAX);
        let c = ask_at(&mut shard, &mut analyzer, &s, "敏感肌でも大丈夫ですか", now + 1000);
        assert_eq!(cluster_of(&a), cluster_of(&b), "one question");
        assert_eq!(cluster_of(&a), cluster_of(&c), "still one question after the wild one");
        let clock = shard.streams[&s].now();
        assert!(clock >= now && clock <= unix_ms() + 300_000 + 1000, "the clock stays near the wall clock: {clock}");
        assert_eq!(shard.metrics.refused_total(Refusal::Timestamp), 1);
        let list = shard.list(s.clone());
        let q = &list.questions[0];
        assert!(!q.why.contains("waiting") || q.why.len() < 40, "no endless waiting time: {}", q.why);
    }

    #[test]
    fn reads_do_not_create_streams_and_new_streams_stop_at_the_cap() {
        let (mut shard, mut analyzer) = shard(std::time::Duration::from_secs(3600));
        for i in 0..1000 {
            let list = shard.list(Arc::from(format!("read-{i}")));
            assert!(list.questions.is_empty());
            assert!(shard.act(Arc::from(format!("act-{i}")), 1, HostAction::Answered, AnswerText::Keep).is_none());
        }
        assert!(shard.streams.is_empty(), "reads and acts on unknown streams leave nothing");
        for i in 0..4 {
            let s: Arc<str> = Arc::from(format!("s{i}"));
            assert!(cluster_of(&ask_at(&mut shard, &mut analyzer, &s, "送料いくらですか", 1_000)).starts_with('q'));
        }
        let fifth = ask_at(&mut shard, &mut analyzer, &Arc::from("s5"), "送料いくらですか", 1_000);
        assert!(matches!(&fifth.outs[0], Out::Error(e, RejectReason::TooManyStreams) if e.error == "too many streams"));
        assert_eq!(shard.streams.len(), 4);
        assert_eq!(shard.metrics.refused_total(Refusal::Streams), 1);
    }

    #[test]
    fn a_new_question_id_goes_out_only_once_its_reservation_is_committed() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::server::config::JournalConfig {
            path: dir.path().join("j.db"),
            ..crate::server::config::JournalConfig::default()
        };
        let (mut shard, mut analyzer) = shard(std::time::Duration::from_secs(3600));
        let (journal, _) = crate::store::Journal::open(&config, shard.metrics.clone()).unwrap();
        shard.journal = journal.sender();
        let s: Arc<str> = Arc::from("s");
        let first = ask_at(&mut shard, &mut analyzer, &s, "敏感肌でも使えますか", 1_000);
        let (mut durable, id) = first.durable.expect("a new id waits for its reservation");
        assert_eq!(id, 1);
        journal.sender().flush();
        assert!(*durable.borrow_and_update() >= id, "committed");
        let again = ask_at(&mut shard, &mut analyzer, &s, "敏感肌でも使えますか？", 2_000);
        assert!(again.durable.is_none(), "an id already covered does not wait");
        drop(shard);
        journal.close();
        let (_j, restored) = crate::store::Journal::open(&config, Arc::new(Metrics::new())).unwrap();
        assert!(restored.streams["s"].reserved >= 1, "new ids continue above it after a restart");
    }

    #[test]
    fn the_faq_lists_answers_with_their_text_and_never_creates_a_stream() {
        let (mut shard, mut analyzer) = shard(std::time::Duration::from_secs(3600));
        let nobody: Arc<str> = Arc::from("nobody");
        assert!(shard.faq(nobody).answered.is_empty());
        assert!(shard.streams.is_empty(), "a FAQ request (public) keeps no state for an unknown stream");
        let s: Arc<str> = Arc::from("s");
        assert_eq!(ask(&mut shard, &mut analyzer, &s, "敏感肌でも使えますか"), "q1");
        assert_eq!(ask(&mut shard, &mut analyzer, &s, "送料いくらですか"), "q2");
        let text = AnswerText::Set("低刺激なので使えます".into());
        assert!(shard.act(s.clone(), 1, HostAction::Answered, text).is_some());
        let faq = shard.faq(s.clone());
        assert_eq!(faq.answered.len(), 1, "only answered questions");
        assert_eq!(
            (faq.answered[0].id.as_str(), faq.answered[0].answer.as_deref()),
            ("q1", Some("低刺激なので使えます"))
        );
        // Answered again without a text: the text stays; with "": it goes.
        assert!(shard.act(s.clone(), 1, HostAction::Answered, AnswerText::Keep).is_some());
        assert_eq!(shard.faq(s.clone()).answered[0].answer.as_deref(), Some("低刺激なので使えます"));
        assert!(shard.act(s.clone(), 1, HostAction::Answered, AnswerText::Clear).is_some());
        assert_eq!(shard.faq(s).answered[0].answer, None);
    }

    #[test]
    fn host_actions_parse_from_their_path_segment() {
        assert_eq!(HostAction::parse("answered"), Some(HostAction::Answered));
        assert_eq!(HostAction::parse("pin"), Some(HostAction::Pin));
        assert_eq!(HostAction::parse("delete"), None);
    }
}
