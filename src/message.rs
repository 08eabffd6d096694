//! The JSON shapes of the contracts: an incoming message and the verdict written for it.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::label::Label;
use crate::money::{Currency, MAX_EXPONENT, Money, MoneyError};
use crate::pipeline::Verdict;
use crate::pipeline::classify::AbuseCategory;

/// One chat message as platforms and `kotae classify` send it. Only `text` is required;
/// unknown fields are ignored.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct InMessage {
    /// What the viewer wrote. Never modified: reasons carry byte spans into it.
    pub text: String,
    /// The platform's id for the message, echoed in its verdict: a string as is, another JSON
    /// value as its JSON text. Absent or `null`: its line number (`kotae classify`) or 1-based
    /// position in the connection (websocket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// The stream it belongs to, for `kotae classify`: each stream has its own dedupe window and
    /// clusters, and prefixes its cluster ids. Ignored on the websocket, whose path names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The sender, as the platform identifies them: repeats, copypasta and slow mode count by
    /// it. Absent: none of them is counted for the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<u64>,
    /// Amount paid with the message (Super Chat, Hype Chat, cheers, gifts) in `paid_exponent`
    /// decimal places of `paid_currency`. A bare number, with neither, is yen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid: Option<u64>,
    /// The product on screen when the message was sent (`kotae classify`; the server knows it
    /// from `PUT /v1/streams/ID/product`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// The currency of `paid`: an ISO 4217 code (`USD`), or `BITS` (Twitch), `NICOAD_POINT`
    /// (Niconico). Absent: yen.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "paid_currency")]
    pub paid_currency: Option<Currency>,
    /// Decimal places of `paid` (2: 499 is 4.99). Absent: the currency's ISO 4217 minor unit.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "paid_exponent")]
    pub paid_exponent: Option<u8>,
}

/// `paid_currency`, checked, with the field named in the error.
fn paid_currency<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Currency>, D::Error> {
    let s = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
    s.map(|s| Currency::new(&s).map_err(|e| serde::de::Error::custom(format_args!("paid_currency: {e}")))).transpose()
}

/// `paid_exponent`, at most [`MAX_EXPONENT`].
fn paid_exponent<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    match <Option<u8>>::deserialize(d)? {
        Some(e) if e > MAX_EXPONENT => {
            Err(serde::de::Error::custom(format_args!("paid_exponent: {e} is over {MAX_EXPONENT} decimal places")))
        }
        e => Ok(e),
    }
}

impl InMessage {
    /// The paid amount with its currency and exponent; `None` when nothing (or 0) was paid. An
    /// error names the field to fix: a currency kotae cannot scale needs `paid_exponent`.
    pub fn paid_money(&self) -> Result<Option<Money>, String> {
        let Some(amount) = self.paid.filter(|&a| a > 0) else { return Ok(None) };
        let currency = self.paid_currency.unwrap_or(Currency::JPY);
        let money = match self.paid_exponent {
            Some(e) => Money::new(amount, currency, e),
            None => Money::in_minor_units(amount, currency),
        };
        money.map(Some).map_err(|e| match e {
            MoneyError::UnknownExponent(c) => {
                format!("paid_currency {c} has no ISO 4217 minor unit kotae knows: send paid_exponent with it")
            }
            other => format!("paid_exponent: {other}"),
        })
    }

    /// The id as a string: the given one, or `fallback` (the line number).
    pub fn id_or(&self, fallback: impl FnOnce() -> String) -> String {
        match &self.id {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => fallback(),
            Some(other) => other.to_string(),
        }
    }
}

/// Whether a character shows nothing by itself: white space, control characters, and the
/// format and default-ignorable characters (zero-width spaces and joiners, bidirectional
/// controls, the byte-order mark, variation selectors, fillers, tags).
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// Whether a message has nothing visible in it (empty, blank, or only invisible characters):
/// such a message is refused as empty.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(is_invisible)
}

/// Scores by label name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Scores {
    /// How strongly the model reads a question, 0–1 (three decimals).
    pub question: f32,
    /// How strongly it reads purchase intent, 0–1 (three decimals).
    pub purchase_intent: f32,
    /// How strongly it reads spam, 0–1 (three decimals); at least 0.9 for a repeat flood or
    /// copypasta.
    pub spam: f32,
    /// How strongly it reads abuse, 0–1 (three decimals).
    pub abuse: f32,
}

/// One reason in a verdict: label, rule id and byte span into the original text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutReason {
    /// The label it pushed up.
    pub label: Label,
    /// The rule id or model feature (`ja.abuse.insult`, `w:在庫`, `kotae.slow_mode`).
    pub rule: std::sync::Arc<str>,
    /// Byte range `[start, end)` of what it matched in the original text, within its length;
    /// `[0, 0]` for a reason about no one part of it (`kotae.slow_mode`).
    pub span: [u32; 2],
}

/// The verdict line of `kotae classify` and frame of the ingest websocket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutVerdict {
    /// The message's id: the given one, else its line number or position in the connection.
    pub id: String,
    /// The labels given, in display order; `other` alone when none of the four applies.
    pub labels: Vec<Label>,
    /// What the platform should do with the message.
    pub action: crate::label::Action,
    /// The model's score for each of the four labels.
    pub scores: Scores,
    /// The question cluster the message joined, `q<id>` (`<stream>:q<id>` for a named stream in
    /// `kotae classify`); absent when it is no question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// What pushed the labels up: rules and model features, with spans.
    pub reasons: Vec<OutReason>,
    /// The kind of abuse (`insult`, `appearance`, `sexual`, `discrimination`, `threat`, `fraud`),
    /// on messages labelled abuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abuse_category: Option<AbuseCategory>,
    /// Purchase-blocking topics the message names (`size`, `stock`, `shipping`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<String>,
    /// On question lines: the product the question is about (named, else on screen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// On question lines: the question is about the shop as a whole (shipping, payment…).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shop: bool,
}

fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

impl OutVerdict {
    /// Builds the output shape. `stream` prefixes cluster ids of named streams.
    pub fn new(id: String, text_len: usize, stream: Option<&str>, v: &Verdict) -> Self {
        // Joined, not formatted: this runs once per question on the websocket.
        let cluster = v.cluster.map(|c| {
            let mut digits = itoa::Buffer::new();
            let id = digits.format(c.id);
            match stream {
                Some(s) => [s, ":q", id].concat(),
                None => ["q", id].concat(),
            }
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
            product: v.cluster.and(v.about.product()).map(str::to_string),
            shop: v.cluster.is_some() && v.about.is_shop(),
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
        if let Some(p) = &self.product {
            out.extend_from_slice(b",\"product\":");
            write_json_str(out, p);
        }
        if self.shop {
            out.extend_from_slice(b",\"shop\":true");
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
    /// The message's id: the given one, else its line number or position in the connection.
    pub id: String,
    /// What was wrong, lowercase (`empty line`, `rate limited`, `too many streams`).
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label::{Action, Label};

    #[test]
    fn text_of_invisible_characters_is_blank() {
        for t in ["", "  ", "\u{200B}", "\u{202E}\u{0000}", "\u{FEFF}\u{3000}\u{2060}", "\u{E0041}", "\u{FE0F}"] {
            assert!(is_blank(t), "{t:?}");
        }
        for t in ["a", "\u{200B}あ", "😀", "\u{200D}👍", "・"] {
            assert!(!is_blank(t), "{t:?}");
        }
    }

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
            product: cluster.map(|_| "p\"1".to_string()),
            shop: cluster.is_none() && !topics.is_empty(),
        }
    }

    fn paid(json: &str) -> Result<Option<String>, String> {
        let m: InMessage = serde_json::from_str(json).map_err(|e| e.to_string())?;
        m.paid_money().map(|p| p.map(|m| m.display()))
    }

    #[test]
    fn paid_amounts_keep_their_currency_and_a_bare_number_is_yen() {
        assert_eq!(paid(r#"{"text":"a","paid":500}"#), Ok(Some("¥500".into())));
        assert_eq!(paid(r#"{"text":"a","paid":499,"paid_currency":"USD"}"#), Ok(Some("US$4.99".into())));
        assert_eq!(
            paid(r#"{"text":"a","paid":499,"paid_currency":"USD","paid_exponent":2}"#),
            Ok(Some("US$4.99".into()))
        );
        assert_eq!(paid(r#"{"text":"a","paid":200,"paid_currency":"BITS"}"#), Ok(Some("200 bits".into())));
        assert_eq!(paid(r#"{"text":"a","paid":7500,"paid_currency":"TWD"}"#), Ok(Some("NT$75.00".into())));
        assert_eq!(paid(r#"{"text":"a","paid":0,"paid_currency":"USD"}"#), Ok(None));
        assert_eq!(paid(r#"{"text":"a"}"#), Ok(None));
        assert_eq!(
            paid(r#"{"text":"a","paid":5,"paid_currency":"ABC","paid_exponent":1}"#),
            Ok(Some("ABC 0.5".into()))
        );
    }

    #[test]
    fn bad_paid_fields_are_errors_naming_the_field() {
        let err = |json: &str| paid(json).unwrap_err();
        assert!(err(r#"{"text":"a","paid":5,"paid_currency":"us dollars"}"#).contains("paid_currency"));
        assert!(err(r#"{"text":"a","paid":5,"paid_currency":"ABC"}"#).contains("paid_exponent"));
        assert!(err(r#"{"text":"a","paid":5,"paid_currency":"USD","paid_exponent":12}"#).contains("paid_exponent"));
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
