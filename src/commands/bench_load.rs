//! `kotae bench-load`: N websocket connections offering a target message rate to a running
//! server; reports the sustained verdict rate and the verdict latency measured at the client
//! (from sending a frame to receiving each of its verdicts). On a terminal, a progress line shows
//! the time run ([`progress`](super::progress)).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Mutex, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use super::breakdown::Histograms;
use super::client::{ClientError, connect};

/// What to offer.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// `ws://host:port` of the server (paths are added).
    pub server: String,
    /// Bearer token sent with every connection (`--token`), when the server asks for one.
    pub token: Option<String>,
    /// Websocket connections opened, each with its own window of frames.
    pub connections: usize,
    /// Streams the connections are spread over (connection i sends to stream i mod streams).
    pub streams: usize,
    /// Total messages per second over all connections; 0 = as fast as the server answers.
    pub rate: u64,
    /// Messages per frame.
    pub batch: usize,
    /// Frames a connection may have unanswered.
    pub window: usize,
    /// How long to offer load.
    pub duration: Duration,
    /// Stop after this many messages in total (0 = no limit).
    pub max_messages: u64,
    /// Chat texts to send, cycled.
    pub texts: Arc<Vec<String>>,
    /// Also read the server's stage histograms before and after, for [`LoadReport::breakdown`].
    pub breakdown: bool,
    /// At a set rate, connection c of n starts c/n of a frame's interval late, as independent
    /// connections would. Otherwise every connection sends at the same instants: a burst of one
    /// frame per connection each interval, as a platform flushing its connections on one timer
    /// does.
    pub stagger: bool,
}

/// Results of a run.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Messages sent.
    pub sent: u64,
    /// Verdicts received.
    pub verdicts: u64,
    /// Error frames received (one per message refused).
    pub errors: u64,
    /// Verdicts given without analysis (`"degraded"`: over the latency budget).
    pub degraded: u64,
    /// Replies whose id was not the one expected next (lost, reordered or unreadable).
    pub mismatched: u64,
    /// From the first frame sent to the last answer.
    pub elapsed: Duration,
    /// Per-message latency in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// With [`LoadSpec::breakdown`]: the server's stage histograms over the run.
    pub stages: Option<Histograms>,
}

impl LoadReport {
    /// Verdicts per second over the run.
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
    /// The one-line summary `kotae bench-load` prints (scripts and docs read it).
    pub fn summary(&self) -> String {
        format!(
            "sent {} messages, {} verdicts ({} degraded), {} errors, {} out of order in {:.1} s: {:.0} verdicts/s; latency p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms",
            self.sent,
            self.verdicts,
            self.degraded,
            self.errors,
            self.mismatched,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.quantile_ms(0.5),
            self.quantile_ms(0.99),
            self.quantile_ms(0.999),
            self.quantile_ms(1.0),
        )
    }

    /// Where the time went by stage and which stage is behind p99 and p999 (needs
    /// [`LoadSpec::breakdown`]).
    pub fn breakdown(&self) -> Option<String> {
        let us = |q: f64| Duration::from_secs_f64(self.quantile_ms(q) / 1000.0);
        Some(super::breakdown::report(self.stages.as_ref()?, us(0.99), us(0.999)))
    }
}

/// Chat texts for `bench-load`: the labelled fixtures and the demo stream (run from the checkout).
pub fn fixture_texts() -> std::io::Result<Vec<String>> {
    let mut texts = Vec::new();
    for path in ["fixtures/labelled/dev.jsonl", "fixtures/labelled/test.jsonl", "fixtures/streams/demo.jsonl"] {
        let body =
            std::fs::read_to_string(path).map_err(|e| std::io::Error::new(e.kind(), format!("reading {path}: {e}")))?;
        for (n, line) in body.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let m: crate::message::InMessage = serde_json::from_str(line)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{path}:{}: {e}", n + 1)))?;
            texts.push(m.text);
        }
    }
    Ok(texts)
}

/// `kotae bench-load` as the CLI runs it: prints the offered load, then the summary (and the
/// breakdown when asked). `Ok(false)` when a hostile run went past its limits.
pub async fn cli(spec: LoadSpec, hostile: bool) -> Result<bool, ClientError> {
    println!(
        "bench-load: {} connections over {} streams, {} msgs/s offered, {} per frame",
        spec.connections,
        spec.streams,
        if spec.rate == 0 { "max".to_string() } else { spec.rate.to_string() },
        spec.batch
    );
    let progress = super::progress::running(spec.duration, "bench-load");
    if hostile {
        let report = super::hostile::run_hostile(spec).await;
        progress.finish_and_clear();
        let report = report?;
        println!("{}", report.summary());
        return Ok(report.passed());
    }
    let report = run(spec).await;
    progress.finish_and_clear();
    let report = report?;
    println!("{}", report.summary());
    if let Some(b) = report.breakdown() {
        print!("{b}");
    }
    Ok(true)
}

/// The server's `kotae_stage_seconds` histograms, read from its `/metrics` page.
async fn stage_histograms(server: &str, token: Option<&str>) -> Result<Histograms, ClientError> {
    let base = server.trim_end_matches('/');
    let http = base
        .strip_prefix("ws://")
        .map(|r| format!("http://{r}"))
        .or_else(|| base.strip_prefix("wss://").map(|r| format!("https://{r}")))
        .ok_or_else(|| ClientError::Url(server.to_string()))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| ClientError::Protocol(format!("metrics: {e}")))?;
    let mut request = client.get(format!("{http}/metrics"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let page = request
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| ClientError::Protocol(format!("metrics: {e}")))?
        .text()
        .await
        .map_err(|e| ClientError::Protocol(format!("metrics: {e}")))?;
    Ok(Histograms::parse(&page))
}

/// Appends a frame of `n` messages, ids `start`… (decimal strings, per connection), to `out`.
/// `texts` are already JSON string literals, so building a frame is only copying.
fn frame(out: &mut String, texts: &[String], start: u64, n: usize, conn: usize) {
    use std::fmt::Write;
    out.clear();
    out.push('[');
    for k in 0..n {
        let i = start + k as u64;
        if k > 0 {
            out.push(',');
        }
        let text = &texts[(i as usize).wrapping_mul(7919).wrapping_add(conn) % texts.len()];
        // Writing into a String cannot fail.
        let _ = write!(out, "{{\"id\":\"{i}\",\"user\":\"u{}\",\"text\":{text}}}", i % 500);
    }
    out.push(']');
}

/// What a reply frame is, read from its first bytes only: every reply starts with the id it
/// answers (`{"id":"…",`), then `"error"` for an error frame or `"labels"` for a verdict, whose
/// labels are `[]` only when it is degraded (over budget).
#[derive(Debug, PartialEq, Eq)]
enum Reply<'a> {
    Verdict { id: &'a str, degraded: bool },
    Error { id: &'a str },
    Unknown,
}

fn classify_reply(t: &str) -> Reply<'_> {
    let Some(rest) = t.strip_prefix("{\"id\":\"") else { return Reply::Unknown };
    let Some((id, rest)) = rest.split_once('"') else { return Reply::Unknown };
    if rest.starts_with(",\"error\":") {
        Reply::Error { id }
    } else if let Some(labels) = rest.strip_prefix(",\"labels\":") {
        Reply::Verdict { id, degraded: labels.starts_with("[]") && t.contains("\"degraded\"") }
    } else {
        Reply::Unknown
    }
}

/// How late connection `c` starts its schedule: with [`LoadSpec::stagger`] at a set rate, `c/n`
/// of the interval between its frames; otherwise not at all.
fn start_offset(spec: &LoadSpec, c: usize) -> Duration {
    let per_conn_rate = spec.rate as f64 / spec.connections.max(1) as f64;
    if !spec.stagger || per_conn_rate <= 0.0 {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(spec.batch as f64 / per_conn_rate * c as f64 / spec.connections.max(1) as f64)
}

/// Runs the load and gathers the report.
pub async fn run(spec: LoadSpec) -> Result<LoadReport, ClientError> {
    let before = match spec.breakdown {
        true => Some(stage_histograms(&spec.server, spec.token.as_deref()).await?),
        false => None,
    };
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
    // Encoded once: every frame reuses them.
    let texts: Arc<Vec<String>> =
        Arc::new(spec.texts.iter().map(|t| serde_json::to_string(t).unwrap_or_else(|_| "\"\"".into())).collect());
    let mut tasks = Vec::new();
    for (c, ws) in sockets.into_iter().enumerate() {
        let spec = spec.clone();
        let texts = texts.clone();
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
                    let t0 = Instant::now() + start_offset(&spec, c);
                    let mut capacity = spec.batch * 128;
                    while Instant::now() < deadline && sent < per_conn_limit {
                        if per_conn_rate > 0.0 {
                            let due = t0 + Duration::from_secs_f64(sent as f64 / per_conn_rate);
                            tokio::time::sleep_until(due.into()).await;
                        }
                        let Ok(p) = window.acquire().await else { break };
                        p.forget();
                        let n = spec.batch.min((per_conn_limit - sent) as usize);
                        let mut f = String::with_capacity(capacity);
                        frame(&mut f, &texts, sent, n, c);
                        capacity = capacity.max(f.len());
                        sent_at.lock().unwrap_or_else(|e| e.into_inner()).push_back((Instant::now(), n));
                        if sink.send(Message::text(f)).await.is_err() {
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
                let (mut verdicts, mut errors, mut degraded, mut mismatched) = (0u64, 0u64, 0u64, 0u64);
                // Replies answer messages in the order sent, ids 0, 1, 2, … on each connection.
                let mut expected = 0u64;
                let mut id_buf = String::new();
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
                    id_buf.clear();
                    {
                        use std::fmt::Write;
                        let _ = write!(id_buf, "{expected}");
                    }
                    expected += 1;
                    let id = match classify_reply(t.as_str()) {
                        Reply::Verdict { id, degraded: d } => {
                            verdicts += 1;
                            degraded += u64::from(d);
                            id
                        }
                        Reply::Error { id } => {
                            errors += 1;
                            id
                        }
                        Reply::Unknown => {
                            errors += 1;
                            ""
                        }
                    };
                    if id != id_buf {
                        mismatched += 1;
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
                // A reader that gave up (no reply for 5 s, the connection closed) stops the writer
                // too, which would otherwise wait for a window that never opens again.
                window.close();
                (lat, verdicts, errors, degraded, mismatched)
            };
            let ((sent, mut sink), (lat, verdicts, errors, degraded, mismatched)) = tokio::join!(writer, reader);
            let _ = sink.close().await;
            let mut r = report.lock().await;
            r.sent += sent;
            r.verdicts += verdicts;
            r.errors += errors;
            r.degraded += degraded;
            r.mismatched += mismatched;
            r.latencies_us.extend(lat);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut r = std::mem::take(&mut *report.lock().await);
    r.elapsed = started.elapsed();
    r.latencies_us.sort_unstable();
    if let Some(before) = before {
        r.stages = Some(stage_histograms(&spec.server, spec.token.as_deref()).await?.since(&before));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_json_arrays_of_messages_with_sequential_ids() {
        let texts = vec![serde_json::to_string("色違い\"見せて\"").unwrap()];
        let mut f = String::new();
        frame(&mut f, &texts, 7, 2, 0);
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v[0]["id"], "7");
        assert_eq!(v[1]["id"], "8");
        assert_eq!(v[1]["user"], "u8");
        assert_eq!(v[0]["text"], "色違い\"見せて\"");
    }

    #[test]
    fn staggered_connections_spread_over_a_frames_interval() {
        let mut spec = LoadSpec {
            server: String::new(),
            token: None,
            connections: 10,
            streams: 10,
            rate: 20_000,
            batch: 10,
            window: 64,
            duration: Duration::from_secs(1),
            max_messages: 0,
            texts: Arc::new(Vec::new()),
            breakdown: false,
            stagger: false,
        };
        // 2,000 msgs/s per connection in frames of 10: a frame every 5 ms.
        assert!((0..10).all(|c| start_offset(&spec, c).is_zero()), "lockstep by default");
        spec.stagger = true;
        let offsets: Vec<u128> = (0..10).map(|c| start_offset(&spec, c).as_micros()).collect();
        assert_eq!(offsets, [0, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500]);
        spec.rate = 0;
        assert!(start_offset(&spec, 9).is_zero(), "as fast as answered: nothing to spread");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_that_stops_answering_ends_the_run_instead_of_hanging_it() {
        use futures_util::StreamExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Takes frames and never answers.
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            while let Some(Ok(_)) = ws.next().await {}
        });
        let spec = LoadSpec {
            server: format!("ws://{addr}"),
            token: None,
            connections: 1,
            streams: 1,
            rate: 0,
            batch: 1,
            window: 1,
            duration: Duration::from_secs(60),
            max_messages: 0,
            texts: Arc::new(vec!["在庫ありますか".into()]),
            breakdown: false,
            stagger: false,
        };
        let report = tokio::time::timeout(Duration::from_secs(20), run(spec)).await.expect("the run ended");
        let report = report.unwrap();
        assert_eq!((report.sent, report.verdicts), (1, 0));
    }

    #[test]
    fn replies_are_told_apart_by_their_first_bytes() {
        let verdict = r#"{"id":"3","labels":["question"],"action":"allow","scores":{},"reasons":[]}"#;
        assert_eq!(classify_reply(verdict), Reply::Verdict { id: "3", degraded: false });
        let degraded = r#"{"id":"4","labels":[],"action":"allow","reasons":[],"degraded":"over_budget"}"#;
        assert_eq!(classify_reply(degraded), Reply::Verdict { id: "4", degraded: true });
        assert_eq!(classify_reply(r#"{"id":"5","error":"rate limited"}"#), Reply::Error { id: "5" });
        assert_eq!(classify_reply(r#"{"error":"x"}"#), Reply::Unknown);
    }
}
