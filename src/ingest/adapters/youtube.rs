//! YouTube Live: `liveChatMessages.list` polling (platforms.md §2.1, §2.3), moderation with
//! `liveChatMessages.delete` and `liveChatBans.insert` (§2.4).
//!
//! Each poll passes the last `nextPageToken` and waits `pollingIntervalMillis` (at least
//! `min_poll_ms`) before the next. A failed poll is retried with the same token after a backoff,
//! so nothing is skipped; items already delivered are dropped by id. The first page is history
//! and is flagged `backfill`. Deletions and bans are list items too and are deduplicated by id
//! like messages. `offlineAt`, `chatEndedEvent`, and the error answers `liveChatEnded` (403),
//! `liveChatNotFound` (404) and `liveChatDisabled` (403) end the adapter, with a log line and
//! [`EndReason`] in its metrics; every other error is retried. Every call's quota cost is counted.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::chat::{
    ActionError, ActionOutcome, Author, ChatMessage, IdOrigin, IdScope, Ingested, MessageKind, ModerationAction,
    ModerationEvent, ModerationNotice, Paid, Platform, RawEncoding, RawFrame, Roles, Support,
};
use super::{
    ActionRequest, AdapterIo, AdapterMetrics, AdaptersConfig, Backoff, ConnState, EndReason, IngestError, RecentIds,
    YoutubeConfig, now_ms, parse_rfc3339_ms, sleep_or_shutdown,
};
use crate::money::Currency;

/// Quota units per `liveChatMessages.list` call (determine_quota_cost, platforms.md §2.1).
pub const QUOTA_LIST: u64 = 5;
/// Quota units per `liveChatMessages.delete` or `liveChatBans.insert` (write calls; 50 in the
/// quota calculator — counted on the high side so the budget is never overrun).
pub const QUOTA_WRITE: u64 = 50;

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

/// Polls one YouTube live chat.
pub struct YoutubeAdapter {
    stream: String,
    config: YoutubeConfig,
    api_key: Option<String>,
    oauth: Option<String>,
    backoff: Backoff,
    dedupe_ids: usize,
    metrics: Arc<AdapterMetrics>,
    http: reqwest::Client,
}

impl YoutubeAdapter {
    /// Reads the API key and OAuth token from the environment variables the configuration names.
    pub fn new(stream: &str, config: &YoutubeConfig, adapters: &AdaptersConfig) -> Result<Self, IngestError> {
        let env = |var: &Option<String>| -> Result<Option<String>, IngestError> {
            var.as_ref()
                .map(|v| std::env::var(v).map_err(|_| IngestError::Setup(format!("youtube variable {v} is not set"))))
                .transpose()
        };
        Ok(Self {
            stream: stream.to_string(),
            config: config.clone(),
            api_key: env(&config.api_key_env)?,
            oauth: env(&config.oauth_token_env)?,
            backoff: Backoff::new(
                Duration::from_millis(adapters.reconnect_min_ms),
                Duration::from_millis(adapters.reconnect_max_ms),
            ),
            dedupe_ids: adapters.dedupe_ids,
            metrics: Arc::new(AdapterMetrics::default()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| IngestError::Setup(e.to_string()))?,
        })
    }

    /// Sets the credentials directly (tests).
    pub fn with_credentials(mut self, api_key: Option<String>, oauth: Option<String>) -> Self {
        self.api_key = api_key;
        self.oauth = oauth;
        self
    }
}

platform_adapter!(YoutubeAdapter, Platform::YouTube);

impl YoutubeAdapter {
    fn base(&self) -> &str {
        self.config.api_url.trim_end_matches('/')
    }

    fn authorize(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match (&self.oauth, &self.api_key) {
            (Some(t), _) => r.bearer_auth(t),
            (None, Some(k)) => r.query(&[("key", k)]),
            (None, None) => r,
        }
    }

    async fn run_inner(mut self, io: AdapterIo) -> Result<(), IngestError> {
        let AdapterIo { sink, actions, mut shutdown } = io;
        let actor = Actor {
            http: self.http.clone(),
            base: self.base().to_string(),
            live_chat_id: self.config.live_chat_id.clone(),
            oauth: self.oauth.clone(),
            metrics: self.metrics.clone(),
        };
        let action_task = tokio::spawn(actor.serve(actions));
        let mut seen = RecentIds::new(self.dedupe_ids);
        let mut page_token: Option<String> = None;
        let mut first_page = true;
        let mut failed = false;
        let result = loop {
            if failed {
                AdapterMetrics::inc(&self.metrics.reconnects);
                self.metrics.set_state(ConnState::Backoff);
                if sleep_or_shutdown(self.backoff.next_delay(), &mut shutdown).await {
                    break Ok(());
                }
            }
            if *shutdown.borrow() {
                break Ok(());
            }
            if self.metrics.state() != ConnState::Connected {
                self.metrics.set_state(ConnState::Connecting);
            }
            let page = match self.poll(page_token.as_deref(), &mut shutdown).await {
                Ok(Some(p)) => p,
                Ok(None) => break Ok(()),
                Err(PollError::Retry(why)) => {
                    tracing::info!(chat = %self.config.live_chat_id, %why, "youtube poll failed");
                    failed = true;
                    continue;
                }
                Err(PollError::Over { reason, status, message }) => {
                    self.end(reason, &format!("{status} {}: {message}", reason.youtube_reason()));
                    break Ok(());
                }
            };
            if failed || first_page {
                AdapterMetrics::inc(&self.metrics.connects);
            }
            failed = false;
            self.backoff.reset();
            self.metrics.set_state(ConnState::Connected);
            let cx = Context {
                stream: &self.stream,
                live_chat_id: &self.config.live_chat_id,
                received_at_ms: now_ms(),
                backfill: first_page,
            };
            let mut ended = page.offline_at.is_some();
            for item in &page.items {
                match normalize_item(item, cx) {
                    Ok(Normalized::Chat(mut m)) => {
                        if !seen.insert(&m.id) {
                            AdapterMetrics::inc(&self.metrics.duplicates);
                            continue;
                        }
                        m.seq = sink.next_seq();
                        sink.send(Ingested::Chat(*m)).await?;
                    }
                    // Deletions and bans are list items with ids too: a page served again
                    // after a failed poll must not report them twice.
                    Ok(Normalized::Moderation { id, notice }) => {
                        if !seen.insert(&id) {
                            AdapterMetrics::inc(&self.metrics.duplicates);
                            continue;
                        }
                        sink.send(Ingested::Moderation(notice)).await?
                    }
                    Ok(Normalized::Ended) => ended = true,
                    Ok(Normalized::Skip) => {}
                    Err(e) => {
                        AdapterMetrics::inc(&self.metrics.parse_errors);
                        tracing::debug!(error = %e, "youtube item skipped");
                    }
                }
            }
            first_page = false;
            if ended {
                let why = if page.offline_at.is_some() { "offlineAt" } else { "chatEndedEvent" };
                self.end(EndReason::ChatEnded, why);
                break Ok(());
            }
            if let Some(t) = page.next_page_token {
                page_token = Some(t);
            }
            let wait = page.polling_interval_millis.unwrap_or(0).max(self.config.min_poll_ms);
            if sleep_or_shutdown(Duration::from_millis(wait), &mut shutdown).await {
                break Ok(());
            }
        };
        self.metrics.set_state(ConnState::Stopped);
        action_task.abort();
        result
    }

    /// Records that the chat is over and says so: an ended chat is the normal end of a live; a
    /// missing or disabled one means the configuration points at the wrong chat.
    fn end(&self, reason: EndReason, detail: &str) {
        self.metrics.set_ended(reason);
        let chat = &self.config.live_chat_id;
        match reason {
            EndReason::ChatEnded => {
                tracing::info!(platform = "youtube", %chat, reason = reason.as_str(), detail, "youtube chat ended: adapter stops");
            }
            EndReason::ChatNotFound | EndReason::ChatDisabled => tracing::warn!(
                platform = "youtube",
                %chat,
                reason = reason.as_str(),
                detail,
                "youtube chat cannot be read: adapter stops (check live_chat_id and that the live has chat on)"
            ),
        }
    }

    /// One list call; `Ok(None)` on shutdown.
    async fn poll(
        &self,
        page_token: Option<&str>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Option<ListResponse>, PollError> {
        let mut request = self.http.get(format!("{}/liveChat/messages", self.base())).query(&[
            ("liveChatId", self.config.live_chat_id.as_str()),
            ("part", "id,snippet,authorDetails"),
            ("maxResults", &self.config.max_results.to_string()),
        ]);
        if let Some(t) = page_token {
            request = request.query(&[("pageToken", t)]);
        }
        AdapterMetrics::add(&self.metrics.quota_units, QUOTA_LIST);
        let call = async {
            let response = self.authorize(request).send().await.map_err(|e| PollError::Retry(e.to_string()))?;
            let status = response.status();
            let body = response.bytes().await.map_err(|e| PollError::Retry(e.to_string()))?;
            if !status.is_success() {
                if let Some((reason, message)) = chat_over(&body) {
                    return Err(PollError::Over { reason, status: status.as_u16(), message });
                }
                let excerpt = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                return Err(PollError::Retry(format!("status {status}: {excerpt}")));
            }
            serde_json::from_slice::<ListResponse>(&body).map_err(|e| {
                AdapterMetrics::inc(&self.metrics.parse_errors);
                PollError::Retry(format!("page: {e}"))
            })
        };
        tokio::select! {
            r = call => r.map(Some),
            _ = shutdown.changed() => Ok(None),
        }
    }
}

/// Why a list call gave no page.
#[derive(Debug)]
enum PollError {
    /// Transport errors, broken bodies, quota and rate limits, server errors: try again.
    Retry(String),
    /// The API says this chat will never have messages again.
    Over { reason: EndReason, status: u16, message: String },
}

/// The Data API's error envelope (`{"error":{"code","message","errors":[{"domain","reason",
/// "message"}]}}`), as far as kotae reads it.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Debug, Deserialize)]
struct ErrorItem {
    #[serde(default)]
    reason: String,
}

/// Whether an error answer to `liveChatMessages.list` says the chat is over for good:
/// `liveChatEnded` (403), `liveChatNotFound` (404) or `liveChatDisabled` (403). Every other error
/// (quota, rate limits, server errors, a body that is not the envelope) is worth retrying.
pub fn chat_over(body: &[u8]) -> Option<(EndReason, String)> {
    let e: ErrorBody = serde_json::from_slice(body).ok()?;
    let reason = e.error.errors.iter().find_map(|i| match i.reason.as_str() {
        "liveChatEnded" => Some(EndReason::ChatEnded),
        "liveChatNotFound" => Some(EndReason::ChatNotFound),
        "liveChatDisabled" => Some(EndReason::ChatDisabled),
        _ => None,
    })?;
    Some((reason, e.error.message.chars().take(200).collect()))
}

/// The moderation back-channel.
struct Actor {
    http: reqwest::Client,
    base: String,
    live_chat_id: String,
    oauth: Option<String>,
    metrics: Arc<AdapterMetrics>,
}

impl Actor {
    async fn serve(self, mut actions: mpsc::Receiver<ActionRequest>) {
        while let Some(req) = actions.recv().await {
            let result = self.perform(&req.action).await;
            match &result {
                Ok(_) => AdapterMetrics::inc(&self.metrics.actions_ok),
                Err(e) => {
                    AdapterMetrics::inc(&self.metrics.actions_failed);
                    tracing::warn!(action = req.action.name(), error = %e, "youtube action failed");
                }
            }
            if let Some(reply) = req.reply {
                let _ = reply.send(result);
            }
        }
    }

    async fn perform(&self, action: &ModerationAction) -> Result<ActionOutcome, ActionError> {
        let ban = |user_id: &str, secs: Option<u64>| {
            let mut snippet = serde_json::json!({
                "liveChatId": self.live_chat_id,
                "type": if secs.is_some() { "temporary" } else { "permanent" },
                "bannedUserDetails": {"channelId": user_id},
            });
            if let Some(s) = secs {
                snippet["banDurationSeconds"] = s.into();
            }
            self.http
                .post(format!("{}/liveChat/bans", self.base))
                .query(&[("part", "snippet")])
                .json(&serde_json::json!({"snippet": snippet}))
        };
        let request = match action {
            ModerationAction::LocalHide { .. } => return Ok(ActionOutcome::Local),
            ModerationAction::ResolveHold { .. } => {
                return Err(ActionError::Unsupported { platform: Platform::YouTube, action: action.name() });
            }
            ModerationAction::Delete { message_id } => {
                self.http.delete(format!("{}/liveChat/messages", self.base)).query(&[("id", message_id)])
            }
            ModerationAction::Timeout { user_id, secs, .. } => ban(user_id, Some((*secs).max(1))),
            ModerationAction::Ban { user_id, .. } => ban(user_id, None),
        };
        let token = self.oauth.as_deref().ok_or(ActionError::NotConfigured("youtube oauth_token_env"))?;
        AdapterMetrics::add(&self.metrics.quota_units, QUOTA_WRITE);
        let response = request.bearer_auth(token).send().await.map_err(|e| ActionError::Transport(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            Ok(ActionOutcome::Sent)
        } else {
            let body = response.text().await.unwrap_or_default();
            Err(ActionError::Rejected { status: status.as_u16(), body: body.chars().take(300).collect() })
        }
    }
}

#[cfg(test)]
mod tests;
