//! The JSON shapes of the contracts: an incoming message and the verdict written for it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::label::Label;
use crate::pipeline::Verdict;

/// One chat message as platforms and `kotae classify` send it. Only `text` is required;
/// unknown fields are ignored.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct InMessage {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<u64>,
    /// Paid amount (Super Chat, gifts) in the platform's smallest unit, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid: Option<u64>,
}

impl InMessage {
    /// The id as a string: the given one, or `fallback` (the line number).
    pub fn id_or(&self, fallback: impl FnOnce() -> String) -> String {
        match &self.id {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => fallback(),
            Some(other) => other.to_string(),
        }
    }
}

/// Scores by label name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Scores {
    pub question: f32,
    pub purchase_intent: f32,
    pub spam: f32,
    pub abuse: f32,
}

/// One reason in a verdict: label, rule id and byte span into the original text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutReason {
    pub label: Label,
    pub rule: std::sync::Arc<str>,
    pub span: [u32; 2],
}

/// The verdict line of `kotae classify` and frame of the ingest websocket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutVerdict {
    pub id: String,
    pub labels: Vec<Label>,
    pub action: crate::label::Action,
    pub scores: Scores,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub reasons: Vec<OutReason>,
    /// Purchase-blocking topics the message names (`size`, `stock`, `shipping`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<String>,
}

fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

impl OutVerdict {
    /// Builds the output shape. `stream` prefixes cluster ids of named streams.
    pub fn new(id: String, text_len: usize, stream: Option<&str>, v: &Verdict) -> Self {
        let cluster = v.cluster.map(|c| match stream {
            Some(s) => format!("{s}:q{}", c.id),
            None => format!("q{}", c.id),
        });
        let clamp = |x: u32| x.min(text_len as u32);
        Self {
            id,
            labels: v.labels.iter().collect(),
            action: v.action,
            scores: Scores {
                question: round3(v.scores[0]),
                purchase_intent: round3(v.scores[1]),
                spam: round3(v.scores[2]),
                abuse: round3(v.scores[3]),
            },
            cluster,
            reasons: v
                .reasons
                .iter()
                .map(|r| OutReason { label: r.label, rule: r.rule.clone(), span: [clamp(r.span[0]), clamp(r.span[1])] })
                .collect(),
            topics: v.topics.clone(),
        }
    }
}

/// The error line for input that could not be classified.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutError {
    pub id: String,
    pub error: String,
}
