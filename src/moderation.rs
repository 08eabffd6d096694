//! What moderators see and steer per stream: per-stream settings (fail-open/closed, hold
//! thresholds, slow mode), the held messages awaiting a decision, the last messages (for dry
//! runs of dictionary edits), blocked counts and the purchase-intent ticker; and the audit log
//! of every moderator change.
//!
//! Shard threads call [`StreamModeration::observe`] once per message, with the stream's lock
//! taken once per frame; HTTP handlers take the same lock briefly to read or decide. Every
//! collection here is bounded (see the `MAX_*` constants): the oldest entry goes first.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

mod audit;
mod held;

pub use audit::{Audit, AuditEntry, audit_path_for};
use held::why_held;
pub use held::{Held, HeldState};

use serde::{Deserialize, Serialize};

use crate::label::{Action, Label, LabelSet};
use crate::pipeline::Verdict;
use crate::pipeline::classify::{ClassifyConfig, Reason, Severity};
use crate::server::config::FailPolicy;

/// Messages kept per stream for dry runs of dictionary edits.
pub const MAX_RECENT: usize = 500;
/// Held messages kept per stream (decided ones are dropped first).
pub const MAX_HELD: usize = 500;
/// Minutes of purchase-intent ticker kept per stream.
pub const TICKER_MINUTES: u64 = 120;
/// Users remembered per stream for slow mode; beyond it, the longest-quiet are forgotten.
const MAX_SLOW_USERS: usize = 50_000;
/// Streams kept; beyond it, streams idle for [`IDLE_EVICT_MS`] with default settings and nothing
/// pending are forgotten when a new one arrives, and a moderator cannot set up a new stream.
pub const MAX_STREAMS: usize = 1024;
/// Streams kept at most, whatever they hold: past it, the least recently touched is forgotten
/// (logged). Messages only arrive for streams the shards admitted (`max_streams`), so this is
/// reached only by streams left with pending holds or settings.
const HARD_MAX_STREAMS: usize = 2 * MAX_STREAMS;
/// How long a stream must have been quiet to be forgotten.
const IDLE_EVICT_MS: u64 = 30 * 60 * 1000;

/// A stream's moderation settings; `None` means the server-wide default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSettings {
    /// Verdict when the pipeline misses its latency budget: `open` (allow) or `closed` (hold).
    pub fail_policy: Option<FailPolicy>,
    /// Spam or abuse scoring at least this is held for a moderator (0–1).
    pub hold_at: Option<f64>,
    /// Spam or abuse scoring at least this is blocked outright (0–1, not below `hold_at`); 1 never
    /// blocks automatically: everything flagged waits for a moderator.
    pub block_at: Option<f64>,
    /// A viewer may post once per this many seconds; faster messages are blocked. 0 = off.
    pub slow_mode_seconds: u32,
}

impl StreamSettings {
    /// Every invalid value, described.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (name, v) in [("hold_at", self.hold_at), ("block_at", self.block_at)] {
            if let Some(v) = v
                && !(0.0..=1.0).contains(&v)
            {
                p.push(format!("{name} {v} is not within 0–1"));
            }
        }
        if let (Some(h), Some(b)) = (self.hold_at, self.block_at)
            && b < h
        {
            p.push(format!("block_at {b} is below hold_at {h}"));
        }
        if self.slow_mode_seconds > 3600 {
            p.push(format!("slow_mode_seconds {} is over an hour", self.slow_mode_seconds));
        }
        p
    }
}

/// One message as the dry run replays it.
#[derive(Debug, Clone, Serialize)]
pub struct Recent {
    /// The message's id, as its verdict echoed it.
    pub id: String,
    /// The sender; `None` when the platform sent no user.
    pub user: Option<String>,
    /// The original text.
    pub text: String,
    /// When it was sent, Unix milliseconds (stream time).
    pub ts: u64,
    /// The labels it was given (written as a list of names).
    #[serde(serialize_with = "label_list")]
    pub labels: LabelSet,
    /// The action it got, after the stream's thresholds and slow mode.
    pub action: Action,
}

fn label_list<S: serde::Serializer>(labels: &LabelSet, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(labels.iter())
}

/// Reads what [`label_list`] wrote.
fn list_labels<'de, D: serde::Deserializer<'de>>(d: D) -> Result<LabelSet, D::Error> {
    let mut set = LabelSet::default();
    for l in Vec::<Label>::deserialize(d)? {
        set.insert(l);
    }
    Ok(set)
}

/// Purchase intents in one minute, by product on screen (`""` when none was).
#[derive(Debug, Clone, Serialize)]
pub struct TickerMinute {
    /// Stream time, ms, start of the minute.
    pub minute: u64,
    /// Product id on screen → purchase intents let through in the minute.
    pub products: BTreeMap<String, u32>,
}

/// What the host screen shows beside the questions.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The stream's name.
    pub stream: String,
    /// Messages seen since the stream's moderation state was created, degraded ones included.
    pub messages: u64,
    /// Blocked messages, in total and by label (spam, abuse, slow_mode).
    pub blocked: u64,
    /// Blocked messages by cause: `spam`, `abuse` or `slow_mode`.
    pub blocked_by: BTreeMap<&'static str, u64>,
    /// Held messages still waiting for a moderator's decision.
    pub held_pending: usize,
    /// Messages that got the fail-open or fail-closed verdict (not analyzed in time).
    pub degraded: Degraded,
    /// Purchase intents per product, in total.
    pub intents: BTreeMap<String, u32>,
    /// The last minutes, oldest first.
    pub ticker: Vec<TickerMinute>,
}

/// One stream's moderation state. Guarded by a mutex: the stream's shard thread writes it once
/// per frame, the moderator's HTTP requests read and decide.
#[derive(Debug, Default)]
pub struct StreamModeration {
    /// What the stream's moderators set (`PUT /v1/streams/ID/settings`); defaults until then.
    pub settings: StreamSettings,
    recent: VecDeque<Recent>,
    held: VecDeque<Held>,
    messages: u64,
    blocked: u64,
    blocked_by: BTreeMap<&'static str, u64>,
    intents: BTreeMap<String, u32>,
    /// Minute (ms) → product → purchase intents.
    ticker: BTreeMap<u64, BTreeMap<String, u32>>,
    /// User → time (ms) of the last message slow mode let through.
    last_post: HashMap<String, u64>,
    /// Wall-clock ms of the last message or moderator change, for eviction.
    touched: u64,
    degraded: Degraded,
}

/// A stream's degraded verdicts: messages answered without analysis because they were not
/// analyzed within the latency budget (`over_budget`).
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Degraded {
    /// Since the stream's moderation state was created.
    pub total: u64,
    /// Wall-clock ms of the last one.
    pub last_at: Option<u64>,
}

impl StreamModeration {
    /// Applies this stream's settings to a verdict and records the message. Called by the
    /// stream's shard before the verdict goes anywhere.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        id: &str,
        user: Option<&str>,
        text: &str,
        ts: u64,
        product: Option<&str>,
        verdict: &mut Verdict,
        classify: &ClassifyConfig,
    ) {
        self.messages += 1;
        self.touched = crate::runtime::clock::unix_ms();
        let s = &self.settings;
        if s.hold_at.is_some() || s.block_at.is_some() {
            let bad = f64::from(verdict.scores[Label::Spam.index()].max(verdict.scores[Label::Abuse.index()]));
            let labelled = verdict.labels.contains(Label::Spam) || verdict.labels.contains(Label::Abuse);
            let block_at = s.block_at.unwrap_or(f64::from(classify.block_at));
            let hold_at = s.hold_at.unwrap_or(if labelled { 0.0 } else { f64::INFINITY });
            // Abuse of low severity (a fraud accusation) always waits for a person.
            let low = verdict.labels.contains(Label::Abuse)
                && !verdict.labels.contains(Label::Spam)
                && verdict.category.is_some_and(|c| classify.severity.of(c) == Severity::Low);
            verdict.action = if block_at < 1.0 && bad >= block_at && labelled && !low {
                Action::Block
            } else if bad >= hold_at {
                Action::Hold
            } else {
                Action::Allow
            };
        }
        let mut slow = false;
        if s.slow_mode_seconds > 0
            && let Some(u) = user
        {
            let window = u64::from(s.slow_mode_seconds) * 1000;
            match self.last_post.get(u) {
                Some(&last) if ts < last.saturating_add(window) && ts >= last => slow = true,
                _ => {
                    if self.last_post.len() >= MAX_SLOW_USERS {
                        let cutoff = ts.saturating_sub(window);
                        self.last_post.retain(|_, t| *t >= cutoff);
                        if self.last_post.len() >= MAX_SLOW_USERS {
                            self.last_post.clear();
                        }
                    }
                    self.last_post.insert(u.to_string(), ts);
                }
            }
        }
        if slow && verdict.action == Action::Allow {
            verdict.action = Action::Block;
            verdict.reasons.push(Reason { label: Label::Spam, rule: Arc::from("kotae.slow_mode"), span: [0, 0] });
        }
        match verdict.action {
            Action::Block => {
                self.blocked += 1;
                let by = if slow {
                    "slow_mode"
                } else if verdict.labels.contains(Label::Abuse) {
                    "abuse"
                } else {
                    "spam"
                };
                *self.blocked_by.entry(by).or_default() += 1;
            }
            Action::Hold => {
                let why = why_held(verdict.labels, &verdict.scores, &verdict.reasons, verdict.category, text);
                self.hold(Held {
                    id: id.to_string(),
                    user: user.map(str::to_string),
                    text: text.to_string(),
                    ts,
                    labels: verdict.labels,
                    scores: verdict.scores,
                    reasons: verdict.reasons.clone(),
                    category: verdict.category,
                    why,
                    state: HeldState::Pending,
                    decided_by: None,
                    decided_at: None,
                });
            }
            Action::Allow => {
                if verdict.labels.contains(Label::PurchaseIntent) {
                    let p = product.unwrap_or("").to_string();
                    *self.intents.entry(p.clone()).or_default() += 1;
                    *self.ticker.entry(ts - ts % 60_000).or_default().entry(p).or_default() += 1;
                    while self.ticker.len() as u64 > TICKER_MINUTES {
                        self.ticker.pop_first();
                    }
                }
            }
        }
        if self.recent.len() >= MAX_RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(Recent {
            id: id.to_string(),
            user: user.map(str::to_string),
            text: text.to_string(),
            ts,
            labels: verdict.labels,
            action: verdict.action,
        });
    }

    /// Records a message that missed the latency budget and got `action`.
    pub fn over_budget(&mut self, id: &str, user: Option<&str>, text: &str, ts: u64, action: Action) {
        self.messages += 1;
        self.touched = crate::runtime::clock::unix_ms();
        self.degraded.total += 1;
        self.degraded.last_at = Some(self.touched);
        if action == Action::Hold {
            self.hold(Held {
                id: id.to_string(),
                user: user.map(str::to_string),
                text: text.to_string(),
                ts,
                labels: LabelSet::default(),
                scores: [0.0; 4],
                reasons: Vec::new(),
                category: None,
                why: "not checked in time (fail-closed)".into(),
                state: HeldState::Pending,
                decided_by: None,
                decided_at: None,
            });
        }
    }

    fn hold(&mut self, h: Held) {
        if self.held.len() >= MAX_HELD {
            // Drop the oldest decided one, else the oldest.
            match self.held.iter().position(|h| h.state != HeldState::Pending) {
                Some(i) => {
                    self.held.remove(i);
                }
                None => {
                    self.held.pop_front();
                }
            }
        }
        self.held.push_back(h);
    }

    /// The last messages, oldest first (at most `n`).
    pub fn recent(&self, n: usize) -> Vec<Recent> {
        self.recent.iter().skip(self.recent.len().saturating_sub(n)).cloned().collect()
    }

    /// Every held message kept, oldest first, as a cluster snapshot keeps them.
    pub fn export_held(&self) -> Vec<Held> {
        self.held.iter().cloned().collect()
    }

    /// Replaces the held messages with a snapshot's (oldest first), at most [`MAX_HELD`].
    pub fn import_held(&mut self, held: Vec<Held>) {
        let skip = held.len().saturating_sub(MAX_HELD);
        self.held = held.into_iter().skip(skip).collect();
    }

    /// Held messages, newest first; pending only unless `all`.
    pub fn held(&self, all: bool) -> Vec<Held> {
        self.held.iter().rev().filter(|h| all || h.state == HeldState::Pending).cloned().collect()
    }

    /// Whether forgetting this stream loses nothing a moderator set or still has to decide.
    fn forgettable(&self, now: u64) -> bool {
        self.settings == StreamSettings::default()
            && !self.held.iter().any(|h| h.state == HeldState::Pending)
            && now.saturating_sub(self.touched) >= IDLE_EVICT_MS
    }

    /// Approves or denies a held message; `None` when there is no such message.
    pub fn decide(&mut self, id: &str, approve: bool, who: &str, at: u64) -> Option<Held> {
        let h = self.held.iter_mut().rev().find(|h| h.id == id)?;
        h.state = if approve { HeldState::Approved } else { HeldState::Denied };
        h.decided_by = Some(who.to_string());
        h.decided_at = Some(at);
        Some(h.clone())
    }

    /// The stream's degraded (not analyzed in time) verdicts.
    pub fn degraded(&self) -> Degraded {
        self.degraded
    }

    /// Counts and the ticker for the host screen.
    pub fn summary(&self, stream: &str) -> Summary {
        Summary {
            stream: stream.to_string(),
            messages: self.messages,
            blocked: self.blocked,
            blocked_by: self.blocked_by.clone(),
            held_pending: self.held.iter().filter(|h| h.state == HeldState::Pending).count(),
            degraded: self.degraded,
            intents: self.intents.clone(),
            ticker: self.ticker.iter().map(|(m, p)| TickerMinute { minute: *m, products: p.clone() }).collect(),
        }
    }
}

/// Moderation state of every stream, and the audit log.
#[derive(Debug)]
pub struct Moderation {
    /// Stream → its state (at most `MAX_STREAMS`, idle ones forgotten first). The map lock is
    /// held only to find, add or forget a stream.
    streams: RwLock<HashMap<Arc<str>, Arc<Mutex<StreamModeration>>>>,
    /// Where every moderator change is recorded.
    pub audit: Audit,
}

impl Moderation {
    /// No stream state yet; moderator changes go to `audit`.
    pub fn new(audit: Audit) -> Self {
        Self { streams: RwLock::new(HashMap::new()), audit }
    }

    /// The state of `stream` if it has any (reads never create it).
    pub fn get(&self, stream: &str) -> Option<Arc<Mutex<StreamModeration>>> {
        self.streams.read().unwrap_or_else(|e| e.into_inner()).get(stream).cloned()
    }

    /// The state of `stream`, created on first use (messages of a stream the shards admitted).
    pub fn stream(&self, stream: &str) -> Arc<Mutex<StreamModeration>> {
        self.create(stream, HARD_MAX_STREAMS).unwrap_or_else(|| Arc::new(Mutex::new(StreamModeration::default())))
    }

    /// The state of `stream`, created for a moderator's change only while fewer than
    /// [`MAX_STREAMS`] streams are kept; `None` past that.
    pub fn stream_for_change(&self, stream: &str) -> Option<Arc<Mutex<StreamModeration>>> {
        self.create(stream, MAX_STREAMS)
    }

    fn create(&self, stream: &str, cap: usize) -> Option<Arc<Mutex<StreamModeration>>> {
        if let Some(s) = self.get(stream) {
            return Some(s);
        }
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        if streams.len() >= MAX_STREAMS && !streams.contains_key(stream) {
            let now = crate::runtime::clock::unix_ms();
            streams.retain(|_, s| !s.try_lock().is_ok_and(|s| s.forgettable(now)));
        }
        if streams.len() >= cap && !streams.contains_key(stream) {
            if cap < HARD_MAX_STREAMS {
                return None;
            }
            let oldest = streams
                .iter()
                .min_by_key(|(_, s)| s.try_lock().map_or(u64::MAX, |s| s.touched))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                tracing::warn!(stream = %k, "moderation state of the least recently used stream forgotten");
                streams.remove(&k);
            }
        }
        Some(
            streams
                .entry(Arc::from(stream))
                .or_insert_with(|| {
                    Arc::new(Mutex::new(StreamModeration {
                        touched: crate::runtime::clock::unix_ms(),
                        ..Default::default()
                    }))
                })
                .clone(),
        )
    }

    /// Streams seen so far, sorted.
    pub fn streams(&self) -> Vec<String> {
        let mut v: Vec<String> =
            self.streams.read().unwrap_or_else(|e| e.into_inner()).keys().map(|k| k.to_string()).collect();
        v.sort();
        v
    }

    /// The stream's fail policy override, if any.
    pub fn fail_policy(&self, stream: &str) -> Option<FailPolicy> {
        let s = self.streams.read().unwrap_or_else(|e| e.into_inner()).get(stream).cloned()?;
        s.lock().unwrap_or_else(|e| e.into_inner()).settings.fail_policy
    }
}

#[cfg(test)]
mod tests;
