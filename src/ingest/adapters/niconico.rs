//! Niconico Live over NDGR (platforms.md §3): the view API lists segments, each segment URI
//! streams length-delimited `ChunkedMessage`s.
//!
//! Loop: `GET {view_uri}?at=now` → entries (`segment`, `previous`, `next{at}`); stream each
//! segment in order; then `GET {view_uri}?at={next.at}`. A view answer without `next` means the
//! programme ended. A segment whose stream breaks is fetched again from its start (segments are
//! replayable by URI) and the comments already delivered are dropped by `meta.id`, so nothing is
//! lost or doubled. Read-only: the only action is a local hide.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::actions::{Perform, serve_actions};
use super::chat::{ActionError, ActionOutcome, Ingested, ModerationAction, Platform};
use super::ndgr::{self, ChunkedEntry, FrameReader, chunked_entry::Entry};
use super::{
    AdapterIo, AdapterMetrics, AdaptersConfig, Backoff, ConnState, IngestError, IngestSink, NiconicoConfig, RecentIds,
    now_ms, sleep_or_shutdown,
};
use futures_util::future::BoxFuture;
use prost::Message;

/// How often one segment is retried after its stream breaks before it is given up.
const SEGMENT_ATTEMPTS: u32 = 5;

/// Streams one Niconico programme's comments.
pub struct NiconicoAdapter {
    stream: String,
    config: NiconicoConfig,
    backoff: Backoff,
    dedupe_ids: usize,
    metrics: Arc<AdapterMetrics>,
    http: reqwest::Client,
}

impl NiconicoAdapter {
    /// An adapter for one programme feeding `stream`; fails only when the HTTP client cannot be
    /// built.
    pub fn new(stream: &str, config: &NiconicoConfig, adapters: &AdaptersConfig) -> Result<Self, IngestError> {
        Ok(Self {
            stream: stream.to_string(),
            config: config.clone(),
            backoff: Backoff::new(
                Duration::from_millis(adapters.reconnect_min_ms),
                Duration::from_millis(adapters.reconnect_max_ms),
            ),
            dedupe_ids: adapters.dedupe_ids,
            metrics: Arc::new(AdapterMetrics::default()),
            // No overall timeout: segment responses stream for as long as the segment lasts.
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(60))
                .build()
                .map_err(|e| IngestError::Setup(e.to_string()))?,
        })
    }
}

platform_adapter!(NiconicoAdapter, Platform::Niconico);

/// Why a fetch stopped early.
enum Broken {
    /// Transport or framing failure: try again.
    Retry(String),
    Shutdown,
    Sink,
}

impl From<IngestError> for Broken {
    fn from(_: IngestError) -> Self {
        Broken::Sink
    }
}

impl NiconicoAdapter {
    async fn run_inner(mut self, io: AdapterIo) -> Result<(), IngestError> {
        let AdapterIo { sink, actions, mut shutdown } = io;
        let metrics = self.metrics.clone();
        let action_task =
            tokio::spawn(async move { serve_actions(actions, Platform::Niconico, &metrics, &LocalOnly).await });
        let mut seen = RecentIds::new(self.dedupe_ids);
        let mut at = "now".to_string();
        let result = loop {
            self.metrics.set_state(ConnState::Connecting);
            let entries = match self.view(&at, &mut shutdown).await {
                Ok(e) => e,
                Err(Broken::Shutdown) => break Ok(()),
                Err(Broken::Sink) => break Err(IngestError::SinkClosed),
                Err(Broken::Retry(why)) => {
                    tracing::info!(live = %self.config.live_id, %why, "niconico view failed");
                    AdapterMetrics::inc(&self.metrics.reconnects);
                    self.metrics.set_state(ConnState::Backoff);
                    if sleep_or_shutdown(self.backoff.next_delay(), &mut shutdown).await {
                        break Ok(());
                    }
                    continue;
                }
            };
            AdapterMetrics::inc(&self.metrics.connects);
            self.metrics.set_state(ConnState::Connected);
            self.backoff.reset();
            let mut next = None;
            let mut outcome = Ok(());
            for entry in entries {
                match entry {
                    Entry::Segment(s) => outcome = self.segment(&s.uri, false, &sink, &mut seen, &mut shutdown).await,
                    Entry::Previous(s) => outcome = self.segment(&s.uri, true, &sink, &mut seen, &mut shutdown).await,
                    Entry::Next(n) => next = Some(n.at),
                    Entry::Backward(_) => {}
                }
                if outcome.is_err() {
                    break;
                }
            }
            match outcome {
                Err(Broken::Shutdown) => break Ok(()),
                Err(_) => break Err(IngestError::SinkClosed),
                Ok(()) => {}
            }
            match next {
                Some(n) => at = n.to_string(),
                None => {
                    self.metrics.set_ended(super::EndReason::ChatEnded);
                    tracing::info!(
                        platform = "niconico",
                        live = %self.config.live_id,
                        reason = super::EndReason::ChatEnded.as_str(),
                        "niconico programme ended: adapter stops"
                    );
                    break Ok(());
                }
            }
        };
        self.metrics.set_state(ConnState::Stopped);
        action_task.abort();
        result
    }

    /// Fetches the view stream at `at`: all its entries, in order.
    async fn view(&self, at: &str, shutdown: &mut watch::Receiver<bool>) -> Result<Vec<Entry>, Broken> {
        let mut entries = Vec::new();
        let response = send(self.http.get(&self.config.view_uri).query(&[("at", at)]), shutdown).await?;
        self.read_frames(response, shutdown, |frame| {
            match ChunkedEntry::decode(frame) {
                Ok(ChunkedEntry { entry: Some(e) }) => entries.push(e),
                Ok(ChunkedEntry { entry: None }) => {}
                Err(_) => AdapterMetrics::inc(&self.metrics.parse_errors),
            }
            std::future::ready(Ok(()))
        })
        .await?;
        Ok(entries)
    }

    /// Streams one segment into the sink, fetching it again from the start when it breaks.
    async fn segment(
        &self,
        uri: &str,
        backfill: bool,
        sink: &IngestSink,
        seen: &mut RecentIds,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Broken> {
        let mut backoff = self.backoff.clone();
        for attempt in 1..=SEGMENT_ATTEMPTS {
            if attempt > 1 {
                AdapterMetrics::inc(&self.metrics.reconnects);
                self.metrics.set_state(ConnState::Backoff);
                if sleep_or_shutdown(backoff.next_delay(), shutdown).await {
                    return Err(Broken::Shutdown);
                }
                self.metrics.set_state(ConnState::Connected);
            }
            let response = match send(self.http.get(uri), shutdown).await {
                Ok(r) => r,
                Err(Broken::Retry(e)) => {
                    tracing::info!(%uri, error = %e, "niconico segment request failed");
                    continue;
                }
                Err(other) => return Err(other),
            };
            let result = self
                .read_frames(response, shutdown, |frame| {
                    let cx = ndgr::Context {
                        stream: &self.stream,
                        live_id: &self.config.live_id,
                        received_at_ms: now_ms(),
                        backfill,
                    };
                    let item = match ndgr::chat_from_frame(&frame, cx) {
                        Ok(Some(mut m)) => {
                            if seen.insert(&m.id) {
                                m.seq = sink.next_seq();
                                Some(m)
                            } else {
                                AdapterMetrics::inc(&self.metrics.duplicates);
                                None
                            }
                        }
                        Ok(None) => None,
                        Err(e) => {
                            AdapterMetrics::inc(&self.metrics.parse_errors);
                            tracing::debug!(error = %e, "niconico frame skipped");
                            None
                        }
                    };
                    async move {
                        match item {
                            Some(m) => sink.send(Ingested::Chat(m)).await.map_err(Broken::from),
                            None => Ok(()),
                        }
                    }
                })
                .await;
            match result {
                Ok(()) => return Ok(()),
                Err(Broken::Retry(why)) => tracing::info!(%uri, %why, "niconico segment broke; fetching it again"),
                Err(other) => return Err(other),
            }
        }
        tracing::warn!(%uri, "niconico segment given up");
        Ok(())
    }

    /// Reads a streaming body as length-delimited frames, calling `each` per frame.
    async fn read_frames<F, Fut>(
        &self,
        mut response: reqwest::Response,
        shutdown: &mut watch::Receiver<bool>,
        mut each: F,
    ) -> Result<(), Broken>
    where
        F: FnMut(bytes::Bytes) -> Fut,
        Fut: Future<Output = Result<(), Broken>>,
    {
        let mut reader = FrameReader::new();
        loop {
            let chunk = tokio::select! {
                c = response.chunk() => c,
                _ = shutdown.changed() => return Err(Broken::Shutdown),
            };
            match chunk {
                Ok(Some(bytes)) => reader.push(&bytes),
                Ok(None) if reader.pending() == 0 => return Ok(()),
                Ok(None) => return Err(Broken::Retry("stream ended inside a frame".into())),
                Err(e) => return Err(Broken::Retry(e.to_string())),
            }
            loop {
                match reader.next_frame() {
                    Ok(Some(frame)) => each(frame).await?,
                    Ok(None) => break,
                    Err(e) => {
                        AdapterMetrics::inc(&self.metrics.parse_errors);
                        return Err(Broken::Retry(e.to_string()));
                    }
                }
            }
        }
    }
}

/// Sends a request unless shutdown comes first; non-2xx answers are failures to retry.
async fn send(
    request: reqwest::RequestBuilder,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<reqwest::Response, Broken> {
    tokio::select! {
        r = request.send() => r.and_then(|r| r.error_for_status()).map_err(|e| Broken::Retry(e.to_string())),
        _ = shutdown.changed() => Err(Broken::Shutdown),
    }
}

/// Niconico has no moderation API kotae can use: only local hides succeed.
struct LocalOnly;

impl Perform for LocalOnly {
    fn perform<'a>(&'a self, action: &'a ModerationAction) -> BoxFuture<'a, Result<ActionOutcome, ActionError>> {
        let result = match action {
            ModerationAction::LocalHide { .. } => Ok(ActionOutcome::Local),
            other => Err(ActionError::Unsupported { platform: Platform::Niconico, action: other.name() }),
        };
        Box::pin(std::future::ready(result))
    }
}
