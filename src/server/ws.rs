//! `GET /v1/ingest?stream=ID`: the platform's websocket.
//!
//! One task per connection reads frames, hands them to the workers and then, strictly in
//! arrival order, to the stream's shard, and writes one verdict (or error) frame per message in
//! the order received. Up to `max_frames_in_flight` frames are in the pipeline at once; beyond
//! that the socket is not read, so TCP pushes back on the sender. When the connection ends,
//! frames already taken are still processed and counted, so every message received reaches one
//! outcome.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::Ctx;
use super::extract::{Caller, Ingest};
use super::upgrade::{Charge, Meter, Socket, Upgrade, close_code, ws_config};
use crate::ingest::rate::TokenBucket;
use crate::ingest::{FrameLimits, Item, message_id, parse_frame};
use crate::label::Label;
use crate::message::{OutError, write_json_str};
use crate::metrics::{ConnEvent, Endpoint, Outcome, RejectReason, Stage};
use crate::pipeline::classify::AbuseCategory;
use crate::server::config::FailPolicy;
use crate::stream::Out;

/// Frames over this many times `max_frame_bytes` close the connection: they must be buffered
/// whole before they can be refused.
pub(crate) const HARD_FRAME_FACTOR: usize = 16;

/// Bytes of verdicts (and automatic pongs) one ingest connection may have waiting to be sent;
/// a client that does not read them is disconnected after `send_timeout_ms`.
pub(crate) const INGEST_WRITE_BUFFER: usize = 256 * 1024;

/// A websocket close code and reason.
pub(crate) fn close_frame(code: u16, reason: &'static str) -> CloseFrame {
    CloseFrame { code: CloseCode::from(code), reason: Utf8Bytes::from_static(reason) }
}

/// How long a connection the server closes is read after its close frame went out.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);

/// Ends a websocket: sends the echo of the client's close frame when it closed, else our own
/// close frame (with `close`'s code and reason), and then reads what the client still sends
/// until its close, its end or [`CLOSE_DRAIN`]: a socket dropped with unread bytes (a flood of
/// pings) is reset, and a reset can destroy the close frame before the client reads it.
pub(crate) async fn finish<S, R, E>(
    sink: &mut S,
    source: &mut R,
    peer_closed: bool,
    close: Option<(u16, &'static str)>,
    within: Duration,
) where
    S: futures_util::Sink<Message> + Unpin,
    R: futures_util::Stream<Item = Result<Message, E>> + Unpin,
{
    if peer_closed {
        let _ = tokio::time::timeout(within, sink.flush()).await;
        return;
    }
    let frame = close.map(|(code, reason)| close_frame(code, reason));
    if tokio::time::timeout(within, sink.send(Message::Close(frame))).await.is_ok_and(|r| r.is_ok()) {
        let drain = async {
            while let Some(Ok(m)) = source.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_DRAIN.min(within), drain).await;
    }
}

/// Websocket control frames (pings, pongs) a connection may send: `rate` a second, twice that at once.
pub(crate) fn control_bucket(rate: u32) -> TokenBucket {
    TokenBucket::new(rate, rate.saturating_mul(2))
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

pub(crate) async fn ingest(
    State(ctx): State<Arc<Ctx>>,
    _: Caller<Ingest>,
    Query(query): Query<HashMap<String, String>>,
    mut req: Request,
) -> Response {
    let upgrade = match Upgrade::from_request(&mut req) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Some(stream) = query.get("stream").filter(|s| super::valid_stream(s)) else {
        return error(StatusCode::BAD_REQUEST, "query parameter `stream` (1–128 characters) is required");
    };
    if ctx.is_closing() {
        ctx.metrics.conn_event(ConnEvent::Shutdown);
        return error(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down");
    }
    let Ok(permit) = ctx.conn_slots.clone().try_acquire_owned() else {
        ctx.metrics.conn_event(ConnEvent::Full);
        return error(StatusCode::SERVICE_UNAVAILABLE, "too many connections");
    };
    let hard = ctx.config.max_frame_bytes.get().saturating_mul(HARD_FRAME_FACTOR);
    let stream: Arc<str> = Arc::from(stream.as_str());
    // Small socket buffers: the default 128 KiB each way adds up over thousands of connections,
    // and frames are flushed explicitly after each batch of verdicts.
    let config = ws_config(hard, INGEST_WRITE_BUFFER);
    let budget = ctx.frame_budget.clone();
    let tracker = ctx.tracker.clone();
    upgrade.respond(config, budget, &tracker, move |socket, meter| session(socket, meter, stream, ctx, permit))
}

/// A frame's items, with the budget its bytes hold until its verdicts are written.
type Analyzing = BoxFuture<'static, (Instant, Vec<Item>, Charge)>;
type Answering = BoxFuture<'static, (Instant, Vec<Out>, Charge)>;

struct Session {
    ctx: Arc<Ctx>,
    stream: Arc<str>,
    /// Position of the next message on this connection (ids for messages without one).
    seq: u64,
    bucket: TokenBucket,
    limits: FrameLimits,
}

impl Session {
    /// Turns a text frame into items, counting every message as received and applying the
    /// frame-size and rate limits.
    fn items(&mut self, text: &str, now: Instant) -> Vec<Item> {
        let c = &self.ctx.config;
        let mut items = if text.len() > c.max_frame_bytes.get() {
            vec![Item::Rejected {
                id: self.seq.to_string(),
                error: format!("frame of {} bytes is over the limit of {}", text.len(), c.max_frame_bytes),
                reason: RejectReason::TooLarge,
            }]
        } else {
            parse_frame(text, self.seq, &self.limits)
        };
        self.seq += items.len() as u64;
        self.ctx.metrics.received(items.len());
        let wanted = items.iter().filter(|i| matches!(i, Item::Parsed(_))).count();
        let mut refused = wanted - self.bucket.take(wanted, now);
        if refused > 0 {
            for item in items.iter_mut().rev() {
                if refused == 0 {
                    break;
                }
                if let Item::Parsed(m) = item {
                    *item = Item::Rejected {
                        id: message_id(m),
                        error: "rate limited".into(),
                        reason: RejectReason::RateLimited,
                    };
                    refused -= 1;
                }
            }
        }
        items
    }

    fn analyze(&self, items: Vec<Item>, arrived: Instant, charge: Charge) -> Analyzing {
        if !items.iter().any(|i| matches!(i, Item::Parsed(_))) {
            return futures_util::future::ready((arrived, items, charge)).boxed();
        }
        // ── cluster hook: the partition's owner analyzes (src/cluster), not the receiver.
        if self.ctx.cluster.is_some() {
            return futures_util::future::ready((arrived, items, charge)).boxed();
        }
        let ctx = self.ctx.clone();
        let deadline = arrived + Duration::from_millis(ctx.config.budget_ms.get());
        async move { (arrived, ctx.workers.analyze(items, arrived, deadline).await, charge) }.boxed()
    }

    /// Submits analyzed items to the shard now (so frames keep their order) and returns the
    /// future of their outcomes.
    async fn answer(&self, items: Vec<Item>, arrived: Instant, charge: Charge) -> Answering {
        // ── cluster hook: the frame goes to its stream's owner, in order (src/cluster).
        if let Some(node) = &self.ctx.cluster {
            let outs = node.submit(&self.ctx, self.stream.clone(), items, arrived).await;
            return async move { (arrived, outs.await, charge) }.boxed();
        }
        if !items.iter().any(|i| matches!(i, Item::Analyzed(..) | Item::OverBudget(_))) {
            let outs = items
                .into_iter()
                .map(|i| match i {
                    Item::Rejected { id, error, reason } => Out::Error(OutError { id, error }, reason),
                    other => {
                        let id = match &other {
                            Item::Parsed(m) | Item::Analyzed(m, _) | Item::OverBudget(m) => message_id(m),
                            Item::Rejected { id, .. } => id.clone(),
                        };
                        Out::Error(OutError { id, error: "server is shutting down".into() }, RejectReason::ShuttingDown)
                    }
                })
                .collect();
            return futures_util::future::ready((arrived, outs, charge)).boxed();
        }
        let pending = self.ctx.shards.submit(self.stream.clone(), items).await;
        async move { (arrived, pending.wait().await, charge) }.boxed()
    }

    /// Counts each outcome exactly once.
    fn count(&self, outs: &[Out]) {
        count_outcomes(&self.ctx, outs);
    }
}

/// Counts each outcome exactly once: ingest sessions and platform adapters alike.
pub(crate) fn count_outcomes(ctx: &Ctx, outs: &[Out]) {
    let m = &ctx.metrics;
    // Tallied first: the counters are shared by every connection, so one add per frame and
    // counter instead of one per message.
    let mut outcomes = [0u64; Outcome::ALL.len()];
    let mut labels = [0u64; Label::ALL.len()];
    let mut categories = [0u64; AbuseCategory::ALL.len()];
    for o in outs {
        match o {
            Out::Verdict(v) => {
                outcomes[Outcome::of(v.verdict.action) as usize] += 1;
                for l in &v.verdict.labels {
                    labels[l.index()] += 1;
                }
                if let Some(c) = v.verdict.abuse_category {
                    categories[c.index()] += 1;
                }
                if v.degraded.is_some() {
                    m.over_budget(ctx.config.on_budget_exceeded == FailPolicy::Closed);
                }
            }
            Out::Error(_, reason) => m.rejected(*reason),
        }
    }
    for (o, n) in Outcome::ALL.into_iter().zip(outcomes) {
        m.outcomes(o, n);
    }
    for (l, n) in Label::ALL.into_iter().zip(labels) {
        m.labels(l, n);
    }
    for (c, n) in AbuseCategory::ALL.into_iter().zip(categories) {
        m.abuse(c, n);
    }
}

/// Room reserved per outcome when encoding a frame's verdicts; a verdict with a cluster and two
/// reasons is about 200 bytes.
const VERDICT_BYTES: usize = 256;

/// Encodes a frame's outcomes, one websocket text frame each, into a single buffer: the frames
/// share it instead of each allocating (and growing) its own string.
fn encode_all(outs: &[Out]) -> Vec<Message> {
    let mut buf = Vec::with_capacity(outs.len() * VERDICT_BYTES);
    let mut ends = Vec::with_capacity(outs.len());
    for out in outs {
        encode(&mut buf, out);
        ends.push(buf.len());
    }
    let mut all = Bytes::from(buf);
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let frame = all.split_to(end - start);
            start = end;
            // Everything written is UTF-8, so the check cannot fail; it is kept over `unsafe`.
            Message::Text(
                Utf8Bytes::try_from(frame).unwrap_or_else(|_| Utf8Bytes::from("{\"error\":\"cannot encode verdict\"}")),
            )
        })
        .collect()
}

/// One outcome as its JSON frame: a [`VerdictFrame`](crate::stream::VerdictFrame) (the
/// contract's verdict, then `degraded`, `answered_at` and `answer` when present) or an error.
fn encode(buf: &mut Vec<u8>, out: &Out) {
    match out {
        Out::Verdict(v) => {
            buf.push(b'{');
            v.verdict.write_json_fields(buf);
            if let Some(d) = v.degraded {
                buf.extend_from_slice(b",\"degraded\":");
                write_json_str(buf, d);
            }
            if let Some(a) = &v.answered_at {
                buf.extend_from_slice(b",\"answered_at\":");
                write_json_str(buf, a);
            }
            if let Some(a) = &v.answer {
                buf.extend_from_slice(b",\"answer\":");
                write_json_str(buf, a);
            }
            buf.push(b'}');
        }
        Out::Error(e, _) => {
            let start = buf.len();
            if let Err(e) = serde_json::to_writer(&mut *buf, e) {
                buf.truncate(start);
                let fallback = serde_json::json!({ "error": format!("cannot encode verdict: {e}") });
                buf.extend_from_slice(fallback.to_string().as_bytes());
            }
        }
    }
}

async fn session(socket: Socket, meter: Meter, stream: Arc<str>, ctx: Arc<Ctx>, _permit: OwnedSemaphorePermit) {
    let metrics = ctx.metrics.clone();
    metrics.connections(Endpoint::Ingest).inc();
    let config = &ctx.config;
    let max_in_flight = config.max_frames_in_flight.get();
    let idle = Duration::from_millis(config.idle_timeout_ms.get());
    let send_timeout = Duration::from_millis(config.send_timeout_ms.get());
    let frame_timeout = Duration::from_millis(config.body_timeout_ms.get());
    let mut s = Session {
        ctx: ctx.clone(),
        stream,
        seq: 1,
        bucket: TokenBucket::new(config.max_messages_per_second.get(), config.rate_burst.get()),
        limits: FrameLimits::of(config, ctx.max_message_bytes),
    };
    let mut controls = control_bucket(config.max_control_frames_per_second.get());
    let (mut sink, mut source) = socket.split();
    let mut analyzing: FuturesOrdered<Analyzing> = FuturesOrdered::new();
    let mut answering: FuturesOrdered<Answering> = FuturesOrdered::new();
    let mut closing = ctx.closing.clone();
    let mut reading = !*closing.borrow();
    let mut writable = true;
    let mut close: Option<(u16, &'static str)> = if reading { None } else { Some((1001, "server shutting down")) };
    // The client closed: the library has queued the echo of its close frame.
    let mut peer_closed = false;
    // Only data frames count as activity: pings alone do not keep a connection open.
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    // Looks now and then for a frame begun but not finished in time.
    let check_every = (frame_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut frame_check = tokio::time::interval(check_every);
    frame_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let in_flight = analyzing.len() + answering.len();
        if !reading && in_flight == 0 {
            break;
        }
        tokio::select! {
            biased;
            Some((arrived, outs, charge)) = answering.next(), if !answering.is_empty() => {
                s.count(&outs);
                let outs_back = Instant::now();
                if writable {
                    let frames = encode_all(&outs);
                    let write = async {
                        for (frame, o) in frames.into_iter().zip(&outs) {
                            sink.feed(frame).await?;
                            if matches!(o, Out::Error(..)) {
                                metrics.error_frame();
                            }
                        }
                        sink.flush().await
                    };
                    match tokio::time::timeout(send_timeout, write).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => {
                            writable = false;
                            reading = false;
                        }
                        Err(_) => {
                            metrics.conn_event(ConnEvent::SlowClient);
                            tracing::info!(stream = %s.stream, "closing a client that does not take its verdicts");
                            writable = false;
                            reading = false;
                        }
                    }
                }
                drop(charge);
                metrics.observe(Stage::Write, outs_back.elapsed().as_secs_f64());
                metrics.observe(Stage::Frame, arrived.elapsed().as_secs_f64());
            }
            Some((arrived, items, charge)) = analyzing.next(), if !analyzing.is_empty() => {
                let next = s.answer(items, arrived, charge).await;
                answering.push_back(next);
            }
            msg = source.next(), if reading && in_flight < max_in_flight => {
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        idle_timer.as_mut().reset(tokio::time::Instant::now() + idle);
                        let charge = meter.claim();
                        let now = Instant::now();
                        let items = s.items(text.as_str(), now);
                        drop(text);
                        let fut = s.analyze(items, now, charge);
                        analyzing.push_back(fut);
                    }
                    Some(Ok(Message::Binary(_))) => {
                        idle_timer.as_mut().reset(tokio::time::Instant::now() + idle);
                        let charge = meter.claim();
                        let now = Instant::now();
                        metrics.received(1);
                        let item = Item::Rejected {
                            id: s.seq.to_string(),
                            error: "binary frames are not supported; send JSON text frames".into(),
                            reason: RejectReason::Malformed,
                        };
                        s.seq += 1;
                        analyzing.push_back(futures_util::future::ready((now, vec![item], charge)).boxed());
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                        drop(meter.claim());
                        if controls.take(1, Instant::now()) == 0 {
                            metrics.conn_event(ConnEvent::ControlFlood);
                            tracing::info!(stream = %s.stream, "closing a client that floods control frames");
                            close = Some((1008, "too many control frames"));
                            reading = false;
                        }
                    }
                    Some(Ok(Message::Close(_))) => {
                        peer_closed = true;
                        reading = false;
                    }
                    None => reading = false,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "ingest connection failed");
                        match close_code(&e) {
                            Some(code) => {
                                metrics.conn_event(ConnEvent::ProtocolError);
                                close = Some(code);
                            }
                            None => writable = false,
                        }
                        reading = false;
                    }
                }
            }
            changed = closing.changed(), if reading => {
                let _ = changed;
                reading = false;
                close = Some((1001, "server shutting down"));
                metrics.conn_event(ConnEvent::Shutdown);
            }
            () = &mut idle_timer, if reading && in_flight == 0 => {
                reading = false;
                close = Some((1000, "idle timeout"));
                metrics.conn_event(ConnEvent::Idle);
            }
            _ = frame_check.tick(), if reading && in_flight < max_in_flight => {
                if meter.partial_since().is_some_and(|t| t.elapsed() > frame_timeout) {
                    metrics.conn_event(ConnEvent::FrameTimeout);
                    tracing::info!(stream = %s.stream, "closing a client whose frame did not arrive in time");
                    close = Some((1008, "frame not completed in time"));
                    reading = false;
                }
            }
        }
    }
    if writable {
        finish(&mut sink, &mut source, peer_closed, close, send_timeout).await;
    }
    metrics.connections(Endpoint::Ingest).dec();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label::Action;
    use crate::message::{OutReason, OutVerdict, Scores};
    use crate::stream::VerdictFrame;

    fn frame(degraded: Option<&'static str>, answered_at: Option<&str>) -> Out {
        Out::Verdict(VerdictFrame {
            verdict: OutVerdict {
                id: "m\"1".into(),
                labels: vec![Label::Question],
                action: Action::Allow,
                scores: Scores { question: 0.5, purchase_intent: 0.0, spam: 0.001, abuse: 0.0 },
                cluster: Some("s:q3".into()),
                reasons: vec![OutReason { label: Label::Question, rule: "ja.q".into(), span: [1, 2] }],
                abuse_category: None,
                topics: vec!["size".into()],
                product: Some("p1".into()),
                shop: false,
            },
            degraded,
            answered_at: answered_at.map(Into::into),
            answer: answered_at.map(|_| "全国送料無料です \"税込\"".into()),
        })
    }

    #[test]
    fn frames_are_encoded_as_serde_would_one_message_each() {
        let outs = [
            frame(None, None),
            frame(Some("over_budget"), None),
            frame(None, Some("12:03")),
            Out::Error(OutError { id: "7".into(), error: "rate limited".into() }, RejectReason::RateLimited),
        ];
        let frames = encode_all(&outs);
        assert_eq!(frames.len(), outs.len());
        for (f, o) in frames.iter().zip(&outs) {
            let expected = match o {
                Out::Verdict(v) => serde_json::to_string(v).unwrap(),
                Out::Error(e, _) => serde_json::to_string(e).unwrap(),
            };
            let Message::Text(t) = f else { panic!("not a text frame") };
            assert_eq!(t.as_str(), expected);
        }
    }
}
