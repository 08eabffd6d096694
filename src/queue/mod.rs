//! The host queue: each stream's questions, their urgency and the host's ranked list.
//!
//! It owns no thread and no I/O: a stream's [`crate::stream`] core feeds it the questions asked
//! and the host's actions, and asks it for the ranked list.
//!
//! A question cluster's urgency is an explicit sum, each term configurable and each shown to the
//! host in a short "why" (`×7 asked · size · on screen · waiting 2m`):
//! more distinct askers; a purchase-blocking topic (skin, size, stock, price, shipping, payment);
//! the product on screen now; minutes waited; paid messages; purchase intent in the same line.
//! Answered or dismissed questions leave the queue; an answered cluster asked again shows as
//! answered instead of coming back as new. Stale clusters sink.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::i18n::{self, Locale};
use crate::money::{self, Money, PaidRates};

/// Urgency weights.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RankConfig {
    /// Points per distinct asker beyond the first.
    #[serde(default = "RankConfig::d_asker")]
    pub per_asker: f32,
    /// Points for each purchase-blocking topic, by `topics.txt` section name; others score 0.
    #[serde(default = "RankConfig::d_topics")]
    pub topics: HashMap<String, f32>,
    /// Points when the question is about the product on screen now.
    #[serde(default = "RankConfig::d_on_screen")]
    pub on_screen: f32,
    /// Points per minute waited, up to `wait_cap_minutes`.
    #[serde(default = "RankConfig::d_wait")]
    pub per_minute_waiting: f32,
    /// Waiting stops adding points after this many minutes.
    #[serde(default = "RankConfig::d_wait_cap")]
    pub wait_cap_minutes: f32,
    /// Points per 100 paid in the cluster (in `paid_rates.currency`, yen by default), up to `paid_cap`.
    #[serde(default = "RankConfig::d_paid")]
    pub per_100_paid: f32,
    /// Upper bound of the paid term.
    #[serde(default = "RankConfig::d_paid_cap")]
    pub paid_cap: f32,
    /// Points when an asker also showed purchase intent in the same line.
    #[serde(default = "RankConfig::d_intent")]
    pub purchase_intent: f32,
    /// A cluster nobody asked for this many minutes is stale: its score is multiplied by `stale_factor`.
    #[serde(default = "RankConfig::d_stale_after")]
    pub stale_after_minutes: f32,
    /// Multiplier for stale clusters (0–1).
    #[serde(default = "RankConfig::d_stale_factor")]
    pub stale_factor: f32,
    /// How amounts paid in any currency become one value for the paid term.
    #[serde(default)]
    pub paid_rates: PaidRates,
}

impl RankConfig {
    fn d_asker() -> f32 {
        2.0
    }
    fn d_topics() -> HashMap<String, f32> {
        [
            ("skin", 4.0),
            ("size", 3.0),
            ("stock", 3.0),
            ("price", 2.5),
            ("shipping", 2.5),
            ("delivery", 2.5),
            ("payment", 2.5),
            ("material", 1.0),
            ("care", 1.0),
            ("color", 1.5),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
    fn d_on_screen() -> f32 {
        3.0
    }
    fn d_wait() -> f32 {
        0.5
    }
    fn d_wait_cap() -> f32 {
        10.0
    }
    fn d_paid() -> f32 {
        0.5
    }
    fn d_paid_cap() -> f32 {
        10.0
    }
    fn d_intent() -> f32 {
        2.0
    }
    fn d_stale_after() -> f32 {
        10.0
    }
    fn d_stale_factor() -> f32 {
        0.3
    }

    /// Values the types cannot reject.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(0.0..=1.0).contains(&self.stale_factor) {
            p.push(format!("rank.stale_factor {} is not within 0–1", self.stale_factor));
        }
        p.extend(self.paid_rates.problems("rank.paid_rates"));
        for (name, v) in [
            ("per_asker", self.per_asker),
            ("on_screen", self.on_screen),
            ("per_minute_waiting", self.per_minute_waiting),
            ("per_100_paid", self.per_100_paid),
        ] {
            if v < 0.0 || !v.is_finite() {
                p.push(format!("rank.{name} {v} must be a non-negative number"));
            }
        }
        p
    }
}

impl Default for RankConfig {
    fn default() -> Self {
        Self {
            per_asker: Self::d_asker(),
            topics: Self::d_topics(),
            on_screen: Self::d_on_screen(),
            per_minute_waiting: Self::d_wait(),
            wait_cap_minutes: Self::d_wait_cap(),
            per_100_paid: Self::d_paid(),
            paid_cap: Self::d_paid_cap(),
            purchase_intent: Self::d_intent(),
            stale_after_minutes: Self::d_stale_after(),
            stale_factor: Self::d_stale_factor(),
            paid_rates: PaidRates::default(),
        }
    }
}

/// Where a question stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "at")]
pub enum QuestionState {
    /// In the host's ranked list, by urgency.
    Open,
    /// Put at the top of the list by the host, above every open question; never trimmed.
    Pinned,
    /// Answered at this time (ms).
    Answered(u64),
    /// Dismissed by the host at this time (stream time, Unix ms): out of the list; like
    /// answered ones, trimmed first from a full queue.
    Dismissed(u64),
}

/// One asker's wording of a question. Boxed strings (no spare capacity, 16 bytes each): a
/// stream keeps up to `max_questions_per_stream` × [`MAX_WORDINGS`] of them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Wording {
    /// Who asked it this way; `None` when the platform sent no user.
    pub user: Option<Box<str>>,
    /// The message's original text.
    pub text: Box<str>,
    /// When it was asked, Unix milliseconds (stream time).
    pub ts: u64,
}

/// A question cluster as the host sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Question {
    /// The question's id within its stream (shown as `q<id>`): the dedupe stage's cluster.
    pub cluster: u32,
    /// Serialized inline: `"state": "answered", "at": 1732230000000`.
    #[serde(flatten)]
    pub state: QuestionState,
    /// When it was first asked, Unix milliseconds: the waiting term counts from it.
    pub first_ts: u64,
    /// When it was last asked, Unix milliseconds: a cluster goes stale counting from it.
    pub last_ts: u64,
    /// Distinct askers so far (a repeat by the same user counts once).
    pub askers: u32,
    /// First few wordings (at most [`MAX_WORDINGS`]).
    pub wordings: Vec<Wording>,
    /// Purchase-blocking topics its asks named (`topics.txt` section names), in the order
    /// first named.
    pub topics: Vec<String>,
    /// How many asks named each of `topics` (same order): the cluster is about the most named.
    #[serde(default)]
    pub topic_counts: Vec<u32>,
    /// The product it is about (named, else on screen when first asked); `None` with `shop`.
    pub product: Option<String>,
    /// About the shop as a whole (shipping, payment, coupons, the stream).
    #[serde(default)]
    pub shop: bool,
    /// What was paid, converted to `rank.paid_rates.currency` (yen by default), in whole units:
    /// what the paid term ranks by.
    pub paid: u64,
    /// What was paid, per currency as paid (US$4.99, 200 bits): what the host is shown.
    #[serde(default)]
    pub paid_amounts: Vec<Money>,
    /// An asker also showed purchase intent in the same line (the `purchase_intent` term).
    pub intent: bool,
    /// Times asked again after being answered.
    pub asked_after_answer: u32,
    /// What the host answered, when they typed it (`POST …/answered {"answer"}`): carried in
    /// the verdicts of the question asked again and listed in the FAQ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Box<str>>,
}

/// The most-asked question about the product on screen ranks at least this high.
pub const ON_SCREEN_TOP: usize = 3;

/// Wordings kept per question.
pub const MAX_WORDINGS: usize = 5;

/// A question with its urgency, as listed to the host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ranked {
    /// The id host actions name it by: `q<cluster>`.
    pub id: String,
    /// Urgency: the sum of the [`RankConfig`] terms (times `stale_factor` when stale),
    /// rounded to two decimals.
    pub score: f32,
    /// The terms behind `score` in the server's locale (`×7 asked · size · on screen ·
    /// waiting 2m`).
    pub why: String,
    /// The name of the product the question is about (from the stream's catalogue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    /// The question itself, serialized inline.
    #[serde(flatten)]
    pub question: Question,
}

/// A question asked, as the queue observes it.
#[derive(Debug, Clone)]
pub struct Asked<'a> {
    /// The question cluster the dedupe stage put the message in (the question's id).
    pub cluster: u32,
    /// The cluster's distinct askers so far, as the dedupe stage counts them.
    pub askers: u32,
    /// The sender; `None` when the platform sent no user.
    pub user: Option<&'a str>,
    /// The message's original text (kept as a wording).
    pub text: &'a str,
    /// When it was sent, Unix milliseconds (stream time).
    pub ts: u64,
    /// Purchase-blocking topics the message names (`topics.txt` section names).
    pub topics: &'a [String],
    /// The product it is about (named, else on screen); `None` for the shop or when no product
    /// was on screen.
    pub product: Option<&'a str>,
    /// About the shop as a whole.
    pub shop: bool,
    /// Amount paid with this ask, in its own currency.
    pub paid: Option<Money>,
    /// The message is also labelled purchase intent.
    pub intent: bool,
}

/// The ranked question queue of one stream.
#[derive(Debug, Default)]
pub struct Queue {
    config: RankConfig,
    /// Boxed: the table keeps spare buckets, and a question is 150 bytes.
    questions: HashMap<u32, Box<Question>>,
    /// The product on screen now.
    pub current_product: Option<String>,
    /// The language of the "why".
    locale: Locale,
}

impl Queue {
    /// An empty queue ranked by `config`, its "why" in the default locale until
    /// [`Queue::set_locale`].
    pub fn new(config: &RankConfig) -> Self {
        Self { config: config.clone(), questions: HashMap::new(), current_product: None, locale: Locale::default() }
    }

    /// Sets the language the "why" is written in (`server.locale`).
    pub fn set_locale(&mut self, locale: Locale) {
        self.locale = locale;
    }

    /// Records a question; returns the question's state after it.
    pub fn observe(&mut self, a: &Asked<'_>) -> &Question {
        let q = self.questions.entry(a.cluster).or_insert_with(|| {
            Box::new(Question {
                cluster: a.cluster,
                state: QuestionState::Open,
                first_ts: a.ts,
                last_ts: a.ts,
                askers: 0,
                wordings: Vec::new(),
                topics: Vec::new(),
                topic_counts: Vec::new(),
                product: a.product.map(str::to_string),
                shop: a.shop,
                paid: 0,
                paid_amounts: Vec::new(),
                intent: false,
                asked_after_answer: 0,
                answer: None,
            })
        });
        q.askers = q.askers.max(a.askers);
        q.last_ts = q.last_ts.max(a.ts);
        if let Some(p) = &a.paid {
            let value = self.config.paid_rates.value(p).unwrap_or(0.0);
            q.paid = q.paid.saturating_add(value.round() as u64);
            money::add_to_totals(&mut q.paid_amounts, p);
        }
        q.intent |= a.intent;
        for t in a.topics {
            match q.topics.iter().position(|x| x == t) {
                Some(i) => {
                    q.topic_counts.resize(q.topics.len(), 1);
                    q.topic_counts[i] += 1;
                }
                None => {
                    q.topics.push(t.clone());
                    q.topic_counts.resize(q.topics.len(), 1);
                }
            }
        }
        if q.wordings.len() < MAX_WORDINGS && !q.wordings.iter().any(|w| *w.text == *a.text) {
            // Exact growth: at most five, and a doubling Vec would hold room for eight.
            q.wordings.reserve_exact(1);
            q.wordings.push(Wording { user: a.user.map(Box::from), text: Box::from(a.text), ts: a.ts });
        }
        if matches!(q.state, QuestionState::Answered(_)) {
            q.asked_after_answer += 1;
        }
        q
    }

    /// Sets a question's state; `false` when the cluster is unknown.
    pub fn set_state(&mut self, cluster: u32, state: QuestionState) -> bool {
        match self.questions.get_mut(&cluster) {
            Some(q) => {
                q.state = state;
                true
            }
            None => false,
        }
    }

    /// A question by cluster.
    pub fn get(&self, cluster: u32) -> Option<&Question> {
        self.questions.get(&cluster).map(|q| &**q)
    }

    /// A question by cluster, for host actions that change more than its state.
    pub fn get_mut(&mut self, cluster: u32) -> Option<&mut Question> {
        self.questions.get_mut(&cluster).map(|q| &mut **q)
    }

    /// Removes a question (a full queue trims its least useful one).
    pub fn remove(&mut self, cluster: u32) -> Option<Question> {
        self.questions.remove(&cluster).map(|q| *q)
    }

    fn values(&self) -> impl Iterator<Item = &Question> {
        self.questions.values().map(|q| &**q)
    }

    /// Questions held, in any state.
    pub fn len(&self) -> usize {
        self.questions.len()
    }

    /// Whether the queue holds no question.
    pub fn is_empty(&self) -> bool {
        self.questions.is_empty()
    }

    /// The question to drop when the queue is full: the closed (answered or dismissed) one
    /// asked longest ago, else the lowest-ranked open one; pinned questions and `keep` (the
    /// question just asked, which would otherwise always rank lowest) are never dropped.
    pub fn trim_candidate(&self, now: u64, keep: u32) -> Option<u32> {
        self.trim_candidates(now, keep, 1).first().copied()
    }

    /// The `n` questions to drop, in the order of [`Queue::trim_candidate`]. Trimming several at
    /// once keeps a full queue from scoring every question on every new one.
    pub fn trim_candidates(&self, now: u64, keep: u32, n: usize) -> Vec<u32> {
        let mut closed: Vec<&Question> = self
            .values()
            .filter(|q| q.cluster != keep)
            .filter(|q| matches!(q.state, QuestionState::Answered(_) | QuestionState::Dismissed(_)))
            .collect();
        closed.sort_by_key(|q| (q.last_ts, q.cluster));
        let mut out: Vec<u32> = closed.iter().take(n).map(|q| q.cluster).collect();
        if out.len() < n {
            let mut open: Vec<(f32, &Question)> = self
                .values()
                .filter(|q| q.state == QuestionState::Open && q.cluster != keep)
                .map(|q| (self.urgency(q, now, None), q))
                .collect();
            open.sort_by(|a, b| {
                a.0.total_cmp(&b.0).then(b.1.first_ts.cmp(&a.1.first_ts)).then(a.1.cluster.cmp(&b.1.cluster))
            });
            out.extend(open.iter().take(n - out.len()).map(|(_, q)| q.cluster));
        }
        out
    }

    /// Inserts a question as restored from a journal.
    pub fn restore(&mut self, q: Question) {
        self.questions.insert(q.cluster, Box::new(q));
    }

    /// Urgency of a question at time `now` (ms), with its "why" in the queue's locale.
    pub fn score(&self, q: &Question, now: u64) -> (f32, String) {
        let mut why = Vec::new();
        let score = self.urgency(q, now, Some(&mut why));
        (score, why.join(i18n::text(self.locale, "why.sep")))
    }

    /// The urgency alone, without its "why" (what trimming a full queue compares).
    fn urgency(&self, q: &Question, now: u64, mut why: Option<&mut Vec<String>>) -> f32 {
        // Each part of the "why" is a catalogue text (`why.…`), written only when asked for.
        let locale = self.locale;
        let mut note = |part: &dyn Fn() -> String| {
            if let Some(why) = why.as_deref_mut() {
                why.push(part());
            }
        };
        let c = &self.config;
        let mut score = 0.0;
        if q.askers > 1 {
            score += c.per_asker * (q.askers - 1) as f32;
        }
        note(&|| i18n::format(locale, "why.asked", &[&q.askers]));
        // The topic most of the asks named (one asker mentioning skin does not make a price
        // question a skin question); ties go to the heavier topic.
        let mut topic_best: Option<(&str, u32, f32)> = None;
        for (i, t) in q.topics.iter().enumerate() {
            let n = q.topic_counts.get(i).copied().unwrap_or(1);
            let w = c.topics.get(t).copied().unwrap_or(0.0);
            if topic_best.is_none_or(|(_, bn, bw)| n > bn || (n == bn && w > bw)) {
                topic_best = Some((t, n, w));
            }
        }
        if let Some((t, _, w)) = topic_best {
            score += w;
            note(&|| i18n::topic(locale, t));
        }
        if q.product.is_some() && q.product == self.current_product {
            score += c.on_screen;
            note(&|| i18n::text(locale, "why.on_screen").into());
        }
        if q.intent {
            score += c.purchase_intent;
            note(&|| i18n::text(locale, "why.buying").into());
        }
        if q.paid > 0 || !q.paid_amounts.is_empty() {
            score += (c.per_100_paid * q.paid as f32 / 100.0).min(c.paid_cap);
            note(&|| paid_note(q, c, locale));
        }
        let waited = now.saturating_sub(q.first_ts) as f32 / 60_000.0;
        score += c.per_minute_waiting * waited.min(c.wait_cap_minutes);
        note(&|| {
            if waited < 1.0 {
                i18n::format(locale, "why.wait_s", &[&((waited * 60.0) as u32)])
            } else {
                i18n::format(locale, "why.wait_m", &[&(waited as u32)])
            }
        });
        let idle = now.saturating_sub(q.last_ts) as f32 / 60_000.0;
        if idle >= c.stale_after_minutes {
            score *= c.stale_factor;
            note(&|| i18n::text(locale, "why.stale").into());
        }
        if q.state == QuestionState::Pinned
            && let Some(why) = why
        {
            why.insert(0, i18n::text(locale, "why.pinned").into());
        }
        score
    }

    /// Open and pinned questions, pinned first, then by urgency (ties: older first).
    pub fn ranked(&self, now: u64) -> Vec<Ranked> {
        let mut out: Vec<Ranked> = self
            .values()
            .filter(|q| matches!(q.state, QuestionState::Open | QuestionState::Pinned))
            .map(|q| {
                let (score, why) = self.score(q, now);
                Ranked {
                    id: format!("q{}", q.cluster),
                    score: (score * 100.0).round() / 100.0,
                    why,
                    product_name: None,
                    question: q.clone(),
                }
            })
            .collect();
        out.sort_by(|a, b| {
            let pa = a.question.state == QuestionState::Pinned;
            let pb = b.question.state == QuestionState::Pinned;
            pb.cmp(&pa)
                .then(b.score.total_cmp(&a.score))
                .then(a.question.first_ts.cmp(&b.question.first_ts))
                .then(a.question.cluster.cmp(&b.question.cluster))
        });
        self.keep_on_screen_in_view(&mut out);
        out
    }

    /// The most-asked open question about the product on screen is always among the first
    /// [`ON_SCREEN_TOP`] (after pinned ones): the host is talking about that product now. When it
    /// ranks lower it is moved up, not re-scored, so the others keep their order, and its "why"
    /// says so.
    fn keep_on_screen_in_view(&self, out: &mut [Ranked]) {
        let Some(on) = self.current_product.as_deref() else { return };
        let best = out
            .iter()
            .enumerate()
            .filter(|(_, r)| r.question.state == QuestionState::Open && r.question.product.as_deref() == Some(on))
            .max_by(|(i, a), (j, b)| a.question.askers.cmp(&b.question.askers).then(j.cmp(i)))
            .map(|(i, _)| i);
        let Some(i) = best else { return };
        let pinned = out.iter().take_while(|r| r.question.state == QuestionState::Pinned).count();
        let slot = pinned.max(ON_SCREEN_TOP - 1);
        if i > slot {
            let locale = self.locale;
            out[i].why =
                format!("{}{}{}", i18n::text(locale, "why.on_screen_top"), i18n::text(locale, "why.sep"), out[i].why);
            out[slot..=i].rotate_right(1);
        }
    }

    /// Every question, in cluster order (for journals and tests).
    pub fn all(&self) -> impl Iterator<Item = &Question> {
        let mut v: Vec<&Question> = self.values().collect();
        v.sort_by_key(|q| q.cluster);
        v.into_iter()
    }
}

/// The paid part of the "why": each currency as paid (`投げ銭 US$4.99＋200 bits`, `paid US$4.99
/// + 200 bits`); questions journaled before amounts kept their currency show their converted total.
fn paid_note(q: &Question, c: &RankConfig, locale: Locale) -> String {
    if q.paid_amounts.is_empty() {
        let total = Money { amount: q.paid, currency: c.paid_rates.currency, exponent: 0 };
        return i18n::format(locale, "why.paid", &[&total.display()]);
    }
    let parts: Vec<String> = q.paid_amounts.iter().map(Money::display).collect();
    i18n::format(locale, "why.paid", &[&parts.join(i18n::text(locale, "why.paid_sep"))])
}

#[cfg(test)]
mod tests;
