//! Read-only views of the streams: the host's ranked list, the FAQ of what a stream has answered
//! (for late joiners) and the overview of every stream (for a shop running several).

use std::sync::Arc;

use serde::Serialize;

use super::{AnsweredAgain, ProductName, QuestionList, Streams, clock};
use crate::i18n;
use crate::queue::QuestionState;

/// One answered question, as late joiners read it.
#[derive(Debug, Clone, Serialize)]
pub struct FaqEntry {
    /// The question id (`q12`).
    pub id: String,
    /// The question as first worded by a viewer (no viewer names: the FAQ can be public).
    pub question: String,
    /// What the host answered, when they typed it; `null` when answered aloud only.
    pub answer: Option<String>,
    /// The product id it is about; `null` for the whole shop.
    pub product: Option<String>,
    /// The product's name from the stream's catalogue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    /// About the shop as a whole (shipping, payment…).
    pub shop: bool,
    /// When it was answered (stream time, ms).
    pub at: u64,
    /// The same as local time (`12:03`, `server.utc_offset_minutes`).
    pub answered_at: String,
    /// How many viewers asked it.
    pub askers: u32,
}

/// `GET /v1/streams/ID/faq`: what was answered, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct Faq {
    /// The stream's name, as in the path.
    pub stream: String,
    /// Its answered questions, newest answer first; empty for a stream not in memory.
    pub answered: Vec<FaqEntry>,
}

/// The most urgent open question of a stream.
#[derive(Debug, Clone, Serialize)]
pub struct TopQuestion {
    /// The question id (`q12`).
    pub id: String,
    /// The question as first worded by a viewer.
    pub question: String,
    /// Why it ranks first, as the host's list says it (`×7 asked · size · on screen`).
    pub why: String,
    /// How many viewers asked it.
    pub askers: u32,
    /// The name of the product it is about, from the stream's catalogue; absent for the shop
    /// or a product the catalogue does not name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
}

/// One stream as the overview shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StreamOverview {
    /// The stream's name.
    pub stream: String,
    /// The id of the product on screen; `null` when none is.
    pub current_product: Option<String>,
    /// Its name from the stream's catalogue, when the catalogue names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_product_name: Option<String>,
    /// Open questions (pinned included).
    pub open: usize,
    /// Pinned questions (also counted in `open`).
    pub pinned: usize,
    /// Questions answered and still in the queue.
    pub answered: usize,
    /// Minutes the oldest open question has waited.
    pub oldest_waiting_minutes: u64,
    /// The first of the host's ranked list (pinned ones come first); `null` when nothing is
    /// open.
    pub top: Option<TopQuestion>,
    /// Stream time of the last message (ms).
    pub last_ts: u64,
}

impl Streams {
    /// The host's view of a stream: its ranked questions at the stream's time, the answered
    /// ones asked again, the product on screen and the catalogue's names. A stream not in
    /// memory is not created: it gets an empty list (with its catalogue, if it was evicted).
    pub fn list(&mut self, stream: Arc<str>) -> QuestionList {
        let offset = self.settings.utc_offset;
        let Some(ctx) = self.streams.get_mut(&stream) else {
            return QuestionList {
                stream: stream.to_string(),
                now: self.clock.unix_ms(),
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
        ctx.touched = self.clock.now();
        let locale = self.settings.locale;
        let now = ctx.now(&self.clock);
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

    /// The FAQ of a stream in memory. An unknown stream is not created: the FAQ can be public,
    /// and a request must not make the shard keep state for a stream nobody streams.
    pub fn faq(&mut self, stream: Arc<str>) -> Faq {
        let offset = self.settings.utc_offset;
        let Some(ctx) = self.streams.get(&stream) else {
            return Faq { stream: stream.to_string(), answered: Vec::new() };
        };
        let catalog = ctx.state.catalog().clone();
        let mut answered: Vec<FaqEntry> = ctx
            .queue
            .all()
            .filter_map(|q| match q.state {
                QuestionState::Answered(at) => Some(FaqEntry {
                    id: format!("q{}", q.cluster),
                    question: q.wordings.first().map(|w| w.text.to_string()).unwrap_or_default(),
                    answer: q.answer.as_deref().map(str::to_string),
                    product: q.product.clone(),
                    product_name: q.product.as_deref().and_then(|p| catalog.name_of(p)).map(str::to_string),
                    shop: q.shop || q.product.is_none(),
                    at,
                    answered_at: clock(at, offset),
                    askers: q.askers,
                }),
                _ => None,
            })
            .collect();
        answered.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.id.cmp(&b.id)));
        Faq { stream: stream.to_string(), answered }
    }

    /// Every stream of this owner in memory, as `GET /v1/streams` shows it (unordered; the
    /// shards sort the streams of all of them by name).
    pub fn overview(&mut self) -> Vec<StreamOverview> {
        self.streams
            .values()
            .map(|ctx| {
                let now = ctx.now(&self.clock);
                let catalog = ctx.state.catalog();
                let mut open = 0;
                let mut pinned = 0;
                let mut answered = 0;
                let mut oldest = u64::MAX;
                for q in ctx.queue.all() {
                    match q.state {
                        QuestionState::Open | QuestionState::Pinned => {
                            open += 1;
                            pinned += usize::from(q.state == QuestionState::Pinned);
                            oldest = oldest.min(q.first_ts);
                        }
                        QuestionState::Answered(_) => answered += 1,
                        QuestionState::Dismissed(_) => {}
                    }
                }
                let top = ctx.queue.ranked(now).into_iter().next().map(|r| TopQuestion {
                    id: r.id,
                    question: r.question.wordings.first().map(|w| w.text.to_string()).unwrap_or_default(),
                    why: r.why,
                    askers: r.question.askers,
                    product_name: r.question.product.as_deref().and_then(|p| catalog.name_of(p)).map(str::to_string),
                });
                let current = ctx.queue.current_product.clone();
                StreamOverview {
                    stream: ctx.name.to_string(),
                    current_product_name: current.as_deref().and_then(|p| catalog.name_of(p)).map(str::to_string),
                    current_product: current,
                    open,
                    pinned,
                    answered,
                    oldest_waiting_minutes: if oldest == u64::MAX { 0 } else { now.saturating_sub(oldest) / 60_000 },
                    top,
                    last_ts: ctx.last_ts,
                }
            })
            .collect()
    }
}
