//! Messages held for a moderator: what is kept of each, where it stands, and the one line that
//! says why it was held.

use serde::Serialize;

use super::label_list;
use crate::label::{Label, LabelSet};
use crate::pipeline::classify::{AbuseCategory, Reason};

/// Where a held message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldState {
    Pending,
    Approved,
    Denied,
}

/// A message held for a moderator, with why.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    /// The message id (as in its verdict).
    pub id: String,
    pub user: Option<String>,
    pub text: String,
    pub ts: u64,
    #[serde(serialize_with = "label_list")]
    pub labels: LabelSet,
    pub scores: [f32; 4],
    pub reasons: Vec<Reason>,
    /// The kind of abuse, when labelled abuse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<AbuseCategory>,
    /// One line for people: "abuse 0.62 insult (ja.abuse.insult「バカ」)" or "over latency budget".
    pub why: String,
    pub state: HeldState,
    /// Who decided, and when (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<u64>,
}

pub(super) fn why_held(
    labels: LabelSet,
    scores: &[f32; 4],
    reasons: &[Reason],
    category: Option<AbuseCategory>,
    text: &str,
) -> String {
    let mut parts = Vec::new();
    for l in [Label::Spam, Label::Abuse] {
        if labels.contains(l) || reasons.iter().any(|r| r.label == l) {
            let mut s = format!("{} {:.2}", l.as_str(), scores[l.index()]);
            if let Some(c) = category.filter(|_| l == Label::Abuse) {
                s.push(' ');
                s.push_str(c.as_str());
            }
            let rules: Vec<String> = reasons
                .iter()
                .filter(|r| r.label == l)
                .take(3)
                .map(|r| {
                    let (a, b) = (r.span[0] as usize, (r.span[1] as usize).min(text.len()));
                    match text.get(a..b) {
                        Some(m) if !m.is_empty() && b - a < text.len() => format!("{}「{m}」", r.rule),
                        _ => r.rule.to_string(),
                    }
                })
                .collect();
            if !rules.is_empty() {
                s.push_str(&format!(" ({})", rules.join(", ")));
            }
            parts.push(s);
        }
    }
    if parts.is_empty() {
        let top = [Label::Spam, Label::Abuse]
            .into_iter()
            .max_by(|a, b| scores[a.index()].total_cmp(&scores[b.index()]))
            .unwrap_or(Label::Spam);
        parts.push(format!("{} {:.2} over the stream's hold threshold", top.as_str(), scores[top.index()]));
    }
    parts.join(" · ")
}
