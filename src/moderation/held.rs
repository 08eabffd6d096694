//! Messages held for a moderator: what is kept of each, where it stands, and the one line that
//! says why it was held.

use serde::{Deserialize, Serialize};

use super::{label_list, list_labels};
use crate::label::{Label, LabelSet};
use crate::pipeline::classify::{AbuseCategory, Reason};

/// Where a held message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldState {
    /// Waiting for a moderator (counted in the summary's `held_pending`).
    Pending,
    /// A moderator let it through.
    Approved,
    /// A moderator kept it from viewers.
    Denied,
}

/// A message held for a moderator, with why (read back from cluster snapshots too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// The message id (as in its verdict).
    pub id: String,
    /// The sender; `None` when the platform sent no user.
    pub user: Option<String>,
    /// The original text.
    pub text: String,
    /// When it was sent, Unix milliseconds (stream time).
    pub ts: u64,
    /// The labels it was given (written as a list of names); none when it was not analyzed in
    /// time.
    #[serde(serialize_with = "label_list", deserialize_with = "list_labels")]
    pub labels: LabelSet,
    /// Scores 0–1 in [`Label::SCORED`] order (question, purchase_intent, spam, abuse); zeros
    /// when it was not analyzed in time.
    pub scores: [f32; 4],
    /// The rules that matched, with byte spans into `text`.
    pub reasons: Vec<Reason>,
    /// The kind of abuse, when labelled abuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<AbuseCategory>,
    /// One line for people: "abuse 0.62 insult (ja.abuse.insult「バカ」)" or "over latency budget".
    pub why: String,
    /// Pending until a moderator approves or denies it.
    pub state: HeldState,
    /// Who decided, and when (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// Wall-clock ms of the decision; `None` while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
