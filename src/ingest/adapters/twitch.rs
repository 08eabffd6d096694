//! Twitch: chat read over IRC-over-WebSocket (platforms.md §1.1), moderation through Helix (§1.3).
//!
//! Reading is anonymous (`justinfan…`) unless a nick and token are configured. The connection
//! asks for `twitch.tv/tags twitch.tv/commands`, answers PING, sends its own PING after
//! `ping_interval_secs` of silence, and is replaced on RECONNECT, on close, on error and when a
//! PING goes unanswered, with exponential backoff. Message ids seen recently are remembered, so a
//! resumed connection that delivers overlapping history never produces a duplicate.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::actions::{Perform, serve_actions};
use super::chat::{
    ActionError, ActionOutcome, Ingested, ModerationAction, ModerationNotice, Platform, RawEncoding, RawFrame,
};
use super::irc::{self, Event};
use super::{
    ActionRequest, AdapterIo, AdapterMetrics, AdaptersConfig, Backoff, ConnState, IngestError, IngestSink, RecentIds,
    TwitchConfig, now_ms, sleep_or_shutdown,
};
use futures_util::future::BoxFuture;

/// How long the TCP, TLS and WebSocket handshakes may take together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long an own PING may go unanswered.
const PONG_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads one Twitch channel and moderates it through Helix.
pub struct TwitchAdapter {
    stream: String,
    config: TwitchConfig,
    token: Option<String>,
    backoff: Backoff,
    dedupe_ids: usize,
    metrics: Arc<AdapterMetrics>,
    http: reqwest::Client,
}

impl TwitchAdapter {
    /// Reads the token from the environment variable the configuration names, if any.
    pub fn new(stream: &str, config: &TwitchConfig, adapters: &AdaptersConfig) -> Result<Self, IngestError> {
        let token = match &config.token_env {
            Some(var) => Some(
                std::env::var(var)
                    .map_err(|_| IngestError::Setup(format!("twitch token variable {var} is not set")))?
                    .trim_start_matches("oauth:")
                    .to_string(),
            ),
            None => None,
        };
        Ok(Self {
            stream: stream.to_string(),
            config: config.clone(),
            token,
            backoff: Backoff::new(
                Duration::from_millis(adapters.reconnect_min_ms),
                Duration::from_millis(adapters.reconnect_max_ms),
            ),
            dedupe_ids: adapters.dedupe_ids,
            metrics: Arc::new(AdapterMetrics::default()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| IngestError::Setup(e.to_string()))?,
        })
    }

    /// Sets the token directly (tests).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }
}

platform_adapter!(TwitchAdapter, Platform::Twitch);

/// Why one connection ended.
enum Ended {
    /// Lost or replaced: connect again.
    Lost(String),
    /// Shutdown requested.
    Shutdown,
}

impl TwitchAdapter {
    async fn run_inner(mut self, io: AdapterIo) -> Result<(), IngestError> {
        let AdapterIo { sink, actions, mut shutdown } = io;
        let room_id = Arc::new(OnceLock::new());
        if let Some(b) = &self.config.broadcaster_id {
            let _ = room_id.set(b.clone());
        }
        let helix = Helix {
            http: self.http.clone(),
            config: self.config.clone(),
            token: self.token.clone(),
            room_id: room_id.clone(),
            metrics: self.metrics.clone(),
        };
        let action_task = tokio::spawn(helix.serve(actions));
        let mut seen = RecentIds::new(self.dedupe_ids);
        let mut first = true;
        let result = loop {
            if !first {
                AdapterMetrics::inc(&self.metrics.reconnects);
            }
            first = false;
            self.metrics.set_state(ConnState::Connecting);
            match self.connection(&sink, &mut seen, &room_id, &mut shutdown).await {
                Ok(Ended::Shutdown) => break Ok(()),
                Ok(Ended::Lost(why)) => tracing::info!(channel = %self.config.channel, %why, "twitch connection lost"),
                Err(e) => break Err(e),
            }
            self.metrics.set_state(ConnState::Backoff);
            if sleep_or_shutdown(self.backoff.next_delay(), &mut shutdown).await {
                break Ok(());
            }
        };
        self.metrics.set_state(ConnState::Stopped);
        action_task.abort();
        result
    }

    /// One WebSocket connection, from handshake to loss. Errors only when the sink is closed.
    async fn connection(
        &mut self,
        sink: &IngestSink,
        seen: &mut RecentIds,
        room_id: &OnceLock<String>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Ended, IngestError> {
        let connect =
            tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(self.config.irc_url.as_str()));
        let (mut ws, _) = tokio::select! {
            c = connect => match c {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Ok(Ended::Lost(format!("connect: {e}"))),
                Err(_) => return Ok(Ended::Lost("connect timed out".into())),
            },
            _ = shutdown.changed() => return Ok(Ended::Shutdown),
        };
        let nick = match (&self.config.nick, &self.token) {
            (Some(n), Some(_)) => n.to_lowercase(),
            _ => format!("justinfan{}", 10_000 + now_ms() % 89_999),
        };
        let mut hello = vec!["CAP REQ :twitch.tv/tags twitch.tv/commands".to_string()];
        if let (Some(_), Some(t)) = (&self.config.nick, &self.token) {
            hello.push(format!("PASS oauth:{t}"));
        }
        hello.push(format!("NICK {nick}"));
        hello.push(format!("JOIN #{}", self.config.channel.to_lowercase()));
        for line in hello {
            if let Err(e) = ws.send(WsMessage::text(line)).await {
                return Ok(Ended::Lost(format!("handshake: {e}")));
            }
        }
        AdapterMetrics::inc(&self.metrics.connects);
        let ping_after = Duration::from_secs(self.config.ping_interval_secs.max(1));
        let mut last_rx = Instant::now();
        let mut ping_sent: Option<Instant> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(500).min(ping_after));
        loop {
            let frame = tokio::select! {
                f = ws.next() => f,
                _ = shutdown.changed() => {
                    let _ = ws.close(None).await;
                    return Ok(Ended::Shutdown);
                }
                _ = tick.tick() => {
                    if let Some(at) = ping_sent {
                        if at.elapsed() > PONG_TIMEOUT {
                            return Ok(Ended::Lost("ping timeout".into()));
                        }
                    } else if last_rx.elapsed() >= ping_after {
                        if ws.send(WsMessage::text("PING :tmi.twitch.tv")).await.is_err() {
                            return Ok(Ended::Lost("ping send failed".into()));
                        }
                        ping_sent = Some(Instant::now());
                    }
                    continue;
                }
            };
            let text = match frame {
                None => return Ok(Ended::Lost("closed".into())),
                Some(Err(e)) => return Ok(Ended::Lost(e.to_string())),
                Some(Ok(WsMessage::Text(t))) => t,
                Some(Ok(WsMessage::Close(_))) => return Ok(Ended::Lost("close frame".into())),
                Some(Ok(WsMessage::Binary(_))) => {
                    AdapterMetrics::inc(&self.metrics.parse_errors);
                    continue;
                }
                Some(Ok(_)) => continue,
            };
            last_rx = Instant::now();
            ping_sent = None;
            for line in irc::lines(text.as_str()) {
                let parsed = irc::parse_line(line).and_then(|m| {
                    let cx = irc::Context { stream: &self.stream, received_at_ms: now_ms(), seq: 0 };
                    irc::interpret(&m, line, cx)
                });
                let event = match parsed {
                    Ok(e) => e,
                    Err(e) => {
                        AdapterMetrics::inc(&self.metrics.parse_errors);
                        tracing::debug!(error = %e, line, "twitch line skipped");
                        continue;
                    }
                };
                match event {
                    Event::Chat(mut m) => {
                        if !seen.insert(&m.id) {
                            AdapterMetrics::inc(&self.metrics.duplicates);
                            continue;
                        }
                        m.seq = sink.next_seq();
                        sink.send(Ingested::Chat(*m)).await?;
                    }
                    Event::Moderation { channel, event, sent_at_ms } => {
                        let notice = ModerationNotice {
                            platform: Platform::Twitch,
                            stream: self.stream.clone(),
                            channel,
                            event,
                            sent_at_ms,
                            raw: RawFrame {
                                encoding: RawEncoding::Irc,
                                bytes: bytes::Bytes::copy_from_slice(line.as_bytes()),
                            },
                        };
                        sink.send(Ingested::Moderation(notice)).await?;
                    }
                    Event::Ping(token) => {
                        if ws.send(WsMessage::text(format!("PONG :{token}"))).await.is_err() {
                            return Ok(Ended::Lost("pong send failed".into()));
                        }
                    }
                    Event::Reconnect => return Ok(Ended::Lost("server asked to reconnect".into())),
                    Event::Welcome => {
                        self.metrics.set_state(ConnState::Connected);
                        self.backoff.reset();
                    }
                    Event::RoomState { room_id: Some(id) } => {
                        let _ = room_id.set(id);
                    }
                    Event::Notice { msg_id, text } => {
                        tracing::warn!(channel = %self.config.channel, ?msg_id, %text, "twitch notice");
                    }
                    Event::Pong | Event::RoomState { room_id: None } | Event::Other => {}
                }
            }
        }
    }
}

/// The Helix moderation back-channel.
struct Helix {
    http: reqwest::Client,
    config: TwitchConfig,
    token: Option<String>,
    /// Broadcaster id: configured, or learnt from ROOMSTATE by the reading connection.
    room_id: Arc<OnceLock<String>>,
    metrics: Arc<AdapterMetrics>,
}

impl Helix {
    /// Performs actions until every sender is dropped.
    async fn serve(self, actions: mpsc::Receiver<ActionRequest>) {
        serve_actions(actions, Platform::Twitch, &self.metrics, &self).await
    }

    async fn perform(&self, action: &ModerationAction) -> Result<ActionOutcome, ActionError> {
        if let ModerationAction::LocalHide { .. } = action {
            return Ok(ActionOutcome::Local);
        }
        let token = self.token.as_deref().ok_or(ActionError::NotConfigured("twitch token_env"))?;
        let client_id = self.config.client_id.as_deref().ok_or(ActionError::NotConfigured("twitch client_id"))?;
        let moderator = self.config.moderator_id.as_deref().ok_or(ActionError::NotConfigured("twitch moderator_id"))?;
        let broadcaster = self.room_id.get().ok_or(ActionError::NotConfigured("twitch broadcaster_id"))?;
        let base = self.config.helix_url.trim_end_matches('/');
        let ids = [("broadcaster_id", broadcaster.as_str()), ("moderator_id", moderator)];
        let request = match action {
            ModerationAction::Delete { message_id } => self
                .http
                .delete(format!("{base}/moderation/chat"))
                .query(&ids)
                .query(&[("message_id", message_id.as_str())]),
            ModerationAction::Timeout { user_id, secs, reason } => {
                let secs = (*secs).clamp(1, 1_209_600);
                let body = serde_json::json!({"data": {"user_id": user_id, "duration": secs, "reason": reason.as_deref().unwrap_or("")}});
                self.http.post(format!("{base}/moderation/bans")).query(&ids).json(&body)
            }
            ModerationAction::Ban { user_id, reason } => {
                let body = serde_json::json!({"data": {"user_id": user_id, "reason": reason.as_deref().unwrap_or("")}});
                self.http.post(format!("{base}/moderation/bans")).query(&ids).json(&body)
            }
            ModerationAction::ResolveHold { message_id, approve } => {
                let body = serde_json::json!({"user_id": moderator, "msg_id": message_id, "action": if *approve { "ALLOW" } else { "DENY" }});
                self.http.post(format!("{base}/moderation/automod/message")).json(&body)
            }
            ModerationAction::LocalHide { .. } => return Ok(ActionOutcome::Local),
        };
        let response = request
            .bearer_auth(token)
            .header("Client-Id", client_id)
            .send()
            .await
            .map_err(|e| ActionError::Transport(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            Ok(ActionOutcome::Sent)
        } else {
            let body = response.text().await.unwrap_or_default();
            Err(ActionError::Rejected { status: status.as_u16(), body: body.chars().take(300).collect() })
        }
    }
}

impl Perform for Helix {
    fn perform<'a>(&'a self, action: &'a ModerationAction) -> BoxFuture<'a, Result<ActionOutcome, ActionError>> {
        Box::pin(Helix::perform(self, action))
    }
}
