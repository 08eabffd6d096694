//! The normalized chat shapes every adapter produces (platforms.md §8), the moderation events
//! and actions, and the conversion into the engine's input, [`InMessage`].
//!
//! Text offsets are Unicode scalar values (Rust `char`s) throughout; adapters convert on ingest.

use bytes::Bytes;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::message::InMessage;
use crate::money::{Currency, Money};

/// A chat platform kotae connects out to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Twitch chat over IRC (with Helix for moderation).
    Twitch,
    /// YouTube Live chat through the Data API.
    YouTube,
    /// Niconico Live comments over NDGR.
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
    /// The platform's own id: the one its delete call takes.
    Native,
    /// Made by the adapter because the platform gave none (Twitch lines without an `id` tag): a
    /// hash of channel, sender, send time and text.
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
    /// The platform does not say how far the id holds.
    Unknown,
}

/// What kind of chat item this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// An ordinary chat message.
    Chat,
    /// Money attached: Super Chat, Super Sticker, Twitch cheer.
    Paid,
    /// A gift: gifted memberships or subs (YouTube membership gifts, Twitch `subgift`,
    /// `submysterygift`), a Niconico gift or Nicoad.
    Gift,
    /// A membership or subscription joined, renewed or upgraded (YouTube member events, Twitch
    /// `sub`, `resub`).
    Membership,
    /// Platform notices that carry a user (Twitch USERNOTICE without a gift).
    System,
}

/// Role flags of an author. Each is `false` when the platform does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Roles {
    /// The channel's owner (Twitch `broadcaster` badge, YouTube `isChatOwner`).
    pub broadcaster: bool,
    /// A channel moderator.
    pub moderator: bool,
    /// A Twitch VIP.
    pub vip: bool,
    /// Subscriber (Twitch) or channel member (YouTube).
    pub member: bool,
    /// Verified by the platform (Twitch partner, YouTube `isVerified`).
    pub verified: bool,
    /// Paid account: Twitch Turbo, Niconico premium.
    pub premium: bool,
    /// First message in the channel (Twitch `first-msg`).
    pub first_time: bool,
    /// Back after a while away (Twitch `returning-chatter`).
    pub returning: bool,
    /// Platform staff (Twitch `staff`, `admin` or `global_mod` badge).
    pub staff: bool,
    /// No person behind the id: Twitch's anonymous gifter or cheerer account, a Niconico 184
    /// comment.
    pub anonymous: bool,
}

/// One raw badge, e.g. Twitch `subscriber/12`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Badge {
    /// The badge set (`subscriber`).
    pub set: String,
    /// The version within the set (`12` for the 12-month `subscriber` badge).
    pub version: String,
}

/// The author of a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Author {
    /// Stable platform id when the platform gives one.
    pub id: Option<String>,
    /// How far `id` names the same person.
    pub id_scope: IdScope,
    /// Handle: Twitch login.
    pub login: Option<String>,
    /// Name as shown; may be empty or CJK.
    pub display_name: String,
    /// Name colour as the platform gives it (`#0000FF`); `None` when unset.
    pub color: Option<String>,
    /// What the author is in this channel.
    pub roles: Roles,
    /// The badges shown beside the name, as the platform listed them.
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
    /// Plain text between emotes.
    Text {
        /// The text, as sent.
        text: String,
    },
    /// An emote, with where its code sits in the message text.
    Emote {
        /// The platform's emote id (Twitch `emotes` tag id).
        id: String,
        /// The emote's code as typed in the text (`Kappa`).
        code: String,
        /// First char of the code in the message text.
        start: usize,
        /// One past the code's last char.
        end: usize,
    },
}

/// Money or platform currency attached to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Paid {
    /// Amount, currency and exponent: US$4.99 is 499 `USD` with exponent 2; a cheer of 200 bits
    /// is 200 `BITS`; a Nicoad of 500 points is 500 `NICOAD_POINT`.
    pub money: Money,
    /// The platform's display string (`¥1,000`), when given.
    pub display: Option<String>,
    /// Colour band (YouTube `tier`) or Hype Chat level (1–10), when given.
    pub tier: Option<u32>,
}

impl Paid {
    /// An amount in millionths of the unit (YouTube `amountMicros`), kept in the currency's
    /// ISO 4217 minor unit (cents for USD and TWD, yen for JPY).
    pub fn from_micros(micros: u64, currency: Currency, display: Option<String>, tier: Option<u32>) -> Self {
        Self { money: Money::from_micros(micros, currency), display, tier }
    }
}

/// Membership and gift details (YouTube member events, Twitch subs and gifted subs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Support {
    /// How many memberships or subs one gift gives (YouTube `giftMembershipsCount`, Twitch
    /// `msg-param-mass-gift-count`; 1 for a single gifted sub).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gift_count: Option<u32>,
    /// Membership level or sub plan: YouTube `memberLevelName` / `giftMembershipsLevelName`,
    /// Twitch `Prime`, `Tier 1`, `Tier 2`, `Tier 3`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// An upgrade of an existing membership (YouTube `isUpgrade`, Twitch `primepaidupgrade`,
    /// `giftpaidupgrade`, `anongiftpaidupgrade`).
    pub upgrade: bool,
    /// Who received a gift (Twitch `msg-param-recipient-id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<String>,
    /// Who gave the gift this event is about (YouTube `gifterChannelId`), when it is not the author.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gifter_id: Option<String>,
}

/// The message this one replies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyRef {
    /// The parent message's platform id.
    pub parent_id: String,
    /// The parent's author id, when given.
    pub parent_author_id: Option<String>,
    /// The parent's author login (Twitch), when given.
    pub parent_author_login: Option<String>,
    /// The start of the parent's text as the platform quotes it, when given.
    pub parent_excerpt: Option<String>,
    /// The id of the message that started the thread (Twitch `reply-thread-parent-msg-id`), when
    /// given.
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
    /// How `bytes` is encoded.
    pub encoding: RawEncoding,
    /// The frame's bytes as read (for protobuf, without the length prefix).
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
    /// The platform it came from.
    pub platform: Platform,
    /// The kotae stream this adapter feeds (from the configuration).
    pub stream: String,
    /// The platform's channel: Twitch channel login, YouTube `liveChatId`, Niconico `lv…` id.
    pub channel: String,
    /// Native message id, or a synthesized one (see `id_origin`).
    pub id: String,
    /// Whether `id` is the platform's own or synthesized; only a native id is ever sent to a delete
    /// call.
    pub id_origin: IdOrigin,
    /// What kind of item it is: chat, paid, gift, membership or platform notice.
    pub kind: MessageKind,
    /// Who sent it.
    pub author: Author,
    /// Text as sent (emote codes kept, `/me` markers removed).
    pub text: String,
    /// The text split into text and emote pieces; empty when the platform has no emote data.
    pub fragments: Vec<Fragment>,
    /// Money or platform currency attached, when any (Super Chat, cheer, Nicoad).
    pub paid: Option<Paid>,
    /// Gift count, membership level and upgrade flag of `gift` and `membership` items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub support: Option<Support>,
    /// The message it replies to, when it is a reply.
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
    /// The frame it was parsed from.
    pub raw: RawFrame,
}

impl ChatMessage {
    /// The engine's input shape: `text`, `id`, `stream`, `user` (platform-prefixed author id,
    /// `tw:29803735`), `ts` (sent, else received) and the payment as `paid`, `paid_currency`
    /// and `paid_exponent` (499, `USD`, 2).
    pub fn to_in_message(&self) -> InMessage {
        let paid = self.paid.as_ref().map(|p| p.money).filter(|m| !m.is_zero());
        InMessage {
            text: self.text.clone(),
            id: Some(Value::String(self.id.clone())),
            stream: Some(self.stream.clone()),
            user: self.author.id.as_ref().map(|id| format!("{}:{id}", self.platform.prefix())),
            ts: Some(self.sent_at_ms.unwrap_or(self.received_at_ms)),
            paid: paid.map(|m| m.amount),
            paid_currency: paid.map(|m| m.currency),
            paid_exponent: paid.map(|m| m.exponent),
            product: None,
        }
    }
}

/// A moderation event the platform reports (someone else deleted, timed out or banned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ModerationEvent {
    /// A moderator deleted one message (Twitch CLEARMSG, YouTube `messageDeletedEvent`).
    MessageDeleted {
        /// The platform's id of the deleted message.
        message_id: String,
    },
    /// A user was timed out (`timeout_secs`) or banned (`None`) and their messages cleared.
    UserCleared {
        /// The platform's id of the user (no platform prefix).
        user_id: String,
        /// Length of the timeout in seconds; `None` for a ban.
        timeout_secs: Option<u64>,
    },
    /// Every message in the channel was cleared (Twitch CLEARCHAT without a user).
    ChatCleared,
}

/// A moderation event with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModerationNotice {
    /// The platform it came from.
    pub platform: Platform,
    /// The kotae stream the adapter feeds.
    pub stream: String,
    /// The platform's channel (as in [`ChatMessage::channel`]).
    pub channel: String,
    /// What happened.
    #[serde(flatten)]
    pub event: ModerationEvent,
    /// Platform clock, Unix milliseconds, when given.
    pub sent_at_ms: Option<u64>,
    /// The frame it was parsed from.
    pub raw: RawFrame,
}

/// What an adapter puts on the ingest channel.
#[allow(clippy::large_enum_variant, reason = "chat is nearly every item; boxing it would allocate per message")]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "item", rename_all = "snake_case")]
pub enum Ingested {
    /// A chat message, for the engine.
    Chat(ChatMessage),
    /// A moderation event someone else carried out, for the views and the audit.
    Moderation(ModerationNotice),
}

/// A moderation action to carry out on the platform (or locally).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ModerationAction {
    /// Delete one message. Needs a native message id.
    Delete {
        /// The platform's id of the message.
        message_id: String,
    },
    /// Keep a user from chatting for a while.
    Timeout {
        /// The platform's id of the user (no platform prefix).
        user_id: String,
        /// Length in seconds (YouTube takes at least 1).
        secs: u64,
        /// Shown to the user and in the platform's log, when the platform takes one.
        reason: Option<String>,
    },
    /// Keep a user from chatting for good.
    Ban {
        /// The platform's id of the user (no platform prefix).
        user_id: String,
        /// Shown to the user and in the platform's log, when the platform takes one.
        reason: Option<String>,
    },
    /// Approve (`true`) or deny a message the platform is holding (Twitch AutoMod).
    ResolveHold {
        /// The platform's id of the held message.
        message_id: String,
        /// Let the message through (`true`) or drop it (`false`).
        approve: bool,
    },
    /// Hide in kotae's own views only; always possible, never reaches the platform.
    LocalHide {
        /// The message's id.
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
    /// The platform's API has no such action (Niconico has only local hides; YouTube holds no
    /// messages to resolve).
    #[error("{platform} cannot {action}")]
    Unsupported {
        /// The platform asked.
        platform: Platform,
        /// The action's name ([`ModerationAction::name`]).
        action: &'static str,
    },
    /// A setting the action needs is missing (the string names it: `twitch client_id`).
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
    /// The platform answered with an error status.
    #[error("platform answered {status}: {body}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The start of the response body (at most 300 chars), for the log.
        body: String,
    },
    /// The request did not complete (connection, TLS or timeout); the string is the cause.
    #[error("request failed: {0}")]
    Transport(String),
    /// The adapter's bounded action queue had no room; the action was not queued.
    #[error("the adapter's action queue is full")]
    QueueFull,
    /// The adapter is no longer running, so nobody will carry the action out.
    #[error("the adapter has stopped")]
    Stopped,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(micros: u64, currency: &str) -> (u64, u8) {
        let p = Paid::from_micros(micros, Currency::new(currency).unwrap(), None, None);
        (p.money.amount, p.money.exponent)
    }

    #[test]
    fn paid_amounts_become_smallest_currency_units() {
        assert_eq!(units(1_000_000_000, "JPY"), (1000, 0));
        assert_eq!(units(2_000_000, "CAD"), (200, 2));
        assert_eq!(units(1_500_000, "KWD"), (1500, 3));
        assert_eq!(units(100_000_000, "BITS"), (100, 0));
    }

    #[test]
    fn iso_4217_minor_units_decide_the_smallest_unit() {
        assert_eq!(units(75_000_000, "TWD"), (7500, 2), "NT$75.00");
        assert_eq!(units(1_500_500_000, "HUF"), (150_050, 2), "HUF 1,500.50");
        assert_eq!(units(2_000_000_000, "KRW"), (2000, 0));
        assert_eq!(units(1_000_000, "CLF"), (10_000, 4), "four decimals");
        assert_eq!(units(3_000_000, "XPF"), (3, 0), "no decimals");
    }

    #[test]
    fn the_engine_input_carries_amount_currency_and_exponent() {
        let paid = Paid::from_micros(4_990_000, Currency::new("USD").unwrap(), Some("$4.99".into()), Some(2));
        let m = ChatMessage {
            platform: Platform::YouTube,
            stream: "s".into(),
            channel: "c".into(),
            id: "m1".into(),
            id_origin: IdOrigin::Native,
            kind: MessageKind::Paid,
            author: Author::named("Mia"),
            text: "Mはありますか".into(),
            fragments: Vec::new(),
            paid: Some(paid),
            support: None,
            reply: None,
            sent_at_ms: Some(5),
            received_at_ms: 6,
            seq: 1,
            backfill: false,
            raw: RawFrame { encoding: RawEncoding::Json, bytes: Bytes::new() },
        };
        let input = m.to_in_message();
        assert_eq!(
            (input.paid, input.paid_currency.map(|c| c.to_string()), input.paid_exponent),
            (Some(499), Some("USD".into()), Some(2))
        );
        let line = serde_json::to_string(&input).unwrap();
        assert!(line.contains(r#""paid":499,"paid_currency":"USD","paid_exponent":2"#), "{line}");
        let back: InMessage = serde_json::from_str(&line).unwrap();
        assert_eq!(back.paid_money().unwrap().map(|m| m.display()), Some("US$4.99".into()));
    }

    #[test]
    fn raw_protobuf_frames_serialize_as_hex() {
        let raw = RawFrame { encoding: RawEncoding::Protobuf, bytes: Bytes::from_static(&[0x0a, 0xff]) };
        assert_eq!(serde_json::to_string(&raw).unwrap(), r#"{"encoding":"protobuf","hex":"0aff"}"#);
    }
}
