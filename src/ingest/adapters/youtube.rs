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
//!
//! `item` holds the page and item shapes and [`normalize_item`]; this file the polling adapter,
//! its error answers and the moderation back-channel.

mod item;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{mpsc, watch};

use super::actions::{Perform, serve_actions};
use super::chat::{ActionError, ActionOutcome, Ingested, ModerationAction, Platform};
use super::{
    ActionRequest, AdapterIo, AdapterMetrics, AdaptersConfig, Backoff, ConnState, EndReason, IngestError, RecentIds,
    YoutubeConfig, now_ms, sleep_or_shutdown,
};
use futures_util::future::BoxFuture;
pub use item::{Context, ItemError, ListResponse, Normalized, normalize_item};

/// Quota units per `liveChatMessages.list` call (determine_quota_cost, platforms.md §2.1).
pub const QUOTA_LIST: u64 = 5;
/// Quota units per `liveChatMessages.delete` or `liveChatBans.insert` (write calls; 50 in the
/// quota calculator — counted on the high side so the budget is never overrun).
pub const QUOTA_WRITE: u64 = 50;

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
    async fn serve(self, actions: mpsc::Receiver<ActionRequest>) {
        serve_actions(actions, Platform::YouTube, &self.metrics, &self).await
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

impl Perform for Actor {
    fn perform<'a>(&'a self, action: &'a ModerationAction) -> BoxFuture<'a, Result<ActionOutcome, ActionError>> {
        Box::pin(Actor::perform(self, action))
    }
}

#[cfg(test)]
mod tests;
