//! `kotae bench-load`: N websocket connections offering a target message rate to a running
//! server; reports the sustained verdict rate and the verdict latency measured at the client
//! (from sending a frame to receiving each of its verdicts).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Mutex, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use super::client::{ClientError, connect};

/// What to offer.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// `ws://host:port` of the server (paths are added).
    pub server: String,
    pub token: Option<String>,
    pub connections: usize,
    /// Streams the connections are spread over (connection i sends to stream i mod streams).
    pub streams: usize,
    /// Total messages per second over all connections; 0 = as fast as the server answers.
    pub rate: u64,
    /// Messages per frame.
    pub batch: usize,
    /// Frames a connection may have unanswered.
    pub window: usize,
    pub duration: Duration,
    /// Stop after this many messages in total (0 = no limit).
    pub max_messages: u64,
    /// Chat texts to send, cycled.
    pub texts: Arc<Vec<String>>,
}

/// Results of a run.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub sent: u64,
    pub verdicts: u64,
    pub errors: u64,
    pub degraded: u64,
    pub elapsed: Duration,
    /// Per-message latency in microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl LoadReport {
    pub fn rate(&self) -> f64 {
        self.verdicts as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    /// Latency at quantile `q` (0–1) in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
    pub fn summary(&self) -> String {
        format!(
            "sent {} messages, {} verdicts ({} degraded), {} errors in {:.1} s: {:.0} verdicts/s; latency p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms",
            self.sent,
            self.verdicts,
            self.degraded,
            self.errors,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.quantile_ms(0.5),
            self.quantile_ms(0.99),
            self.quantile_ms(0.999),
            self.quantile_ms(1.0),
        )
    }
}

fn frame(texts: &[String], start: u64, n: usize, conn: usize) -> String {
    let mut s = String::with_capacity(n * 96);
    s.push('[');
    for k in 0..n {
        let i = start + k as u64;
        if k > 0 {
            s.push(',');
        }
        let text = &texts[(i as usize).wrapping_mul(7919).wrapping_add(conn) % texts.len()];
        s += &serde_json::json!({"id": i.to_string(), "user": format!("u{}", i % 500), "text": text}).to_string();
    }
    s.push(']');
    s
}

/// Runs the load and gathers the report.
pub async fn run(spec: LoadSpec) -> Result<LoadReport, ClientError> {
    let started = Instant::now();
    let deadline = started + spec.duration;
    let per_conn_rate = spec.rate as f64 / spec.connections.max(1) as f64;
    let per_conn_limit =
        if spec.max_messages == 0 { u64::MAX } else { spec.max_messages.div_ceil(spec.connections.max(1) as u64) };
    let mut sockets = Vec::with_capacity(spec.connections);
    for c in 0..spec.connections {
        let url = format!("{}/v1/ingest?stream=bench-{}", spec.server.trim_end_matches('/'), c % spec.streams.max(1));
        sockets.push(connect(&url, spec.token.as_deref()).await?);
    }
    let report = Arc::new(Mutex::new(LoadReport::default()));
    let mut tasks = Vec::new();
    for (c, ws) in sockets.into_iter().enumerate() {
        let spec = spec.clone();
        let report = report.clone();
        tasks.push(tokio::spawn(async move {
            let (mut sink, mut source) = ws.split();
            let window = Arc::new(Semaphore::new(spec.window.max(1)));
            let sent_at: Arc<std::sync::Mutex<VecDeque<(Instant, usize)>>> = Arc::default();
            let writer_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let writer = {
                let window = window.clone();
                let sent_at = sent_at.clone();
                let writer_done = writer_done.clone();
                async move {
                    let mut sent = 0u64;
                    let t0 = Instant::now();
                    while Instant::now() < deadline && sent < per_conn_limit {
                        if per_conn_rate > 0.0 {
                            let due = t0 + Duration::from_secs_f64(sent as f64 / per_conn_rate);
                            tokio::time::sleep_until(due.into()).await;
                        }
                        let Ok(p) = window.acquire().await else { break };
                        p.forget();
                        let n = spec.batch.min((per_conn_limit - sent) as usize);
                        let f = frame(&spec.texts, sent, n, c);
                        sent_at.lock().unwrap_or_else(|e| e.into_inner()).push_back((Instant::now(), n));
                        if sink.send(Message::Text(f.into())).await.is_err() {
                            break;
                        }
                        sent += n as u64;
                    }
                    writer_done.store(true, std::sync::atomic::Ordering::SeqCst);
                    (sent, sink)
                }
            };
            let reader = async {
                let mut lat = Vec::new();
                let (mut verdicts, mut errors, mut degraded) = (0u64, 0u64, 0u64);
                let mut left_in_frame = 0usize;
                let mut frame_sent = Instant::now();
                loop {
                    let msg = match tokio::time::timeout(Duration::from_secs(5), source.next()).await {
                        Ok(Some(Ok(m))) => m,
                        _ => break,
                    };
                    let Message::Text(t) = msg else { continue };
                    if left_in_frame == 0 {
                        let Some((at, n)) = sent_at.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
                            break;
                        };
                        frame_sent = at;
                        left_in_frame = n;
                    }
                    lat.push(frame_sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    let t = t.as_str();
                    if t.starts_with("{\"id\"") && t.contains("\"error\"") {
                        errors += 1;
                    } else {
                        verdicts += 1;
                        if t.contains("\"degraded\"") {
                            degraded += 1;
                        }
                    }
                    left_in_frame -= 1;
                    if left_in_frame == 0 {
                        window.add_permits(1);
                        if writer_done.load(std::sync::atomic::Ordering::SeqCst)
                            && sent_at.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
                        {
                            break;
                        }
                    }
                }
                (lat, verdicts, errors, degraded)
            };
            let ((sent, mut sink), (lat, verdicts, errors, degraded)) = tokio::join!(writer, reader);
            let _ = sink.close().await;
            let mut r = report.lock().await;
            r.sent += sent;
            r.verdicts += verdicts;
            r.errors += errors;
            r.degraded += degraded;
            r.latencies_us.extend(lat);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut r = std::mem::take(&mut *report.lock().await);
    r.elapsed = started.elapsed();
    r.latencies_us.sort_unstable();
    Ok(r)
}
