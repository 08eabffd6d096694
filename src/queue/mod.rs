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

use crate::ingest::{Item, message_id};
use crate::label::{Action, Label, LabelSet};
use crate::message::{OutError, OutVerdict, Scores};
use crate::metrics::{Channel, Metrics, RejectReason, Stage};
use crate::moderation::Moderation;
use crate::pipeline::{Engine, Meta, StreamState};
use crate::rank::{Asked, Question, QuestionState, Queue, RankConfig, Ranked};
use crate::server::config::{FailPolicy, ServerConfig};
use crate::store::{JournalSender, Record, Restored};

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
}

/// What one message gets back.
#[derive(Debug, Clone)]
pub enum Out {
    Verdict(VerdictFrame),
    Error(OutError, RejectReason),
}

/// Outcomes of a submitted frame, to be awaited.
pub enum Pending {
    Waiting(oneshot::Receiver<Vec<Out>>, Vec<String>),
    Failed(Vec<String>),
}

impl Pending {
    /// The outcomes, one per item; items the shard could not take get a shutting-down error.
    pub async fn wait(self) -> Vec<Out> {
        let ids = match self {
            Pending::Waiting(rx, ids) => match rx.await {
                Ok(out) => return out,
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
    /// Open and pinned questions, most urgent first.
    pub questions: Vec<Ranked>,
    /// Answered questions asked again since.
    pub answered_again: Vec<AnsweredAgain>,
}

/// Totals over a shard's streams.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShardStats {
    pub streams: usize,
    pub open_questions: usize,
}

enum Cmd {
    Process { stream: Arc<str>, items: Vec<Item>, reply: oneshot::Sender<Vec<Out>> },
    List { stream: Arc<str>, reply: oneshot::Sender<QuestionList> },
    Act { stream: Arc<str>, cluster: u32, action: HostAction, reply: oneshot::Sender<Option<Question>> },
    SetProduct { stream: Arc<str>, product: Option<String>, reply: oneshot::Sender<()> },
    Subscribe { stream: Arc<str>, reply: oneshot::Sender<watch::Receiver<u64>> },
    Stats { reply: oneshot::Sender<ShardStats> },
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
    policy: FailPolicy,
    max_questions: usize,
    utc_offset: i32,
    record_messages: bool,
    stream_idle: std::time::Duration,
    /// Questions asked are journaled at most this often (zero: after every batch).
    question_interval: std::time::Duration,
}

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
}

impl StreamCtx {
    fn new(name: Arc<str>, engine: &Engine, rank: &RankConfig) -> Self {
        Self {
            name,
            state: engine.stream_state(),
            queue: Queue::new(rank),
            base: 0,
            last_ts: 0,
            last_wall: Instant::now(),
            version: watch::channel(0).0,
            touched: Instant::now(),
            max_id: 0,
            unjournaled: VecDeque::new(),
            unjournaled_ids: FxHashSet::default(),
        }
    }

    /// Idle long enough, nothing open for the host and nobody watching: safe to forget.
    fn evictable(&self, idle: std::time::Duration) -> bool {
        self.touched.elapsed() >= idle
            && self.version.receiver_count() == 0
            && !self.queue.all().any(|q| matches!(q.state, QuestionState::Open | QuestionState::Pinned))
    }

    fn now(&self) -> u64 {
        if self.last_ts == 0 { unix_ms() } else { self.last_ts + self.last_wall.elapsed().as_millis() as u64 }
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
    last_sweep: Instant,
    /// When the questions asked were last journaled.
    last_questions: Instant,
    journal: JournalSender,
    metrics: Arc<Metrics>,
    moderation: Arc<Moderation>,
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
            policy: config.on_budget_exceeded,
            max_questions: config.max_questions_per_stream.get(),
            utc_offset: config.utc_offset_minutes,
            record_messages: config.journal.record_messages,
            stream_idle: std::time::Duration::from_secs(config.stream_idle_minutes.get() * 60),
            question_interval: std::time::Duration::from_millis(config.journal.question_interval_ms),
        });
        let mut initial: Vec<HashMap<Arc<str>, StreamCtx>> = (0..n).map(|_| HashMap::new()).collect();
        for (name, st) in restored.streams {
            let name: Arc<str> = Arc::from(name);
            let mut ctx = StreamCtx::new(name.clone(), engine, rank);
            ctx.queue.current_product = st.product;
            for q in st.questions {
                ctx.base = ctx.base.max(q.cluster);
                ctx.max_id = ctx.base;
                ctx.last_ts = ctx.last_ts.max(q.last_ts);
                ctx.queue.restore(q);
            }
            initial[shard_of(&name, n)].insert(name, ctx);
        }
        let mut senders = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for (i, streams) in initial.into_iter().enumerate() {
            let (tx, rx) = bounded::<Envelope>(config.shard_queue.get());
            let mut shard = Shard {
                engine: engine.clone(),
                settings: settings.clone(),
                streams,
                evicted: HashMap::new(),
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
        let (reply, rx) = oneshot::channel();
        if !self.send(&stream.clone(), Cmd::Act { stream, cluster, action, reply }).await {
            return None;
        }
        rx.await.ok().flatten()
    }

    /// Sets the product on screen.
    pub async fn set_product(&self, stream: Arc<str>, product: Option<String>) -> bool {
        let (reply, rx) = oneshot::channel();
        self.send(&stream.clone(), Cmd::SetProduct { stream, product, reply }).await && rx.await.is_ok()
    }

    /// A receiver that changes whenever the stream's queue does.
    pub async fn subscribe(&self, stream: Arc<str>) -> Option<watch::Receiver<u64>> {
        let (reply, rx) = oneshot::channel();
        if !self.send(&stream.clone(), Cmd::Subscribe { stream, reply }).await {
            return None;
        }
        rx.await.ok()
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
                Cmd::Act { stream, cluster, action, reply } => {
                    let _ = reply.send(self.act(stream, cluster, action));
                }
                Cmd::SetProduct { stream, product, reply } => {
                    let ctx = self.stream(&stream);
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
                    let _ = reply.send(());
                }
                Cmd::Subscribe { stream, reply } => {
                    let _ = reply.send(self.stream(&stream).version.subscribe());
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

    fn stream(&mut self, name: &Arc<str>) -> &mut StreamCtx {
        let (engine, rank, evicted) = (&self.engine, &self.settings.rank, &mut self.evicted);
        let ctx = self.streams.entry(name.clone()).or_insert_with(|| {
            let mut ctx = StreamCtx::new(name.clone(), engine, rank);
            ctx.base = evicted.remove(name).unwrap_or(0);
            ctx.max_id = ctx.base;
            ctx
        });
        ctx.touched = Instant::now();
        ctx
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
                self.evicted.insert(name, ctx.max_id);
            }
        }
    }

    fn process(&mut self, stream: Arc<str>, items: Vec<Item>) -> Vec<Out> {
        let settings = self.settings.clone();
        let journal = self.journal.clone();
        let metrics = self.metrics.clone();
        let classify = self.engine.config.classify.clone();
        let moderation = self.moderation.stream(&stream);
        let mut moderation = moderation.lock().unwrap_or_else(|e| e.into_inner());
        let policy = moderation.settings.fail_policy.unwrap_or(settings.policy);
        let ctx = self.stream(&stream);
        let mut changed = false;
        let mut asked: Vec<u32> = Vec::new();
        let out = items
            .into_iter()
            .map(|item| match item {
                Item::Analyzed(m, analysis) => {
                    let ts = m.ts.unwrap_or_else(|| ctx.now());
                    if ts >= ctx.last_ts {
                        ctx.last_ts = ts;
                        ctx.last_wall = Instant::now();
                    }
                    let mut verdict = ctx.state.process(Meta { user: m.user.as_deref(), ts }, *analysis);
                    if let Some(c) = verdict.cluster.as_mut() {
                        c.id += ctx.base;
                        ctx.max_id = ctx.max_id.max(c.id);
                    }
                    let id = message_id(&m);
                    let product = ctx.queue.current_product.as_deref();
                    moderation.observe(&id, m.user.as_deref(), &m.text, ts, product, &mut verdict, &classify);
                    let mut answered_at = None;
                    if let (Some(c), Action::Allow) = (verdict.cluster, verdict.action) {
                        let q = ctx.queue.observe(&Asked {
                            cluster: c.id,
                            askers: c.askers,
                            user: m.user.as_deref(),
                            text: &m.text,
                            ts,
                            topics: &verdict.topics,
                            product: ctx.queue.current_product.clone().as_deref(),
                            paid: m.paid.unwrap_or(0),
                            intent: verdict.labels.contains(Label::PurchaseIntent),
                        });
                        if let QuestionState::Answered(at) = q.state {
                            answered_at = Some(clock(at, settings.utc_offset));
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
                    let ts = m.ts.unwrap_or_else(|| ctx.now());
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
                        },
                        degraded: Some("over_budget"),
                        answered_at: None,
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
        out
    }

    fn list(&mut self, stream: Arc<str>) -> QuestionList {
        let offset = self.settings.utc_offset;
        let ctx = self.stream(&stream);
        let now = ctx.now();
        let answered_again = ctx
            .queue
            .all()
            .filter_map(|q| match q.state {
                QuestionState::Answered(at) if q.asked_after_answer > 0 => {
                    let answered_at = clock(at, offset);
                    Some(AnsweredAgain {
                        id: format!("q{}", q.cluster),
                        why: format!("answered at {answered_at} · asked again ×{}", q.asked_after_answer),
                        answered_at,
                        asked_again: q.asked_after_answer,
                        question: q.clone(),
                    })
                }
                _ => None,
            })
            .collect();
        QuestionList {
            stream: stream.to_string(),
            now,
            current_product: ctx.queue.current_product.clone(),
            questions: ctx.queue.ranked(now),
            answered_again,
        }
    }

    fn act(&mut self, stream: Arc<str>, cluster: u32, action: HostAction) -> Option<Question> {
        let ctx = self.stream(&stream);
        let at = ctx.now();
        let q = ctx.queue.get_mut(cluster)?;
        q.state = match action {
            HostAction::Answered => {
                q.asked_after_answer = 0;
                QuestionState::Answered(at)
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
            detail: None,
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
            policy: FailPolicy::Open,
            max_questions: 10,
            utc_offset: 540,
            record_messages: false,
            stream_idle: idle,
            question_interval: std::time::Duration::from_millis(250),
        };
        let shard = Shard {
            engine: engine.clone(),
            settings: Arc::new(settings),
            streams: HashMap::new(),
            evicted: HashMap::new(),
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
        };
        let a = analyzer.analyze(text).expect("analyzed");
        match &shard.process(stream.clone(), vec![Item::Analyzed(m, Box::new(a))])[0] {
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
        assert!(shard.act(s.clone(), 1, HostAction::Answered).is_some());
        shard.sweep();
        assert!(shard.streams.is_empty(), "nothing open, nobody watching: forgotten");
        assert_eq!(ask(&mut shard, &mut analyzer, &s, "送料いくらですか"), "q2", "ids continue after eviction");
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

    #[test]
    fn host_actions_parse_from_their_path_segment() {
        assert_eq!(HostAction::parse("answered"), Some(HostAction::Answered));
        assert_eq!(HostAction::parse("pin"), Some(HostAction::Pin));
        assert_eq!(HostAction::parse("delete"), None);
    }
}
