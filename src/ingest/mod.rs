//! Ingest: the sidecar protocol's frames, cut into [`Item`]s on their way through the pipeline.
//!
//! A text frame is one message object or an array of them ([`parse_frame`]). Its messages then
//! go to the analysis workers ([`crate::runtime::workers`]) as one job.
//!
//! [`adapters`] connects out to platforms that cannot embed kotae (Twitch, YouTube, Niconico) and
//! turns their chat into the same [`InMessage`]s.

pub mod adapters;
pub mod json;
pub mod rate;

use serde_json::Value;

use crate::message::InMessage;
use crate::metrics::RejectReason;
use crate::pipeline::{Analysis, Reject};

/// One message of a frame on its way through the pipeline.
#[derive(Debug)]
pub enum Item {
    /// Parsed; waiting for analysis.
    Parsed(InMessage),
    /// Analyzed; waiting for its stream's stateful stage.
    Analyzed(InMessage, Box<Analysis>),
    /// Not analyzed within the latency budget: gets the fail-open or fail-closed verdict.
    OverBudget(InMessage),
    /// Gets an error frame.
    Rejected {
        /// The message's id as echoed: the given one, else its 1-based position in the
        /// connection (also when the given id was too long).
        id: String,
        /// The error text sent back in the error frame.
        error: String,
        /// Why, as the bounded label of the rejection counter.
        reason: RejectReason,
    },
}

impl Item {
    fn reject(id: String, error: impl Into<String>, reason: RejectReason) -> Self {
        Item::Rejected { id, error: error.into(), reason }
    }
}

/// The id of a message: the given one, else its 1-based position in the connection.
fn fallback_id(seq: u64) -> String {
    seq.to_string()
}

/// The size limits a frame's messages are held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Most messages in one array frame.
    pub max_batch: usize,
    /// Longest `text`, bytes.
    pub max_message_bytes: usize,
    /// Longest `id` (as echoed), bytes.
    pub max_id_bytes: usize,
    /// Longest `user`, bytes.
    pub max_user_bytes: usize,
}

impl FrameLimits {
    /// The server's limits.
    pub fn of(config: &crate::server::config::ServerConfig, max_message_bytes: usize) -> Self {
        Self {
            max_batch: config.max_batch.get(),
            max_message_bytes,
            max_id_bytes: config.max_id_bytes.get(),
            max_user_bytes: config.max_user_bytes.get(),
        }
    }
}

/// Splits a text frame into items. `first_seq` numbers messages without an id (1-based per
/// connection). Returns the items; a frame that is not JSON, or an array over `max_batch`, is
/// one rejected item; otherwise every element of an array gets its own item, refused or not.
pub fn parse_frame(text: &str, first_seq: u64, limits: &FrameLimits) -> Vec<Item> {
    parse_well_formed(text, first_seq, limits).unwrap_or_else(|| parse_frame_by_element(text, first_seq, limits))
}

/// The common case in one pass: a frame whose every message deserializes straight into an
/// [`InMessage`], with no intermediate [`Value`] tree (its maps and key strings cost more than
/// the messages themselves). `None` for anything else, which [`parse_frame_by_value`] then
/// takes apart element by element to name each problem.
fn parse_well_formed(text: &str, first_seq: u64, limits: &FrameLimits) -> Option<Vec<Item>> {
    let accept = |(i, m): (usize, InMessage)| accept_message(m, first_seq + i as u64, limits);
    match text.trim_start().as_bytes().first()? {
        b'[' => {
            let messages: Vec<InMessage> = serde_json::from_str(text).ok()?;
            if messages.is_empty() || messages.len() > limits.max_batch {
                return None;
            }
            Some(messages.into_iter().enumerate().map(accept).collect())
        }
        b'{' => Some(vec![accept((0, serde_json::from_str(text).ok()?))]),
        _ => None,
    }
}

/// A deserialized message gets its final id (the given one as a string, else its position) and
/// the size limits applied: text, id and user. Text with nothing visible in it is empty.
fn accept_message(mut m: InMessage, seq: u64, limits: &FrameLimits) -> Item {
    let id = match m.id.take() {
        Some(Value::String(s)) => s,
        Some(Value::Null) | None => fallback_id(seq),
        Some(other) => other.to_string(),
    };
    if id.len() > limits.max_id_bytes {
        let error = format!("id of {} bytes is over the limit of {}", id.len(), limits.max_id_bytes);
        return Item::reject(fallback_id(seq), error, RejectReason::TooLarge);
    }
    if m.text.len() > limits.max_message_bytes {
        let e = Reject::TooLarge(m.text.len(), limits.max_message_bytes);
        return Item::reject(id, e.to_string(), RejectReason::TooLarge);
    }
    if let Err(e) = m.paid_money() {
        return Item::reject(id, format!("invalid message: {e}"), RejectReason::Malformed);
    }
    if let Some(u) = &m.user
        && u.len() > limits.max_user_bytes
    {
        let error = format!("user of {} bytes is over the limit of {}", u.len(), limits.max_user_bytes);
        return Item::reject(id, error, RejectReason::TooLarge);
    }
    if crate::message::is_blank(&m.text) {
        return Item::reject(id, Reject::Empty.to_string(), RejectReason::Empty);
    }
    // Ignored on ingest (the connection names the stream); not kept.
    m.stream = None;
    m.id = Some(Value::String(id));
    Item::Parsed(m)
}

/// The detailed path: the frame is checked as JSON without a depth limit, then each element of
/// an array is parsed on its own, so one bad (or too deeply nested) element costs only its own
/// error.
fn parse_frame_by_element(text: &str, first_seq: u64, limits: &FrameLimits) -> Vec<Item> {
    let invalid =
        |e: String| vec![Item::reject(fallback_id(first_seq), format!("invalid json: {e}"), RejectReason::Malformed)];
    let elements = match json::scan(text) {
        Ok(json::Scan::Array(elements)) => elements,
        Ok(json::Scan::Other) => {
            return vec![match serde_json::from_str::<Value>(text) {
                Ok(v) => parse_message(v, first_seq, limits),
                Err(e) => {
                    Item::reject(fallback_id(first_seq), format!("invalid message: {e}"), RejectReason::Malformed)
                }
            }];
        }
        // serde_json's message names line and column; ours stands in if it has none.
        Err(e) => {
            return invalid(
                serde_json::from_str::<serde::de::IgnoredAny>(text).err().map_or(e.to_string(), |e| e.to_string()),
            );
        }
    };
    if elements.len() > limits.max_batch {
        return vec![Item::reject(
            fallback_id(first_seq),
            format!("batch of {} messages is over the limit of {}", elements.len(), limits.max_batch),
            RejectReason::TooLarge,
        )];
    }
    if elements.is_empty() {
        return vec![Item::reject(fallback_id(first_seq), "empty batch", RejectReason::Malformed)];
    }
    elements
        .into_iter()
        .enumerate()
        .map(|(i, range)| {
            let seq = first_seq + i as u64;
            match serde_json::from_str::<Value>(&text[range]) {
                Ok(v) => parse_message(v, seq, limits),
                Err(e) => Item::reject(fallback_id(seq), format!("invalid message: {e}"), RejectReason::Malformed),
            }
        })
        .collect()
}

fn parse_message(v: Value, seq: u64, limits: &FrameLimits) -> Item {
    let id_of = |v: &Value| match v.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => fallback_id(seq),
        Some(other) => other.to_string(),
    };
    if !v.is_object() {
        return Item::reject(fallback_id(seq), "a message must be a JSON object", RejectReason::Malformed);
    }
    if !v.get("text").is_some_and(Value::is_string) {
        return Item::reject(id_of(&v), "missing field `text`", RejectReason::Malformed);
    }
    let id = id_of(&v);
    match serde_json::from_value::<InMessage>(v) {
        Ok(m) => accept_message(m, seq, limits),
        Err(e) => Item::reject(id, format!("invalid message: {e}"), RejectReason::Malformed),
    }
}

/// The id a parsed message carries (set by [`parse_frame`]).
pub fn message_id(m: &InMessage) -> String {
    match &m.id {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

/// [`message_id`], taking a string id out of the message instead of copying it (for a caller
/// that is done with `m.id`).
pub fn take_message_id(m: &mut InMessage) -> String {
    match &mut m.id {
        Some(Value::String(s)) => std::mem::take(s),
        _ => message_id(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(items: &[Item]) -> Vec<&'static str> {
        items
            .iter()
            .map(|i| match i {
                Item::Parsed(_) => "ok",
                Item::Rejected { reason, .. } => reason.as_str(),
                _ => "?",
            })
            .collect()
    }

    fn limits(max_batch: usize, max_message_bytes: usize) -> FrameLimits {
        FrameLimits { max_batch, max_message_bytes, max_id_bytes: 16, max_user_bytes: 16 }
    }

    fn parse_frame(text: &str, first_seq: u64, max_batch: usize, max_message_bytes: usize) -> Vec<Item> {
        super::parse_frame(text, first_seq, &limits(max_batch, max_message_bytes))
    }

    #[test]
    fn a_single_object_and_an_array_are_both_frames() {
        assert_eq!(kinds(&parse_frame(r#"{"text":"a"}"#, 1, 10, 100)), ["ok"]);
        assert_eq!(kinds(&parse_frame(r#"[{"text":"a"},{"text":"b","id":3}]"#, 1, 10, 100)), ["ok", "ok"]);
    }

    #[test]
    fn a_deeply_nested_element_costs_only_its_own_error() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let frame = format!(r#"[{{"text":"a"}},{deep},5,{{"text":"b"}}]"#);
        let items = parse_frame(&frame, 1, 10, 100);
        assert_eq!(kinds(&items), ["ok", "malformed", "malformed", "ok"], "one outcome per element");
        let Item::Rejected { id, error, .. } = &items[1] else { panic!() };
        assert_eq!(id, "2");
        assert!(error.contains("recursion limit"), "{error}");
        // Unknown fields are skipped however deep they go.
        let deep_object = format!(r#"{{"text":"a","x":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(kinds(&parse_frame(&deep_object, 1, 10, 100)), ["ok"]);
    }

    #[test]
    fn ids_and_users_are_limited_in_size() {
        let items = parse_frame(
            &format!(
                r#"[{{"text":"a","id":"{}"}},{{"text":"a","user":"{}","id":"u"}},{{"text":"a","id":{{"k":"{}"}}}},{{"text":"a","id":"ok","user":"ok"}}]"#,
                "i".repeat(17),
                "u".repeat(17),
                "x".repeat(20)
            ),
            1,
            10,
            100,
        );
        assert_eq!(kinds(&items), ["too_large", "too_large", "too_large", "ok"]);
        let ids: Vec<&str> = items
            .iter()
            .filter_map(|i| if let Item::Rejected { id, .. } = i { Some(id.as_str()) } else { None })
            .collect();
        assert_eq!(ids, ["1", "u", "3"], "a refused id is replaced by the message's position");
    }

    #[test]
    fn text_with_nothing_visible_is_empty() {
        for text in [r"\u200b", r"\u202e", r"\u0000", r" \u200b\u3000\ufeff\u2060 ", r"\u180e\u200d"] {
            let frame = format!(r#"{{"text":"{text}"}}"#);
            assert_eq!(kinds(&parse_frame(&frame, 1, 10, 100)), ["empty"], "{text}");
        }
        assert_eq!(kinds(&parse_frame(r#"{"text":"\u200bあ"}"#, 1, 10, 100)), ["ok"]);
        assert_eq!(kinds(&parse_frame(r#"{"text":"😀"}"#, 1, 10, 100)), ["ok"]);
    }

    #[test]
    fn bad_elements_are_rejected_one_by_one() {
        let items = parse_frame(r#"[{"text":"a"},{"id":"x"},7,{"text":"long text"}]"#, 5, 10, 4);
        assert_eq!(kinds(&items), ["ok", "malformed", "malformed", "too_large"]);
        let Item::Rejected { id, .. } = &items[1] else { panic!() };
        assert_eq!(id, "x");
        let Item::Rejected { id, .. } = &items[2] else { panic!() };
        assert_eq!(id, "7", "messages without an id are numbered by position");
    }

    #[test]
    fn ids_without_one_are_numbered_by_position() {
        let items = parse_frame(r#"[{"text":"a"},{"text":"b","id":42}]"#, 10, 10, 100);
        let ids: Vec<String> =
            items.iter().map(|i| if let Item::Parsed(m) = i { message_id(m) } else { String::new() }).collect();
        assert_eq!(ids, ["10", "42"]);
    }

    /// What an item says, comparable across the two parsers.
    fn describe(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                Item::Parsed(m) => format!("ok {m:?}"),
                Item::Rejected { id, error, reason } => format!("{} {id} {error}", reason.as_str()),
                _ => "?".into(),
            })
            .collect()
    }

    #[test]
    fn the_one_pass_parser_agrees_with_the_element_by_element_one() {
        let frames = [
            r#"{"text":"a"}"#,
            r#" [{"text":"a","id":"x","user":"u","ts":5,"paid":100,"stream":"s","extra":[1]}]"#,
            r#"[{"text":"a","id":42},{"text":"b","id":null},{"text":"c","id":1.5},{"text":"d","id":{"k":1}}]"#,
            r#"[{"text":"long text","id":"big"}]"#,
            r#"{"text":"\u3042\"\\","id":"esc\n"}"#,
        ];
        for f in frames {
            let fast = parse_well_formed(f, 3, &limits(10, 4)).expect("well formed");
            assert_eq!(describe(&fast), describe(&parse_frame_by_element(f, 3, &limits(10, 4))), "{f}");
        }
        for f in [r#"[{"text":"a"},{"id":"x"}]"#, r#"{"text":1}"#, "[]", r#"[{"text":"a"},{"text":"b"}]"#, "7"] {
            assert!(parse_well_formed(f, 1, &limits(1, 100)).is_none(), "{f} must take the detailed path");
        }
    }

    #[test]
    fn not_json_and_oversize_batches_are_one_error() {
        assert_eq!(kinds(&parse_frame("{nope", 1, 10, 100)), ["malformed"]);
        assert_eq!(kinds(&parse_frame(r#"[{"text":"a"},{"text":"b"}]"#, 1, 1, 100)), ["too_large"]);
        assert_eq!(kinds(&parse_frame("[]", 1, 1, 100)), ["malformed"]);
    }
}
