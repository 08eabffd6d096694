//! One page of `liveChatMessages.list` and its items: the JSON shapes kotae reads, and
//! [`normalize_item`], which turns one item into a chat message, a moderation notice or the end
//! of the chat (synchronous and free of I/O, so it is unit- and fuzz-tested alone).

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use crate::ingest::adapters::chat::{
    Author, ChatMessage, IdOrigin, IdScope, MessageKind, ModerationEvent, ModerationNotice, Paid, Platform,
    RawEncoding, RawFrame, Roles, Support,
};
use crate::ingest::adapters::parse_rfc3339_ms;
use crate::money::Currency;

/// One page of `liveChatMessages.list`. Items stay JSON values so one bad item is skipped alone.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    /// Token for the next page: the poll after this one asks from it, so nothing is read twice.
    #[serde(default)]
    pub next_page_token: Option<String>,
    /// How long YouTube asks the next poll to wait, in milliseconds (never less than `min_poll_ms`
    /// is waited).
    #[serde(default)]
    pub polling_interval_millis: Option<u64>,
    /// When the broadcast went offline (RFC 3339); present means the chat is over.
    #[serde(default)]
    pub offline_at: Option<String>,
    /// The page's `liveChatMessage` items, oldest first, still as JSON.
    #[serde(default)]
    pub items: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    id: String,
    snippet: Snippet,
    #[serde(default)]
    author_details: Option<AuthorDetails>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Snippet {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    live_chat_id: Option<String>,
    #[serde(default)]
    author_channel_id: Option<String>,
    #[serde(default)]
    published_at: Option<String>,
    #[serde(default)]
    display_message: Option<String>,
    #[serde(default)]
    text_message_details: Option<TextDetails>,
    #[serde(default)]
    super_chat_details: Option<MoneyDetails>,
    #[serde(default)]
    super_sticker_details: Option<MoneyDetails>,
    #[serde(default)]
    member_milestone_chat_details: Option<MilestoneDetails>,
    #[serde(default)]
    new_sponsor_details: Option<SponsorDetails>,
    #[serde(default)]
    membership_gifting_details: Option<GiftingDetails>,
    #[serde(default)]
    gift_membership_received_details: Option<GiftReceivedDetails>,
    #[serde(default)]
    message_deleted_details: Option<DeletedDetails>,
    #[serde(default)]
    user_banned_details: Option<BannedDetails>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TextDetails {
    message_text: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MoneyDetails {
    /// A string in JSON.
    amount_micros: String,
    currency: String,
    #[serde(default)]
    amount_display_string: Option<String>,
    #[serde(default)]
    user_comment: Option<String>,
    #[serde(default)]
    tier: Option<u32>,
    #[serde(default)]
    super_sticker_metadata: Option<StickerMeta>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StickerMeta {
    #[serde(default)]
    alt_text: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MilestoneDetails {
    #[serde(default)]
    user_comment: Option<String>,
    #[serde(default)]
    member_month: Option<u32>,
    #[serde(default)]
    member_level_name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct SponsorDetails {
    member_level_name: Option<String>,
    is_upgrade: bool,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct GiftingDetails {
    gift_memberships_count: Option<u32>,
    gift_memberships_level_name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct GiftReceivedDetails {
    member_level_name: Option<String>,
    gifter_channel_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeletedDetails {
    deleted_message_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BannedDetails {
    banned_user_details: BannedUser,
    #[serde(default)]
    ban_type: Option<String>,
    /// A string or number in JSON.
    #[serde(default)]
    ban_duration_seconds: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BannedUser {
    channel_id: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct AuthorDetails {
    channel_id: Option<String>,
    display_name: Option<String>,
    is_verified: bool,
    is_chat_owner: bool,
    is_chat_sponsor: bool,
    is_chat_moderator: bool,
}

/// A list item that is not a valid `liveChatMessage`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// The item does not have the shape of a `liveChatMessage` (the decoder's message).
    #[error("item: {0}")]
    Shape(String),
    /// An item of this `snippet.type` lacks its details object (the type, as named).
    #[error("{0} without its details")]
    MissingDetails(String),
    /// `amountMicros` is not a number (the value, as given).
    #[error("amountMicros '{0}' is not a number")]
    Amount(String),
    /// The currency code is not a valid code (why, in words).
    #[error("{0}")]
    Currency(String),
}

/// Where a normalized item goes.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The kotae stream the adapter feeds.
    pub stream: &'a str,
    /// The chat's `liveChatId`, used when an item does not name one.
    pub live_chat_id: &'a str,
    /// kotae's wall clock when the page was read, Unix milliseconds.
    pub received_at_ms: u64,
    /// Whether the page is the first one read, which replays chat from before kotae connected.
    pub backfill: bool,
}

/// What one list item means.
#[derive(Debug, Clone, PartialEq)]
pub enum Normalized {
    /// A chat message, Super Chat, Super Sticker or membership item.
    Chat(Box<ChatMessage>),
    /// A moderation event with the item's own id, by which a repeat is recognized.
    Moderation {
        /// The list item's id.
        id: String,
        /// The event, with where it came from.
        notice: ModerationNotice,
    },
    /// The chat is over.
    Ended,
    /// Polls, tombstones, mode changes: nothing to classify.
    Skip,
}

/// Normalizes one `liveChatMessage` item.
pub fn normalize_item(item: &Value, cx: Context<'_>) -> Result<Normalized, ItemError> {
    let parsed: Item = serde_json::from_value(item.clone()).map_err(|e| ItemError::Shape(e.to_string()))?;
    let s = parsed.snippet;
    let raw = RawFrame { encoding: RawEncoding::Json, bytes: Bytes::from(item.to_string()) };
    let channel = s.live_chat_id.clone().unwrap_or_else(|| cx.live_chat_id.to_string());
    let sent_at_ms = s.published_at.as_deref().and_then(parse_rfc3339_ms);
    let missing = || ItemError::MissingDetails(s.kind.clone());
    let moderation = |event| Normalized::Moderation {
        id: parsed.id.clone(),
        notice: ModerationNotice {
            platform: Platform::YouTube,
            stream: cx.stream.to_string(),
            channel: channel.clone(),
            event,
            sent_at_ms,
            raw: raw.clone(),
        },
    };
    let money = |d: &MoneyDetails| -> Result<Paid, ItemError> {
        let micros = d.amount_micros.parse().map_err(|_| ItemError::Amount(d.amount_micros.clone()))?;
        let currency = Currency::new(&d.currency).map_err(|e| ItemError::Currency(e.to_string()))?;
        Ok(Paid::from_micros(micros, currency, d.amount_display_string.clone(), d.tier))
    };
    let display = s.display_message.clone().unwrap_or_default();
    let level = |l: &Option<String>| l.clone().filter(|l| !l.is_empty());
    let (kind, text, paid, months, support) = match s.kind.as_str() {
        "textMessageEvent" => {
            let text = s.text_message_details.as_ref().ok_or_else(missing)?.message_text.clone();
            (MessageKind::Chat, text, None, None, None)
        }
        "superChatEvent" => {
            let d = s.super_chat_details.as_ref().ok_or_else(missing)?;
            (MessageKind::Paid, d.user_comment.clone().unwrap_or_default(), Some(money(d)?), None, None)
        }
        "superStickerEvent" => {
            let d = s.super_sticker_details.as_ref().ok_or_else(missing)?;
            let alt = d.super_sticker_metadata.as_ref().and_then(|m| m.alt_text.clone()).unwrap_or_default();
            (MessageKind::Paid, alt, Some(money(d)?), None, None)
        }
        "memberMilestoneChatEvent" => {
            let d = s.member_milestone_chat_details.as_ref();
            let text = d.and_then(|d| d.user_comment.clone()).unwrap_or_default();
            let support = Support { level: d.and_then(|d| level(&d.member_level_name)), ..Support::default() };
            (MessageKind::Membership, text, None, d.and_then(|d| d.member_month), Some(support))
        }
        "newSponsorEvent" => {
            let d = s.new_sponsor_details.as_ref();
            let support = Support {
                level: d.and_then(|d| level(&d.member_level_name)),
                upgrade: d.is_some_and(|d| d.is_upgrade),
                ..Support::default()
            };
            (MessageKind::Membership, display, None, None, Some(support))
        }
        "giftMembershipReceivedEvent" => {
            let d = s.gift_membership_received_details.as_ref();
            let support = Support {
                level: d.and_then(|d| level(&d.member_level_name)),
                gifter_id: d.and_then(|d| d.gifter_channel_id.clone()),
                ..Support::default()
            };
            (MessageKind::Membership, display, None, None, Some(support))
        }
        "membershipGiftingEvent" => {
            let d = s.membership_gifting_details.as_ref();
            let support = Support {
                gift_count: d.and_then(|d| d.gift_memberships_count),
                level: d.and_then(|d| level(&d.gift_memberships_level_name)),
                ..Support::default()
            };
            (MessageKind::Gift, display, None, None, Some(support))
        }
        "messageDeletedEvent" => {
            let d = s.message_deleted_details.as_ref().ok_or_else(missing)?;
            return Ok(moderation(ModerationEvent::MessageDeleted { message_id: d.deleted_message_id.clone() }));
        }
        "userBannedEvent" => {
            let d = s.user_banned_details.as_ref().ok_or_else(missing)?;
            let secs = d.ban_duration_seconds.as_ref().and_then(|v| match v {
                Value::String(s) => s.parse().ok(),
                other => other.as_u64(),
            });
            let timeout_secs = if d.ban_type.as_deref() == Some("permanent") { None } else { secs };
            return Ok(moderation(ModerationEvent::UserCleared {
                user_id: d.banned_user_details.channel_id.clone(),
                timeout_secs,
            }));
        }
        "chatEndedEvent" => return Ok(Normalized::Ended),
        _ => return Ok(Normalized::Skip),
    };
    let a = parsed.author_details.unwrap_or_default();
    let author = Author {
        id: a.channel_id.or(s.author_channel_id),
        id_scope: IdScope::Global,
        login: None,
        display_name: a.display_name.unwrap_or_default(),
        color: None,
        roles: Roles {
            broadcaster: a.is_chat_owner,
            moderator: a.is_chat_moderator,
            member: a.is_chat_sponsor,
            verified: a.is_verified,
            ..Roles::default()
        },
        badges: Vec::new(),
        member_months: months,
    };
    Ok(Normalized::Chat(Box::new(ChatMessage {
        platform: Platform::YouTube,
        stream: cx.stream.to_string(),
        channel,
        id: parsed.id,
        id_origin: IdOrigin::Native,
        kind,
        author,
        text,
        fragments: Vec::new(),
        paid,
        support,
        reply: None,
        sent_at_ms,
        received_at_ms: cx.received_at_ms,
        seq: 0,
        backfill: cx.backfill,
        raw,
    })))
}
