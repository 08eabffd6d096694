//! The JSON shapes of the contracts: an incoming message and the verdict written for it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::label::Label;
use crate::pipeline::Verdict;
use crate::pipeline::classify::AbuseCategory;

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
    /// The kind of abuse (`insult`, `appearance`, `sexual`, `discrimination`, `threat`, `fraud`),
    /// on messages labelled abuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abuse_category: Option<AbuseCategory>,
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
            abuse_category: v.category.filter(|_| v.labels.contains(Label::Abuse)),
            topics: v.topics.clone(),
        }
    }
}

impl OutVerdict {
    /// Appends this verdict's fields as JSON object members (`"id":…,"labels":…`, no braces),
    /// exactly as serde_json writes them, so a caller can add members of its own. Written by
    /// hand because this runs once per message on the websocket: keys and label names are
    /// constants that need no escaping, and the generic serializer's map machinery costs more
    /// than the bytes. The tests check it against the derived [`Serialize`].
    pub fn write_json_fields(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\"id\":");
        write_json_str(out, &self.id);
        out.extend_from_slice(b",\"labels\":[");
        for (i, l) in self.labels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_plain_str(out, l.as_str());
        }
        out.extend_from_slice(b"],\"action\":");
        write_plain_str(out, self.action.as_str());
        out.extend_from_slice(b",\"scores\":{\"question\":");
        write_json_f32(out, self.scores.question);
        out.extend_from_slice(b",\"purchase_intent\":");
        write_json_f32(out, self.scores.purchase_intent);
        out.extend_from_slice(b",\"spam\":");
        write_json_f32(out, self.scores.spam);
        out.extend_from_slice(b",\"abuse\":");
        write_json_f32(out, self.scores.abuse);
        out.push(b'}');
        if let Some(c) = &self.cluster {
            out.extend_from_slice(b",\"cluster\":");
            write_json_str(out, c);
        }
        out.extend_from_slice(b",\"reasons\":[");
        for (i, r) in self.reasons.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"label\":");
            write_plain_str(out, r.label.as_str());
            out.extend_from_slice(b",\"rule\":");
            write_json_str(out, &r.rule);
            out.extend_from_slice(b",\"span\":[");
            write_json_u32(out, r.span[0]);
            out.push(b',');
            write_json_u32(out, r.span[1]);
            out.extend_from_slice(b"]}");
        }
        out.push(b']');
        if let Some(c) = self.abuse_category {
            out.extend_from_slice(b",\"abuse_category\":");
            write_plain_str(out, c.as_str());
        }
        if !self.topics.is_empty() {
            out.extend_from_slice(b",\"topics\":[");
            for (i, t) in self.topics.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(out, t);
            }
            out.push(b']');
        }
    }
}

/// A JSON string: copied as is when nothing in it needs escaping (the usual case: ids, rule
/// names), else through serde_json.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        write_plain_str(out, s);
    } else {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// A JSON string known to need no escaping (label and action names).
fn write_plain_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

fn write_json_f32(out: &mut Vec<u8>, x: f32) {
    // serde_json's own formatting (shortest round-trip, `null` when not finite).
    let _ = serde_json::to_writer(&mut *out, &x);
}

fn write_json_u32(out: &mut Vec<u8>, x: u32) {
    let _ = serde_json::to_writer(&mut *out, &x);
}

/// The error line for input that could not be classified.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutError {
    pub id: String,
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label::{Action, Label};

    fn verdict(id: &str, cluster: Option<&str>, rule: &str, topics: &[&str]) -> OutVerdict {
        OutVerdict {
            id: id.into(),
            labels: vec![Label::Question, Label::PurchaseIntent],
            action: Action::Hold,
            scores: Scores { question: 0.97, purchase_intent: 0.026, spam: 1.0, abuse: f32::NAN },
            cluster: cluster.map(Into::into),
            reasons: vec![
                OutReason { label: Label::Question, rule: rule.into(), span: [12, 4_000_000_000] },
                OutReason { label: Label::Spam, rule: "w:?".into(), span: [0, 0] },
            ],
            abuse_category: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn hand_written_verdict_json_is_what_serde_writes() {
        let cases = [
            verdict("m1", Some("q3"), "ja.question.masuka", &["size", "stock"]),
            verdict("", None, "", &[]),
            verdict("引用\"と\\と\u{1}", Some("配信:q1\n"), "r\"x", &["タグ\t"]),
            OutVerdict { labels: vec![Label::Other], reasons: Vec::new(), ..verdict("7", None, "r", &[]) },
            OutVerdict { labels: Vec::new(), action: Action::Block, ..verdict("8", None, "r", &[]) },
            OutVerdict {
                labels: vec![Label::Abuse],
                abuse_category: Some(AbuseCategory::Discrimination),
                ..verdict("9", None, "ja.abuse.discrimination", &["size"])
            },
        ];
        for v in cases {
            let mut out = vec![b'{'];
            v.write_json_fields(&mut out);
            out.push(b'}');
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&v).unwrap());
        }
    }
}
