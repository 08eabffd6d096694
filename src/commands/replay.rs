//! `kotae replay FILE --to ws://…`: replays a recorded stream over a real websocket, honouring
//! its timestamps (optionally faster) or at a fixed rate, and tallies the verdicts. A progress
//! line counts the answers on a terminal ([`progress`](super::progress)).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use indicatif::ProgressBar;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::client::{ClientError, connect};
use crate::message::InMessage;

/// How to pace a replay.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Messages per second, regardless of timestamps.
    Rate(f64),
    /// Follow the `ts` gaps, `speed` times faster (1.0 = real time).
    Timestamps {
        /// How many times faster than recorded (2.0 = twice as fast).
        speed: f64,
    },
}

/// Totals of a replay.
#[derive(Debug, Default, Clone)]
pub struct ReplayReport {
    /// Messages sent.
    pub sent: usize,
    /// Verdicts received.
    pub verdicts: usize,
    /// Error answers received (the server refused the message).
    pub errors: usize,
    /// Verdicts flagged `degraded` (made past the latency budget).
    pub degraded: usize,
    /// Verdicts by action (`allow`, `hold`, `block`).
    pub by_action: BTreeMap<String, usize>,
    /// Labels across the verdicts (a verdict with two labels counts once under each).
    pub by_label: BTreeMap<String, usize>,
    /// Time from the first message sent to the last answer (summed over segments).
    pub elapsed: Duration,
}

impl ReplayReport {
    fn merge(&mut self, other: &ReplayReport) {
        self.sent += other.sent;
        self.verdicts += other.verdicts;
        self.errors += other.errors;
        self.degraded += other.degraded;
        for (k, v) in &other.by_action {
            *self.by_action.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.by_label {
            *self.by_label.entry(k.clone()).or_default() += v;
        }
        self.elapsed += other.elapsed;
    }
}

/// Reads a JSON Lines stream file.
pub fn read_stream(path: &std::path::Path) -> Result<Vec<InMessage>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_stream(&text, path)
}

/// Parses a recorded stream (JSON Lines); `path` names it in errors.
pub fn parse_stream(text: &str, path: &std::path::Path) -> Result<Vec<InMessage>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1)))
        .collect()
}

/// Replays `messages` over the websocket at `url`, in frames of at most `batch` messages, and
/// waits for every verdict.
pub async fn replay(
    url: &str,
    token: Option<&str>,
    messages: &[InMessage],
    pace: Pace,
    batch: usize,
) -> Result<ReplayReport, ClientError> {
    let mut report = ReplayReport::default();
    let ws = connect(url, token).await?;
    let progress = super::progress::counter(messages.len() as u64, "replay", "answers");
    let replayed = replay_on(ws, messages, pace, batch, &mut report, &progress).await;
    progress.finish_and_clear();
    replayed?;
    Ok(report)
}

/// Replays segments one after another on one connection, calling `between` before each
/// segment once the previous segment's verdicts are all in (the demo sets the product on
/// screen there).
pub async fn replay_segments<F, Fut>(
    url: &str,
    token: Option<&str>,
    segments: &[&[InMessage]],
    pace: Pace,
    batch: usize,
    mut between: F,
) -> Result<ReplayReport, ClientError>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ws = connect(url, token).await?;
    let mut total = ReplayReport::default();
    for (i, seg) in segments.iter().enumerate() {
        between(i).await;
        let mut r = ReplayReport::default();
        ws = replay_on(ws, seg, pace, batch, &mut r, &ProgressBar::hidden()).await?;
        total.merge(&r);
    }
    let _ = ws.close(None).await;
    Ok(total)
}

async fn replay_on(
    ws: super::client::Ws,
    messages: &[InMessage],
    pace: Pace,
    batch: usize,
    report: &mut ReplayReport,
    progress: &ProgressBar,
) -> Result<super::client::Ws, ClientError> {
    let started = Instant::now();
    let first_ts = messages.iter().find_map(|m| m.ts).unwrap_or(0);
    let due = |i: usize, m: &InMessage| -> Duration {
        match pace {
            Pace::Rate(r) => Duration::from_secs_f64(i as f64 / r.max(0.001)),
            Pace::Timestamps { speed } => Duration::from_secs_f64(
                m.ts.unwrap_or(first_ts).saturating_sub(first_ts) as f64 / 1000.0 / speed.max(0.001),
            ),
        }
    };
    let (mut sink, mut source) = ws.split();
    let total = messages.len();
    let reader = async {
        let mut r = ReplayReport::default();
        while r.verdicts + r.errors < total {
            let msg = match tokio::time::timeout(Duration::from_secs(30), source.next()).await {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(ClientError::Protocol(format!("connection failed: {e}"))),
                Ok(None) => return Err(ClientError::Protocol("server closed the connection".into())),
                Err(_) => return Err(ClientError::Protocol("no verdict for 30 s".into())),
            };
            let Message::Text(text) = msg else { continue };
            progress.inc(1);
            let v: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
            if v.get("error").is_some() {
                r.errors += 1;
                continue;
            }
            r.verdicts += 1;
            if v.get("degraded").is_some() {
                r.degraded += 1;
            }
            if let Some(a) = v["action"].as_str() {
                *r.by_action.entry(a.to_string()).or_default() += 1;
            }
            for l in v["labels"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                *r.by_label.entry(l.to_string()).or_default() += 1;
            }
        }
        Ok((r, source))
    };
    let writer = async {
        let mut i = 0;
        while i < total {
            let wait = due(i, &messages[i]).saturating_sub(started.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let now = started.elapsed();
            let mut end = i + 1;
            while end < total && end - i < batch && due(end, &messages[end]) <= now {
                end += 1;
            }
            let frame = if end - i == 1 {
                serde_json::to_string(&messages[i])
            } else {
                serde_json::to_string(&messages[i..end])
            }
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
            sink.send(Message::Text(frame.into())).await.map_err(|e| ClientError::Protocol(e.to_string()))?;
            i = end;
        }
        Ok::<_, ClientError>(sink)
    };
    let (read, sink) = tokio::join!(reader, writer);
    let (r, source) = read?;
    let sink = sink?;
    report.merge(&r);
    report.sent += total;
    report.elapsed = started.elapsed();
    sink.reunite(source).map_err(|e| ClientError::Protocol(e.to_string()))
}
