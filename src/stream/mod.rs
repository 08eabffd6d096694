//! The synchronous per-stream core: what happens to a stream's messages and host actions, with
//! no thread, channel or I/O of its own.
//!
//! [`Streams`] owns the streams of one shard ([`ctx`]: dedupe and clusters, the host queue, the
//! stream's time, question-id reservations). A frame goes dedupe → moderation decision → host
//! queue → journal records in [`Streams::process`]; host actions, the product on screen and the
//! catalogue are methods beside it; [`views`] builds what host screens read. Time comes from
//! one injectable [`Clock`], so tests can hold it still or move it on. Who calls it, from which
//! thread and under which lock, is [`crate::runtime::shards`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::catalog::Catalog;
use crate::i18n::Locale;
use crate::ingest::{Item, message_id};
use crate::message::{OutError, OutVerdict};
use crate::metrics::{Metrics, Refusal, RejectReason};
use crate::moderation::Moderation;
use crate::pipeline::Engine;
use crate::queue::{Question, QuestionState, RankConfig, Ranked};
use crate::runtime::clock::Clock;
use crate::server::config::{FailPolicy, ServerConfig};
use crate::store::{JournalSender, Record, RestoredStream};

mod ctx;
mod process;
mod snapshot;
#[cfg(test)]
mod tests;
pub mod views;

#[cfg(test)]
use ctx::ID_BLOCK;
use ctx::StreamCtx;
pub use snapshot::StreamSnapshot;

/// A verdict frame: the contract's verdict plus optional flags.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictFrame {
    /// The verdict as `kotae classify` writes it, serialized inline.
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
    /// Its verdict.
    Verdict(VerdictFrame),
    /// An error instead of a verdict, and why (for `kotae_rejected_total`).
    Error(OutError, RejectReason),
}

/// A frame's outcomes, as [`Streams::process`] gives them.
pub struct Processed {
    /// One outcome per message of the frame, in the frame's order.
    pub outs: Vec<Out>,
    /// When the outcomes carry question ids beyond the stream's durable reservation: wait until
    /// the journal has committed one covering them, so an id that reached the platform is never
    /// issued again after a crash.
    pub durable: Option<(watch::Receiver<u32>, u32)>,
}

/// A host action on a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostAction {
    /// Answered (aloud, or with a typed answer): it leaves the list, and viewers asking it
    /// again are told when. Answering again keeps the first answer's time.
    Answered,
    /// Kept above every open question until unpinned.
    Pin,
    /// Back among the open questions, ranked by urgency.
    Unpin,
    /// Taken off the list without an answer.
    Dismiss,
    /// Back on the list as open, from answered or dismissed.
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
    pub(crate) fn as_str(self) -> &'static str {
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
    /// The question id (`q12`).
    pub id: String,
    /// The local time it was answered (`12:03`, `server.utc_offset_minutes`).
    pub answered_at: String,
    /// Times asked since it was answered.
    pub asked_again: u32,
    /// The note shown to the host, in the server's locale (`answered at 12:03 · asked again ×3`).
    pub why: String,
    /// The question itself, serialized inline.
    #[serde(flatten)]
    pub question: Question,
}

/// The host's view of a stream.
#[derive(Debug, Clone, Serialize)]
pub struct QuestionList {
    /// The stream's name, as in the path.
    pub stream: String,
    /// Stream time (ms) the ranking was computed at.
    pub now: u64,
    /// The id of the product on screen; `None` when none is.
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
    /// The id messages, questions and `current_product` refer to it by.
    pub id: String,
    /// The name shown to the host.
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
    /// Streams with state in memory (`kotae_streams`).
    pub streams: usize,
    /// Open and pinned questions (`kotae_open_questions`).
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

/// `HH:MM` of a millisecond timestamp at a UTC offset.
pub fn clock(ms: u64, utc_offset_minutes: i32) -> String {
    let minutes = (ms / 60_000) as i64 + utc_offset_minutes as i64;
    format!("{:02}:{:02}", minutes.div_euclid(60).rem_euclid(24), minutes.rem_euclid(60))
}

/// What every stream of a server shares: limits, policy, locale.
#[derive(Debug)]
pub struct Settings {
    /// How questions are ranked.
    pub rank: RankConfig,
    /// The language of the "why" and answered notes.
    pub locale: Locale,
    /// The verdict of a message not analyzed within the budget.
    pub policy: FailPolicy,
    /// Questions kept per stream (the lowest ranked are trimmed past it).
    pub max_questions: usize,
    /// Minutes east of UTC, for answered times.
    pub utc_offset: i32,
    /// Every message is journaled.
    pub record_messages: bool,
    /// A stream idle this long, with nothing open and nobody watching, is forgotten.
    pub stream_idle: Duration,
    /// Questions asked are journaled at most this often (zero: after every batch).
    pub question_interval: Duration,
    /// Streams in memory over all shards, at most `max_streams`.
    pub max_streams: usize,
    /// Streams in memory now, over all shards.
    pub live_streams: Arc<std::sync::atomic::AtomicUsize>,
    /// A message `ts` further than this ahead of the wall clock is clamped to it.
    pub max_ts_skew: u64,
}

impl Settings {
    /// The server's settings.
    pub fn of(rank: &RankConfig, config: &ServerConfig) -> Self {
        Self {
            rank: rank.clone(),
            locale: config.locale,
            policy: config.on_budget_exceeded,
            max_questions: config.max_questions_per_stream.get(),
            utc_offset: config.utc_offset_minutes,
            record_messages: config.journal.record_messages,
            stream_idle: Duration::from_secs(config.stream_idle_minutes.get() * 60),
            question_interval: Duration::from_millis(config.journal.question_interval_ms),
            max_streams: config.max_streams.get(),
            live_streams: Arc::default(),
            max_ts_skew: config.max_ts_skew_ms.get(),
        }
    }
}

/// How often due questions are looked for and journaled.
pub const QUESTION_TICK: Duration = Duration::from_millis(10);

/// The streams one owner (a shard's lock holder, or a test) holds, and what they share.
pub struct Streams {
    engine: Arc<Engine>,
    settings: Arc<Settings>,
    streams: HashMap<Arc<str>, StreamCtx>,
    /// Question ids to continue from, per evicted stream (a few bytes each).
    evicted: HashMap<Arc<str>, u32>,
    /// The catalogues of evicted streams, given back if they come back.
    evicted_catalogs: HashMap<Arc<str>, Arc<Catalog>>,
    last_sweep: std::time::Instant,
    /// When the questions asked were last journaled.
    last_questions: std::time::Instant,
    journal: JournalSender,
    metrics: Arc<Metrics>,
    moderation: Arc<Moderation>,
    clock: Clock,
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

impl Streams {
    /// No streams yet.
    pub fn new(
        engine: Arc<Engine>,
        settings: Arc<Settings>,
        journal: JournalSender,
        metrics: Arc<Metrics>,
        moderation: Arc<Moderation>,
        clock: Clock,
    ) -> Self {
        let now = clock.now();
        Self {
            engine,
            settings,
            streams: HashMap::new(),
            evicted: HashMap::new(),
            evicted_catalogs: HashMap::new(),
            last_sweep: now,
            last_questions: now,
            journal,
            metrics,
            moderation,
            clock,
        }
    }

    /// Takes back a stream the journal restored: its questions, product and catalogue, with ids
    /// continuing above everything it reserved. A stream with nothing to show only keeps where
    /// its ids continue.
    pub fn restore(&mut self, name: Arc<str>, st: RestoredStream) {
        let base = st.questions.iter().map(|q| q.cluster).fold(st.reserved, u32::max);
        if st.questions.is_empty() && st.product.is_none() && st.catalog.is_none() {
            self.evicted.insert(name, base);
            return;
        }
        let s = &self.settings;
        let mut ctx = StreamCtx::new(name.clone(), &self.engine, &s.rank, s.locale, &self.clock);
        ctx.queue.current_product = st.product;
        ctx.continue_from(base);
        if let Some(spec) = st.catalog
            && let Ok(c) = Catalog::compile(spec, &self.engine.config.normalize)
        {
            ctx.state.set_catalog(Arc::new(c));
        }
        for q in st.questions {
            ctx.last_ts = ctx.last_ts.max(q.last_ts);
            ctx.queue.restore(q);
        }
        s.live_streams.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.streams.insert(name, ctx);
    }

    /// The periodic work, each part when due: forgetting idle streams every quarter of
    /// `stream_idle` (at least 10 ms), journaling due questions every [`QUESTION_TICK`].
    /// Returns how long until the next part is due.
    pub fn tick(&mut self) -> Duration {
        let sweep_every = (self.settings.stream_idle / 4).max(Duration::from_millis(10));
        let interval = self.settings.question_interval;
        if self.clock.since(self.last_sweep) >= sweep_every {
            self.sweep();
        }
        if !interval.is_zero() && self.clock.since(self.last_questions) >= QUESTION_TICK {
            self.journal_questions(false);
        }
        let mut next = sweep_every.saturating_sub(self.clock.since(self.last_sweep));
        if !interval.is_zero() {
            next = next.min(QUESTION_TICK.saturating_sub(self.clock.since(self.last_questions)));
        }
        next.max(Duration::from_millis(1))
    }

    /// Before stopping: every question still waiting is journaled.
    pub fn finish(&mut self) {
        self.journal_questions(true);
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
            let s = &self.settings;
            let mut ctx = StreamCtx::new(name.clone(), &self.engine, &s.rank, s.locale, &self.clock);
            ctx.continue_from(self.evicted.remove(name).unwrap_or(0));
            if let Some(c) = self.evicted_catalogs.remove(name) {
                ctx.state.set_catalog(c);
            }
            self.streams.insert(name.clone(), ctx);
        }
        let now = self.clock.now();
        let ctx = self.streams.get_mut(name)?;
        ctx.touched = now;
        Some(ctx)
    }

    /// Journals, each once in its current state, the questions first asked (since they were last
    /// journaled) `question_interval` ago or more; all of them when `all`. A question changes with
    /// nearly every message that asks it, and each journal write rewrites its table page: at full
    /// load over 10 streams, journaling them after every batch was 85% of the journal's bytes.
    /// Going by each question's own time spreads the writes over the interval instead of
    /// sending every question at once. Until journaled they count as journal lag.
    pub(crate) fn journal_questions(&mut self, all: bool) {
        let now = self.clock.now();
        self.last_questions = now;
        let interval = self.settings.question_interval;
        for ctx in self.streams.values_mut() {
            while let Some(&(since, cluster)) = ctx.unjournaled.front() {
                if !all && now.saturating_duration_since(since) < interval {
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
    pub(crate) fn sweep(&mut self) {
        self.last_sweep = self.clock.now();
        let idle = self.settings.stream_idle;
        let clock = &self.clock;
        let gone: Vec<Arc<str>> =
            self.streams.values().filter(|c| c.evictable(idle, clock)).map(|c| c.name.clone()).collect();
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

    /// Sets the product on screen (journaled, and as a host action).
    pub fn set_product(&mut self, stream: Arc<str>, product: Option<String>) -> Result<(), Unavailable> {
        let clock = self.clock.clone();
        let ctx = self.stream(&stream).ok_or(Unavailable::TooManyStreams)?;
        let at = ctx.now(&clock);
        ctx.queue.current_product = product.clone();
        ctx.changed();
        self.journal.send(Record::Product { stream: stream.clone(), product: product.clone() });
        self.journal.send(Record::HostAction { stream, cluster: None, action: "product", at, detail: product });
        Ok(())
    }

    /// Replaces the stream's catalogue (journaled).
    pub fn set_catalog(&mut self, stream: Arc<str>, catalog: Arc<Catalog>) -> Result<(), Unavailable> {
        let ctx = self.stream(&stream).ok_or(Unavailable::TooManyStreams)?;
        ctx.state.set_catalog(catalog.clone());
        ctx.changed();
        self.journal.send(Record::Catalog { stream, catalog: catalog.spec().clone() });
        Ok(())
    }

    /// The stream's catalogue; a read creates no stream state.
    pub fn catalog(&self, stream: &str) -> Arc<Catalog> {
        match self.streams.get(stream) {
            Some(ctx) => ctx.state.catalog().clone(),
            None => self.evicted_catalogs.get(stream).cloned().unwrap_or_else(Catalog::empty),
        }
    }

    /// A receiver that changes whenever the stream's queue does.
    pub fn subscribe(&mut self, stream: &Arc<str>) -> Result<watch::Receiver<u64>, Unavailable> {
        self.stream(stream).map(|c| c.version.subscribe()).ok_or(Unavailable::TooManyStreams)
    }

    /// Totals over these streams.
    pub fn stats(&self) -> ShardStats {
        let open = self
            .streams
            .values()
            .map(|s| s.queue.all().filter(|q| matches!(q.state, QuestionState::Open | QuestionState::Pinned)).count())
            .sum();
        ShardStats { streams: self.streams.len(), open_questions: open }
    }

    /// Applies a host action; `None` when the stream or question is unknown.
    pub fn act(&mut self, stream: Arc<str>, cluster: u32, action: HostAction, answer: AnswerText) -> Option<Question> {
        let now = self.clock.now();
        let ctx = self.streams.get_mut(&stream)?;
        ctx.touched = now;
        let at = ctx.now(&self.clock);
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
