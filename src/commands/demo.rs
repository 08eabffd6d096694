//! `kotae demo`: replays the bundled live stream through the pipeline and prints the host's
//! ranked questions.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::label::{Action, Label};
use crate::message::InMessage;
use crate::pipeline::{Engine, Meta};
use crate::rank::{Asked, Queue, RankConfig, Ranked};

/// One product of a stream's schedule.
#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: String,
    pub name: String,
    /// Offset from the stream start at which it is shown, in ms.
    pub shown_at_ms: u64,
    /// Words viewers use for it.
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// A stream's product schedule (`*.products.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct Schedule {
    pub stream: String,
    pub products: Vec<Product>,
}

impl Schedule {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The product on screen `offset` ms into the stream.
    pub fn on_screen(&self, offset: u64) -> Option<&Product> {
        self.products.iter().filter(|p| p.shown_at_ms <= offset).max_by_key(|p| p.shown_at_ms)
    }

    /// The product a message names, else the one on screen.
    pub fn product_for<'a>(&'a self, text: &str, offset: u64) -> Option<&'a Product> {
        self.products
            .iter()
            .find(|p| p.keywords.iter().any(|k| text.contains(k.as_str())))
            .or_else(|| self.on_screen(offset))
    }
}

/// Totals of a replay.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub messages: usize,
    pub by_action: BTreeMap<&'static str, usize>,
    pub by_label: BTreeMap<&'static str, usize>,
    pub rejected: usize,
}

/// Replays messages through the pipeline into a queue, returning the queue and totals.
pub fn replay(
    engine: &Arc<Engine>,
    rank: &RankConfig,
    messages: &[InMessage],
    schedule: &Schedule,
) -> (Queue, Summary, u64) {
    let mut analyzer = engine.analyzer();
    let mut state = engine.stream_state();
    let mut queue = Queue::new(rank);
    let mut summary = Summary::default();
    let start = messages.first().and_then(|m| m.ts).unwrap_or(0);
    let mut now = start;
    for m in messages {
        now = m.ts.unwrap_or(now);
        let offset = now - start;
        queue.current_product = schedule.on_screen(offset).map(|p| p.id.clone());
        summary.messages += 1;
        let Ok(analysis) = analyzer.analyze(&m.text) else {
            summary.rejected += 1;
            continue;
        };
        let v = state.process(Meta { user: m.user.as_deref(), ts: now }, analysis);
        *summary.by_action.entry(v.action.as_str()).or_default() += 1;
        for l in v.labels.iter() {
            *summary.by_label.entry(l.as_str()).or_default() += 1;
        }
        if let (Some(c), Action::Allow) = (v.cluster, v.action) {
            queue.observe(&Asked {
                cluster: c.id,
                askers: c.askers,
                user: m.user.as_deref(),
                text: &m.text,
                ts: now,
                topics: &v.topics,
                product: schedule.product_for(&m.text, offset).map(|p| p.id.as_str()),
                paid: m.paid.unwrap_or(0),
                intent: v.labels.contains(Label::PurchaseIntent),
            });
        }
    }
    (queue, summary, now)
}

/// Formats the top questions for a terminal.
pub fn format_top(ranked: &[Ranked], schedule: &Schedule, n: usize) -> String {
    let mut s = String::new();
    for (i, r) in ranked.iter().take(n).enumerate() {
        let product = r
            .question
            .product
            .as_deref()
            .and_then(|id| schedule.products.iter().find(|p| p.id == id))
            .map_or("", |p| p.name.as_str());
        s += &format!(
            "{:>2}. [{:>5.1}] {}  — {}\n",
            i + 1,
            r.score,
            r.question.wordings.first().map_or("", |w| w.text.as_str()),
            r.why
        );
        if !product.is_empty() {
            s += &format!("      product: {product}\n");
        }
        for w in r.question.wordings.iter().skip(1).take(3) {
            s += &format!("      also: {}\n", w.text);
        }
    }
    s
}
