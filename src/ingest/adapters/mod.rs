//! Platform adapters (`ingest::adapters`): kotae connects out to a platform's chat, normalizes every message into a
//! [`ChatMessage`], and carries moderation actions back.
//!
//! Each adapter is an [`Adapter`]: it owns its transport (WebSocket, HTTP polling, HTTP
//! streaming), puts [`Ingested`] items on one bounded channel shared by all adapters
//! ([`IngestSink`], policy [`WhenFull::Block`]) and takes [`ActionRequest`]s from its own bounded
//! channel ([`ActionSender`], policy [`WhenFull::Reject`]). The parsers ([`irc`], [`ndgr`],
//! [`youtube::normalize_item`]) are synchronous and free of I/O, so they are unit-, property- and
//! fuzz-tested on their own.

/// Implements [`Adapter`] for a platform adapter that has `stream: String` and
/// `metrics: Arc<AdapterMetrics>` fields and an `async fn run_inner(self, io: AdapterIo)`.
macro_rules! platform_adapter {
    ($adapter:ty, $platform:expr) => {
        impl $crate::ingest::adapters::Adapter for $adapter {
            fn platform(&self) -> $crate::ingest::adapters::Platform {
                $platform
            }
            fn stream(&self) -> &str {
                &self.stream
            }
            fn metrics(&self) -> std::sync::Arc<$crate::ingest::adapters::AdapterMetrics> {
                self.metrics.clone()
            }
            fn run(
                self: Box<Self>,
                io: $crate::ingest::adapters::AdapterIo,
            ) -> $crate::ingest::adapters::AdapterFuture {
                Box::pin(self.run_inner(io))
            }
        }
    };
}

mod actions;
pub mod chat;
pub mod config;
pub mod irc;
pub mod ndgr;
pub mod niconico;
pub mod twitch;
pub mod youtube;

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

pub use chat::{
    ActionError, ActionOutcome, Author, ChatMessage, Fragment, IdOrigin, IdScope, Ingested, MessageKind,
    ModerationAction, ModerationEvent, ModerationNotice, Paid, Platform, RawEncoding, RawFrame, Roles, Support,
};
pub use config::{AdaptersConfig, NiconicoConfig, StreamAdapters, TwitchConfig, YoutubeConfig};

/// A fault that stops an adapter (not a bad frame: those are counted and skipped).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The consumer dropped the ingest channel's receiver: nothing reads the chat any more.
    #[error("the ingest channel is closed")]
    SinkClosed,
    /// The adapter could not be built: a credential variable is not set, or its HTTP client
    /// could not be made.
    #[error("{0}")]
    Setup(String),
}

/// What a bounded channel does when it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// The sender waits (back-pressure to the platform connection); each wait is counted.
    Block,
    /// The item is refused with an error to the caller; each refusal is counted.
    Reject,
}

/// Connection state of an adapter, as a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum ConnState {
    /// Opening a connection (or the first poll); the state an adapter starts in.
    Connecting = 0,
    /// The connection delivers: chat is being read.
    Connected = 1,
    /// Waiting before the next connection attempt.
    Backoff = 2,
    /// Finished: shut down, or the platform said the live ended.
    Stopped = 3,
}

/// Why the platform says a chat is over for good. The adapter stops instead of reconnecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum EndReason {
    /// The live is over: YouTube `liveChatEnded`, `offlineAt` or `chatEndedEvent`; a Niconico
    /// view with no `next`.
    ChatEnded = 1,
    /// The chat does not exist (YouTube `liveChatNotFound`): a wrong or deleted chat id.
    ChatNotFound = 2,
    /// The chat is switched off for the live (YouTube `liveChatDisabled`).
    ChatDisabled = 3,
}

impl EndReason {
    /// Every reason, for metric labels.
    pub const ALL: [EndReason; 3] = [EndReason::ChatEnded, EndReason::ChatNotFound, EndReason::ChatDisabled];

    /// The metric label and JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::ChatEnded => "chat_ended",
            EndReason::ChatNotFound => "chat_not_found",
            EndReason::ChatDisabled => "chat_disabled",
        }
    }

    /// YouTube's `error.errors[].reason` for it.
    pub fn youtube_reason(self) -> &'static str {
        match self {
            EndReason::ChatEnded => "liveChatEnded",
            EndReason::ChatNotFound => "liveChatNotFound",
            EndReason::ChatDisabled => "liveChatDisabled",
        }
    }

    fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| *r as u8 == v)
    }
}

/// Plain atomic counters of one adapter. Read them with [`AdapterMetrics::snapshot`]; the server
/// exports the snapshot (labels: platform and a bounded state enum, never stream or user ids).
#[derive(Debug, Default)]
pub struct AdapterMetrics {
    state: AtomicU8,
    /// [`EndReason`] as `u8` once the platform said the chat is over; 0 before.
    end: AtomicU8,
    /// Successful connections (WebSocket handshakes, first successful poll or stream response).
    pub connects: AtomicU64,
    /// Connections lost or replaced (drops, RECONNECT, failed polls) after which the adapter resumed.
    pub reconnects: AtomicU64,
    /// Chat messages put on the ingest channel.
    pub messages: AtomicU64,
    /// Moderation events put on the ingest channel.
    pub moderation_events: AtomicU64,
    /// Messages seen again after a resume and dropped (by message id).
    pub duplicates: AtomicU64,
    /// Frames, lines or items that could not be parsed; each was skipped.
    pub parse_errors: AtomicU64,
    /// Times the ingest channel was full and the adapter waited ([`WhenFull::Block`]).
    pub sink_full_waits: AtomicU64,
    /// Actions the platform accepted, or that were done locally.
    pub actions_ok: AtomicU64,
    /// Actions that failed or that the platform cannot do.
    pub actions_failed: AtomicU64,
    /// Actions refused because the action channel was full ([`WhenFull::Reject`]).
    pub actions_rejected: AtomicU64,
    /// API quota units spent (YouTube: 5 per list call, 50 per delete or ban).
    pub quota_units: AtomicU64,
}

/// The counters at one instant, for printing or exporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// The connection state at the instant.
    pub state: ConnState,
    /// Set when the platform said the chat is over, and why.
    pub ended: Option<EndReason>,
    /// [`AdapterMetrics::connects`]: successful connections.
    pub connects: u64,
    /// [`AdapterMetrics::reconnects`]: connections lost or replaced, then resumed.
    pub reconnects: u64,
    /// [`AdapterMetrics::messages`]: chat messages put on the ingest channel.
    pub messages: u64,
    /// [`AdapterMetrics::moderation_events`]: moderation events put on the ingest channel.
    pub moderation_events: u64,
    /// [`AdapterMetrics::duplicates`]: messages delivered again after a resume, dropped.
    pub duplicates: u64,
    /// [`AdapterMetrics::parse_errors`]: frames, lines or items skipped as unparseable.
    pub parse_errors: u64,
    /// [`AdapterMetrics::sink_full_waits`]: waits on a full ingest channel.
    pub sink_full_waits: u64,
    /// [`AdapterMetrics::actions_ok`]: actions done.
    pub actions_ok: u64,
    /// [`AdapterMetrics::actions_failed`]: actions that failed or the platform cannot do.
    pub actions_failed: u64,
    /// [`AdapterMetrics::actions_rejected`]: actions refused by a full action channel.
    pub actions_rejected: u64,
    /// [`AdapterMetrics::quota_units`]: API quota units spent.
    pub quota_units: u64,
}

impl AdapterMetrics {
    /// Current connection state.
    pub fn state(&self) -> ConnState {
        match self.state.load(Ordering::Relaxed) {
            0 => ConnState::Connecting,
            1 => ConnState::Connected,
            2 => ConnState::Backoff,
            _ => ConnState::Stopped,
        }
    }

    pub(crate) fn set_state(&self, s: ConnState) {
        self.state.store(s as u8, Ordering::Relaxed);
    }

    /// Why the platform ended the chat, if it did.
    pub fn ended(&self) -> Option<EndReason> {
        EndReason::from_u8(self.end.load(Ordering::Relaxed))
    }

    pub(crate) fn set_ended(&self, reason: EndReason) {
        self.end.store(reason as u8, Ordering::Relaxed);
    }

    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// All counters, read one by one (not a consistent cut, which counters do not need).
    pub fn snapshot(&self) -> MetricsSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            state: self.state(),
            ended: self.ended(),
            connects: r(&self.connects),
            reconnects: r(&self.reconnects),
            messages: r(&self.messages),
            moderation_events: r(&self.moderation_events),
            duplicates: r(&self.duplicates),
            parse_errors: r(&self.parse_errors),
            sink_full_waits: r(&self.sink_full_waits),
            actions_ok: r(&self.actions_ok),
            actions_failed: r(&self.actions_failed),
            actions_rejected: r(&self.actions_rejected),
            quota_units: r(&self.quota_units),
        }
    }
}

/// The sending side of the ingest channel for one adapter. The channel is bounded
/// ([`AdaptersConfig::channel_capacity`]) with [`WhenFull::Block`]: a slow pipeline slows the
/// platform reads instead of growing memory. The consumer closes it by dropping the receiver,
/// which stops the adapters.
#[derive(Debug, Clone)]
pub struct IngestSink {
    tx: mpsc::Sender<Ingested>,
    metrics: Arc<AdapterMetrics>,
    seq: Arc<AtomicU64>,
}

impl IngestSink {
    /// A sink feeding `tx`, counting into `metrics`; its sequence numbers start at 1.
    pub fn new(tx: mpsc::Sender<Ingested>, metrics: Arc<AdapterMetrics>) -> Self {
        Self { tx, metrics, seq: Arc::new(AtomicU64::new(0)) }
    }

    /// The next ingest sequence number of this adapter.
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Puts one item on the channel, waiting when it is full.
    pub async fn send(&self, item: Ingested) -> Result<(), IngestError> {
        let counter = match &item {
            Ingested::Chat(_) => &self.metrics.messages,
            Ingested::Moderation(_) => &self.metrics.moderation_events,
        };
        match self.tx.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(item)) => {
                AdapterMetrics::inc(&self.metrics.sink_full_waits);
                self.tx.send(item).await.map_err(|_| IngestError::SinkClosed)?;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(IngestError::SinkClosed),
        }
        AdapterMetrics::inc(counter);
        Ok(())
    }
}

/// One moderation action and where to report how it went.
#[derive(Debug)]
pub struct ActionRequest {
    /// What to do on the platform.
    pub action: ModerationAction,
    /// Where the adapter sends the outcome; `None` when nobody waits for it.
    pub reply: Option<oneshot::Sender<Result<ActionOutcome, ActionError>>>,
}

/// The sending side of one adapter's action channel: bounded
/// ([`AdaptersConfig::action_capacity`]) with [`WhenFull::Reject`], because a moderator's click
/// should fail visibly rather than wait behind a stalled platform API. Dropping every sender
/// lets the adapter's action task end.
#[derive(Debug, Clone)]
pub struct ActionSender {
    tx: mpsc::Sender<ActionRequest>,
    metrics: Arc<AdapterMetrics>,
}

impl ActionSender {
    /// Queues an action and waits for its outcome.
    pub async fn perform(&self, action: ModerationAction) -> Result<ActionOutcome, ActionError> {
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(ActionRequest { action, reply: Some(reply) }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                AdapterMetrics::inc(&self.metrics.actions_rejected);
                ActionError::QueueFull
            }
            mpsc::error::TrySendError::Closed(_) => ActionError::Stopped,
        })?;
        rx.await.map_err(|_| ActionError::Stopped)?
    }
}

/// Where an adapter reads its actions and learns to stop.
pub struct AdapterIo {
    /// Where the adapter puts its chat messages and moderation events.
    pub sink: IngestSink,
    /// The adapter's action channel; it ends when every [`ActionSender`] is dropped.
    pub actions: mpsc::Receiver<ActionRequest>,
    /// Becomes `true`, or its sender is dropped, when the adapter should stop.
    pub shutdown: watch::Receiver<bool>,
}

/// The future an adapter runs as.
pub type AdapterFuture = Pin<Box<dyn Future<Output = Result<(), IngestError>> + Send>>;

/// A platform connection: reads chat into the sink, performs actions, until shutdown or the end
/// of the live. Transport-independent: implementations choose WebSocket, polling or streaming.
pub trait Adapter: Send + 'static {
    /// The platform it connects to (a metric label).
    fn platform(&self) -> Platform;
    /// The kotae stream it feeds.
    fn stream(&self) -> &str;
    /// Its counters (shared; they stay readable after `run` ends).
    fn metrics(&self) -> Arc<AdapterMetrics>;
    /// Runs until shutdown, the end of the live, or the sink closing.
    fn run(self: Box<Self>, io: AdapterIo) -> AdapterFuture;
}

/// A started adapter: its task, its action sender and its counters.
pub struct RunningAdapter {
    /// The platform it connects to.
    pub platform: Platform,
    /// The kotae stream it feeds.
    pub stream: String,
    /// Where moderation actions for its chat go; dropping every clone ends its action task.
    pub actions: ActionSender,
    /// Its counters, readable while it runs and after it ends.
    pub metrics: Arc<AdapterMetrics>,
    /// Its task: ends with `Ok` at shutdown or the end of the live, with the fault that stopped
    /// it otherwise.
    pub task: tokio::task::JoinHandle<Result<(), IngestError>>,
}

/// Builds one adapter per configured (stream, platform) pair.
pub fn build(config: &AdaptersConfig) -> Result<Vec<Box<dyn Adapter>>, IngestError> {
    let mut out: Vec<Box<dyn Adapter>> = Vec::new();
    for s in &config.streams {
        if let Some(t) = &s.twitch {
            out.push(Box::new(twitch::TwitchAdapter::new(&s.stream, t, config)?));
        }
        if let Some(y) = &s.youtube {
            out.push(Box::new(youtube::YoutubeAdapter::new(&s.stream, y, config)?));
        }
        if let Some(n) = &s.niconico {
            out.push(Box::new(niconico::NiconicoAdapter::new(&s.stream, n, config)?));
        }
    }
    Ok(out)
}

/// Spawns an adapter on the current tokio runtime, feeding `tx`.
pub fn spawn(
    adapter: Box<dyn Adapter>,
    tx: mpsc::Sender<Ingested>,
    action_capacity: usize,
    shutdown: watch::Receiver<bool>,
) -> RunningAdapter {
    let metrics = adapter.metrics();
    // The adapter's action channel: bounded, policy `Reject` (see `ActionSender`). It closes when
    // the returned `ActionSender` and all its clones are dropped.
    let (atx, arx) = mpsc::channel(action_capacity.max(1));
    let platform = adapter.platform();
    let stream = adapter.stream().to_string();
    let io = AdapterIo { sink: IngestSink::new(tx, metrics.clone()), actions: arx, shutdown };
    let task = tokio::spawn(adapter.run(io));
    RunningAdapter { platform, stream, actions: ActionSender { tx: atx, metrics: metrics.clone() }, metrics, task }
}

/// Message ids seen recently, to drop what a resumed connection delivers again. Bounded: the
/// oldest ids are forgotten first.
#[derive(Debug)]
pub struct RecentIds {
    set: HashSet<String>,
    order: VecDeque<String>,
    cap: usize,
}

impl RecentIds {
    /// Remembers the last `cap` ids (at least one).
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Self { set: HashSet::with_capacity(cap), order: VecDeque::with_capacity(cap), cap }
    }

    /// Records `id`; `false` if it was already there (a duplicate).
    pub fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() == self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.set.insert(id.to_string());
        self.order.push_back(id.to_string());
        true
    }
}

/// Exponential reconnect delay between `min` and `max`, doubled per failure, reset once a
/// connection delivers. A little jitter keeps many adapters from reconnecting in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `min`; a `max` below `min` is taken as `min`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self { min, max: max.max(min), next: min }
    }

    /// The delay before the next attempt; each call doubles the following one.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter_ms = now_ms() % (d.as_millis() as u64 / 10 + 1);
        d + Duration::from_millis(jitter_ms)
    }

    /// Back to `min`, once a connection delivers.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// Sleeps for `d` unless shutdown comes first; `true` when shutting down.
pub(crate) async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Parses an RFC 3339 timestamp (`2023-05-25T20:08:08.479833+00:00`) into Unix milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse::<i64>().ok() };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if b.len() == i + 6 && b[i + 3] == b':' => {
            let m = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'+' { m } else { -m }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    u64::try_from(secs * 1000 + millis).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_timestamps_become_unix_milliseconds() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("2023-05-25T20:08:08.479833+00:00"), Some(1_685_045_288_479));
        assert_eq!(parse_rfc3339_ms("2024-08-05T15:00:00+09:00"), Some(1_722_837_600_000));
        assert_eq!(parse_rfc3339_ms("2024-08-05T15:00:00.5Z"), Some(1_722_870_000_500));
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
        assert_eq!(parse_rfc3339_ms("2024-13-05T15:00:00Z"), None);
    }

    #[test]
    fn recent_ids_drop_repeats_and_forget_the_oldest() {
        let mut ids = RecentIds::new(2);
        assert!(ids.insert("a"));
        assert!(!ids.insert("a"));
        assert!(ids.insert("b"));
        assert!(ids.insert("c"));
        assert!(ids.insert("a"), "a was forgotten when c came in");
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(300));
        let d: Vec<u64> = (0..4).map(|_| b.next_delay().as_millis() as u64).collect();
        assert!((100..=110).contains(&d[0]) && (200..=220).contains(&d[1]), "{d:?}");
        assert!((300..=330).contains(&d[2]) && (300..=330).contains(&d[3]), "{d:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(110));
    }

    #[tokio::test]
    async fn a_full_ingest_channel_makes_the_adapter_wait_and_counts_it() {
        let metrics = Arc::new(AdapterMetrics::default());
        let (tx, mut rx) = mpsc::channel(1);
        let sink = IngestSink::new(tx, metrics.clone());
        let item = || {
            Ingested::Moderation(ModerationNotice {
                platform: Platform::Twitch,
                stream: "s".into(),
                channel: "c".into(),
                event: ModerationEvent::ChatCleared,
                sent_at_ms: None,
                raw: RawFrame { encoding: RawEncoding::Irc, bytes: bytes::Bytes::new() },
            })
        };
        sink.send(item()).await.unwrap();
        let second = tokio::spawn({
            let sink = sink.clone();
            async move { sink.send(item()).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!second.is_finished(), "the second send waits for room");
        rx.recv().await.unwrap();
        second.await.unwrap().unwrap();
        assert_eq!(metrics.snapshot().sink_full_waits, 1);
        assert_eq!(metrics.snapshot().moderation_events, 2);
    }
}
