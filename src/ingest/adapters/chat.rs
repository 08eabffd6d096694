//! The normalized chat shapes every adapter produces (platforms.md §8), the moderation events
//! and actions, and the conversion into the engine's input, [`InMessage`].
//!
//! Text offsets are Unicode scalar values (Rust `char`s) throughout; adapters convert on ingest.

use bytes::Bytes;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::message::InMessage;

/// A chat platform kotae connects out to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Twitch,
    YouTube,
    Niconico,
}

impl Platform {
    /// Short prefix that namespaces user ids in [`InMessage::user`], so one kotae stream can mix
    /// platforms without two users sharing an id.
    pub fn prefix(self) -> &'static str {
        match self {
            Platform::Twitch => "tw",
            Platform::YouTube => "yt",
            Platform::Niconico => "nico",
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Platform::Twitch => "twitch",
            Platform::YouTube => "youtube",
            Platform::Niconico => "niconico",
        })
    }
}

/// Where a message id came from. A synthesized id is never sent to a platform's delete call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdOrigin {
    Native,
    Synthesized,
}

/// How far an author id is stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdScope {
    /// The same person everywhere on the platform.
    Global,
    /// Only within one programme (Niconico 184 anonymous `a:…` ids).
    PerProgram,
    Unknown,
}

/// What kind of chat item this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    Chat,
    /// Money attached: Super Chat, Super Sticker, Twitch cheer.
    Paid,
    Gift,
    Membership,
    /// Platform notices that carry a user (Twitch USERNOTICE without a gift).
    System,
}

/// Role flags of an author. Each is `false` when the platform does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Roles {
    pub broadcaster: bool,
    pub moderator: bool,
    pub vip: bool,
    /// Subscriber (Twitch) or channel member (YouTube).
    pub member: bool,
    pub verified: bool,
    /// Paid account: Twitch Turbo, Niconico premium.
    pub premium: bool,
    pub first_time: bool,
    pub returning: bool,
    pub staff: bool,
    pub anonymous: bool,
}

/// One raw badge, e.g. Twitch `subscriber/12`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Badge {
    pub set: String,
    pub version: String,
}

/// The author of a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Author {
    /// Stable platform id when the platform gives one.
    pub id: Option<String>,
    pub id_scope: IdScope,
    /// Handle: Twitch login.
    pub login: Option<String>,
    /// Name as shown; may be empty or CJK.
    pub display_name: String,
    pub color: Option<String>,
    pub roles: Roles,
    pub badges: Vec<Badge>,
    /// Exact months subscribed or a member, when known.
    pub member_months: Option<u32>,
}

impl Author {
    /// An author with nothing but a display name.
    pub fn named(display_name: impl Into<String>) -> Self {
        Self {
            id: None,
            id_scope: IdScope::Unknown,
            login: None,
            display_name: display_name.into(),
            color: None,
            roles: Roles::default(),
            badges: Vec::new(),
            member_months: None,
        }
    }
}

/// A piece of the message text. Ranges are in chars (Unicode scalar values), end exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Fragment {
    Text { text: String },
    Emote { id: String, code: String, start: usize, end: usize },
}

/// Money or platform currency attached to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Paid {
    /// Amount in millionths of `currency`'s unit (YouTube `amountMicros`; 1 bit = 1,000,000).
    pub amount_micros: u64,
    /// ISO 4217 code (`JPY`), or `BITS` (Twitch cheers), `NICOAD_POINT` (Niconico gifts).
    pub currency: String,
    /// The platform's display string (`¥1,000`), when given.
    pub display: Option<String>,
    /// Colour band / tier, when given.
    pub tier: Option<u32>,
}

/// Currencies whose minor unit is not 1/100 of the major (ISO 4217 exponents other than 2).
const ZERO_DECIMAL: &[&str] = &["JPY", "KRW", "VND", "CLP", "ISK", "PYG", "UGX", "XAF", "XOF", "HUF", "TWD"];
const THREE_DECIMAL: &[&str] = &["BHD", "KWD", "OMR", "JOD", "TND", "IQD", "LYD"];

impl Paid {
    /// The amount in the currency's smallest unit, the unit of [`InMessage::paid`]: yen for JPY,
    /// cents for USD, bits for Twitch cheers, points for Niconico gifts.
    pub fn smallest_units(&self) -> u64 {
        let exponent = if ZERO_DECIMAL.contains(&self.currency.as_str()) || !is_iso_code(&self.currency) {
            0
        } else if THREE_DECIMAL.contains(&self.currency.as_str()) {
            3
        } else {
            2
        };
        self.amount_micros / 10u64.pow(6 - exponent)
    }
}

fn is_iso_code(c: &str) -> bool {
    c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())
}

/// The message this one replies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyRef {
    pub parent_id: String,
    pub parent_author_id: Option<String>,
    pub parent_author_login: Option<String>,
    pub parent_excerpt: Option<String>,
    pub thread_root_id: Option<String>,
}

/// How the raw frame is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RawEncoding {
    /// One IRC line.
    Irc,
    /// One JSON object.
    Json,
    /// One protobuf message, without its length prefix.
    Protobuf,
}

/// The exact bytes a message was parsed from, kept for replay and audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub encoding: RawEncoding,
    pub bytes: Bytes,
}

impl Serialize for RawFrame {
    /// Text frames as a string, protobuf as lowercase hex.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("RawFrame", 2)?;
        st.serialize_field("encoding", &self.encoding)?;
        match (self.encoding, std::str::from_utf8(&self.bytes)) {
            (RawEncoding::Irc | RawEncoding::Json, Ok(text)) => st.serialize_field("text", text)?,
            _ => st.serialize_field("hex", &hex(&self.bytes))?,
        }
        st.end()
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// One normalized chat message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessage {
    pub platform: Platform,
    /// The kotae stream this adapter feeds (from the configuration).
    pub stream: String,
    /// The platform's channel: Twitch channel login, YouTube `liveChatId`, Niconico `lv…` id.
    pub channel: String,
    /// Native message id, or a synthesized one (see `id_origin`).
    pub id: String,
    pub id_origin: IdOrigin,
    pub kind: MessageKind,
    pub author: Author,
    /// Text as sent (emote codes kept, `/me` markers removed).
    pub text: String,
    /// The text split into text and emote pieces; empty when the platform has no emote data.
    pub fragments: Vec<Fragment>,
    pub paid: Option<Paid>,
    pub reply: Option<ReplyRef>,
    /// Platform clock, Unix milliseconds.
    pub sent_at_ms: Option<u64>,
    /// kotae's wall clock when the frame was read, Unix milliseconds.
    pub received_at_ms: u64,
    /// Per-adapter ingest order, starting at 1.
    pub seq: u64,
    /// History replayed on connect (YouTube's first page, Twitch `historical=1`, Niconico
    /// `previous` segments), not live chat.
    pub backfill: bool,
    pub raw: RawFrame,
}

impl ChatMessage {
    /// The engine's input shape: `text`, `id`, `stream`, `user` (platform-prefixed author id,
    /// `tw:29803735`), `ts` (sent, else received) and `paid` (smallest currency units).
    pub fn to_in_message(&self) -> InMessage {
        InMessage {
            text: self.text.clone(),
            id: Some(Value::String(self.id.clone())),
            stream: Some(self.stream.clone()),
            user: self.author.id.as_ref().map(|id| format!("{}:{id}", self.platform.prefix())),
            ts: Some(self.sent_at_ms.unwrap_or(self.received_at_ms)),
            paid: self.paid.as_ref().map(Paid::smallest_units).filter(|&p| p > 0),
            product: None,
        }
    }
}

/// A moderation event the platform reports (someone else deleted, timed out or banned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ModerationEvent {
    MessageDeleted {
        message_id: String,
    },
    /// A user was timed out (`timeout_secs`) or banned (`None`) and their messages cleared.
    UserCleared {
        user_id: String,
        timeout_secs: Option<u64>,
    },
    ChatCleared,
}

/// A moderation event with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModerationNotice {
    pub platform: Platform,
    pub stream: String,
    pub channel: String,
    #[serde(flatten)]
    pub event: ModerationEvent,
    pub sent_at_ms: Option<u64>,
    pub raw: RawFrame,
}

/// What an adapter puts on the ingest channel.
#[allow(clippy::large_enum_variant, reason = "chat is nearly every item; boxing it would allocate per message")]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "item", rename_all = "snake_case")]
pub enum Ingested {
    Chat(ChatMessage),
    Moderation(ModerationNotice),
}

/// A moderation action to carry out on the platform (or locally).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ModerationAction {
    Delete {
        message_id: String,
    },
    Timeout {
        user_id: String,
        secs: u64,
        reason: Option<String>,
    },
    Ban {
        user_id: String,
        reason: Option<String>,
    },
    /// Approve (`true`) or deny a message the platform is holding (Twitch AutoMod).
    ResolveHold {
        message_id: String,
        approve: bool,
    },
    /// Hide in kotae's own views only; always possible, never reaches the platform.
    LocalHide {
        message_id: String,
    },
}

impl ModerationAction {
    /// Bounded name for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            ModerationAction::Delete { .. } => "delete",
            ModerationAction::Timeout { .. } => "timeout",
            ModerationAction::Ban { .. } => "ban",
            ModerationAction::ResolveHold { .. } => "resolve_hold",
            ModerationAction::LocalHide { .. } => "local_hide",
        }
    }
}

/// How an action was carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionOutcome {
    /// The platform accepted it.
    Sent,
    /// Done inside kotae only (local hide).
    Local,
}

/// An action that could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("{platform} cannot {action}")]
    Unsupported { platform: Platform, action: &'static str },
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
    #[error("platform answered {status}: {body}")]
    Rejected { status: u16, body: String },
    #[error("request failed: {0}")]
    Transport(String),
    #[error("the adapter's action queue is full")]
    QueueFull,
    #[error("the adapter has stopped")]
    Stopped,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paid(micros: u64, currency: &str) -> Paid {
        Paid { amount_micros: micros, currency: currency.into(), display: None, tier: None }
    }

    #[test]
    fn paid_amounts_become_smallest_currency_units() {
        assert_eq!(paid(1_000_000_000, "JPY").smallest_units(), 1000);
        assert_eq!(paid(2_000_000, "CAD").smallest_units(), 200);
        assert_eq!(paid(1_500_000, "KWD").smallest_units(), 1500);
        assert_eq!(paid(100_000_000, "BITS").smallest_units(), 100);
    }

    #[test]
    fn raw_protobuf_frames_serialize_as_hex() {
        let raw = RawFrame { encoding: RawEncoding::Protobuf, bytes: Bytes::from_static(&[0x0a, 0xff]) };
        assert_eq!(serde_json::to_string(&raw).unwrap(), r#"{"encoding":"protobuf","hex":"0aff"}"#);
    }
}
