//! Websocket upgrades and the process-wide frame budget.
//!
//! The handshake is answered here rather than by axum's extractor so the upgraded socket can be
//! wrapped in a [`Metered`] reader: every byte read from a websocket is charged to one
//! [`FrameBudget`] for the whole process, and stays charged while it is part of a frame being
//! read or of a frame in the pipeline (the session holds a [`Charge`] until the frame's verdicts
//! are written). Once the budget is spent, connections are read only [`FREE_READ`] bytes ahead
//! of their last complete frame, so small frames keep flowing while large ones wait (TCP pushes
//! back on their senders); a frame that cannot complete within `body_timeout_ms` closes its
//! connection.
//!
//! [`close_code`] maps what the websocket library reports to the close code RFC 6455 §7.4.1
//! asks for: 1007 for a text frame that is not UTF-8, 1002 for protocol errors (an unmasked
//! frame from a client, reserved bits, a fragmented or over-125-byte control frame, unknown
//! opcodes), 1009 for a frame over the size limit.

// The checks return the axum `Response` to send as their error; boxing it would only unbox it
// again.
#![allow(clippy::result_large_err)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Error as WsError};

use crate::metrics::{Metrics, Refusal};

/// Bytes a connection may always read beyond its last complete frame, budget or not: a small
/// frame (a message or a short batch) never waits for large ones.
pub(crate) const FREE_READ: usize = 16 * 1024;

/// A websocket as the sessions use it.
pub(crate) type Socket = WebSocketStream<Metered<TokioIo<hyper::upgrade::Upgraded>>>;

/// Bytes of incoming frames buffered in the whole process, against `frame_budget_bytes`.
pub(crate) struct FrameBudget {
    used: AtomicUsize,
    limit: usize,
    metrics: Arc<Metrics>,
}

impl FrameBudget {
    pub fn new(limit: usize, metrics: Arc<Metrics>) -> Self {
        Self { used: AtomicUsize::new(0), limit, metrics }
    }

    /// Bytes that may still be charged before the budget is spent.
    pub fn available(&self) -> usize {
        self.limit.saturating_sub(self.used.load(Ordering::Relaxed))
    }

    fn charge(&self, n: usize) {
        let used = self.used.fetch_add(n, Ordering::Relaxed) + n;
        self.metrics.frame_budget_used.set(used as i64);
    }

    fn release(&self, n: usize) {
        let used = self.used.fetch_sub(n, Ordering::Relaxed).saturating_sub(n);
        self.metrics.frame_budget_used.set(used as i64);
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// Budget bytes held by one frame; released when dropped (its verdicts are written).
pub(crate) struct Charge {
    bytes: usize,
    budget: Arc<FrameBudget>,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// What a connection has read that no complete frame has claimed yet: the start of the frame
/// being read.
#[derive(Default)]
pub(crate) struct ReadState {
    unclaimed: AtomicUsize,
    /// When the first unclaimed byte was read.
    since: Mutex<Option<Instant>>,
}

/// One connection's share of the budget, shared by its socket and its session.
#[derive(Clone)]
pub(crate) struct Meter {
    state: Arc<ReadState>,
    budget: Arc<FrameBudget>,
}

impl Meter {
    /// A complete frame arrived: the bytes read so far become its [`Charge`].
    pub fn claim(&self) -> Charge {
        let bytes = self.state.unclaimed.swap(0, Ordering::Relaxed);
        *self.state.since.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Charge { bytes, budget: self.budget.clone() }
    }

    /// Since when a frame has been partly read, if one is.
    pub fn partial_since(&self) -> Option<Instant> {
        *self.state.since.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A socket whose reads are charged to the frame budget and held back when it is spent.
pub(crate) struct Metered<T> {
    inner: T,
    meter: Meter,
    /// Waiting for budget: a short sleep, then another look.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> Drop for Metered<T> {
    fn drop(&mut self) {
        let left = self.meter.state.unclaimed.swap(0, Ordering::Relaxed);
        self.meter.budget.release(left);
    }
}

/// How long a stalled read waits before looking at the budget again.
const STALL_POLL: Duration = Duration::from_millis(5);

impl<T: AsyncRead + Unpin> AsyncRead for Metered<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let unclaimed = this.meter.state.unclaimed.load(Ordering::Relaxed);
        let free = FREE_READ.saturating_sub(unclaimed);
        let allowed = free.max(this.meter.budget.available()).min(buf.remaining()).min(FREE_READ);
        if allowed == 0 {
            if this.stalled.is_none() {
                this.meter.budget.metrics.refused(Refusal::FrameBudget);
            }
            let sleep = this.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(STALL_POLL)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // Look again at the next poll (and register for a wake-up now).
            sleep.as_mut().reset(tokio::time::Instant::now() + STALL_POLL);
            let _ = sleep.as_mut().poll(cx);
            return Poll::Pending;
        }
        this.stalled = None;
        // Read straight into the caller's buffer, cut to `allowed`. The websocket reader hands
        // an initialized slice, so this zeroes nothing; a scratch array here would zero and
        // copy up to 16 KiB per read.
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(allowed));
        match Pin::new(&mut this.inner).poll_read(cx, &mut limited) {
            Poll::Ready(Ok(())) => {
                let n = limited.filled().len();
                if n > 0 {
                    this.meter.budget.charge(n);
                    if this.meter.state.unclaimed.fetch_add(n, Ordering::Relaxed) == 0 {
                        *this.meter.state.since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                    }
                    buf.advance(n);
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Metered<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A websocket handshake that checked out, ready to be answered.
pub(crate) struct Upgrade {
    on: hyper::upgrade::OnUpgrade,
    accept: HeaderValue,
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

impl Upgrade {
    /// Checks a websocket handshake (RFC 6455 §4.2.1); the response to send when it is not one.
    pub fn from_request(req: &mut Request) -> Result<Self, Response> {
        let bad = |m: &str| (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({ "error": m }))).into_response();
        let h = req.headers();
        if req.method() != axum::http::Method::GET
            || !has_token(h, header::CONNECTION, "upgrade")
            || !has_token(h, header::UPGRADE, "websocket")
        {
            return Err(bad("expected a websocket upgrade"));
        }
        if h.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|v| v != "13") {
            return Err((
                StatusCode::UPGRADE_REQUIRED,
                [(header::SEC_WEBSOCKET_VERSION, "13")],
                axum::Json(serde_json::json!({ "error": "websocket version 13 is required" })),
            )
                .into_response());
        }
        let Some(key) = h.get(header::SEC_WEBSOCKET_KEY) else { return Err(bad("Sec-WebSocket-Key is missing")) };
        let accept = HeaderValue::from_str(&tungstenite::handshake::derive_accept_key(key.as_bytes()))
            .map_err(|_| bad("bad Sec-WebSocket-Key"))?;
        let Some(on) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
            return Err(bad("this connection cannot be upgraded"));
        };
        Ok(Self { on, accept })
    }

    /// Answers 101 and runs `session` on the websocket once the switch is done (on a task
    /// tracked by `tracker`, so shutdown waits for it).
    pub fn respond<F, Fut>(
        self,
        config: WebSocketConfig,
        budget: Arc<FrameBudget>,
        tracker: &tokio_util::task::TaskTracker,
        session: F,
    ) -> Response
    where
        F: FnOnce(Socket, Meter) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Upgrade { on, accept } = self;
        let task = async move {
            let upgraded = match on.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(error = %e, "websocket upgrade failed");
                    return;
                }
            };
            let meter = Meter { state: Arc::default(), budget };
            let io = Metered { inner: TokioIo::new(upgraded), meter: meter.clone(), stalled: None };
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
            session(ws, meter).await;
        };
        tokio::spawn(tracker.track_future(task));
        (
            StatusCode::SWITCHING_PROTOCOLS,
            [
                (header::CONNECTION, HeaderValue::from_static("upgrade")),
                (header::UPGRADE, HeaderValue::from_static("websocket")),
                (header::SEC_WEBSOCKET_ACCEPT, accept),
            ],
        )
            .into_response()
    }
}

/// The websocket settings of a connection: frames and messages up to `max_message` bytes, reads
/// in 16 KiB steps, and at most `max_write` bytes waiting to be sent (verdicts, updates and the
/// automatic pongs together, so a client that sends pings and never reads cannot make it grow).
pub(crate) fn ws_config(max_message: usize, max_write: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(FREE_READ)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(max_write.max(32 * 1024))
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// The close frame RFC 6455 asks for after a read error, if one is to be sent.
pub(crate) fn close_code(e: &WsError) -> Option<(u16, &'static str)> {
    use tungstenite::error::ProtocolError as P;
    match e {
        WsError::Utf8(_) => Some((1007, "invalid UTF-8 in a text frame")),
        WsError::Capacity(_) => Some((1009, "frame too large")),
        WsError::Protocol(P::ResetWithoutClosingHandshake | P::ReceivedAfterClosing) => None,
        WsError::Protocol(P::ControlFrameTooBig) => Some((1002, "control frame over 125 bytes")),
        WsError::Protocol(P::NonZeroReservedBits) => Some((1002, "reserved bits set")),
        WsError::Protocol(P::UnmaskedFrameFromClient) => Some((1002, "unmasked frame")),
        WsError::Protocol(P::FragmentedControlFrame) => Some((1002, "fragmented control frame")),
        WsError::Protocol(_) => Some((1002, "protocol error")),
        WsError::AttackAttempt => Some((1002, "protocol error")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn reads_past_the_free_allowance_wait_for_the_budget_and_claims_release_it() {
        let metrics = Arc::new(Metrics::new());
        let budget = Arc::new(FrameBudget::new(FREE_READ, metrics.clone()));
        let meter = Meter { state: Arc::default(), budget: budget.clone() };
        let other = Meter { state: Arc::default(), budget: budget.clone() };
        let data = vec![7u8; 3 * FREE_READ];
        let mut a = Metered { inner: &data[..], meter: meter.clone(), stalled: None };
        let mut buf = vec![0u8; 3 * FREE_READ];
        let n = a.read(&mut buf).await.unwrap();
        assert_eq!(n, FREE_READ, "the free allowance");
        assert_eq!(budget.used(), FREE_READ);
        // A second connection still gets its free allowance although the budget is spent.
        let mut b = Metered { inner: &data[..], meter: other.clone(), stalled: None };
        assert_eq!(b.read(&mut buf).await.unwrap(), FREE_READ);
        // The first may not read further until the budget frees.
        let more = tokio::time::timeout(Duration::from_millis(50), a.read(&mut buf)).await;
        assert!(more.is_err(), "stalled while the budget is spent");
        assert_eq!(metrics.refused_total(Refusal::FrameBudget), 1);
        let charge = meter.claim();
        assert!(meter.partial_since().is_none());
        assert_eq!(a.read(&mut buf).await.unwrap(), FREE_READ, "a claimed frame frees the allowance");
        drop(charge);
        drop(b);
        drop(a);
        assert_eq!(budget.used(), 0, "everything returned");
    }

    #[test]
    fn read_errors_close_with_the_code_the_rfc_asks_for() {
        use tungstenite::error::{CapacityError, ProtocolError as P};
        assert_eq!(close_code(&WsError::Utf8("x".into())).map(|c| c.0), Some(1007));
        for p in [P::UnmaskedFrameFromClient, P::NonZeroReservedBits, P::ControlFrameTooBig, P::FragmentedControlFrame]
        {
            assert_eq!(close_code(&WsError::Protocol(p)).map(|c| c.0), Some(1002));
        }
        let big = WsError::Capacity(CapacityError::MessageTooLong { size: 2, max_size: 1 });
        assert_eq!(close_code(&big).map(|c| c.0), Some(1009));
        assert_eq!(close_code(&WsError::ConnectionClosed), None);
    }
}
