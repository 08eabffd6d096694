//! `kotae bench-load --hostile`: good traffic (as `bench-load` sends it) mixed for a bounded time
//! with the attacks kotae serve must shrug off: ping floods that never read, slow request bodies,
//! large frames begun and never finished, host websockets sending frames, oversize and wild
//! messages, reads of random streams, cross-site and rebinding requests, and websocket protocol
//! errors. Reports the server's resident memory (sampled from `/metrics` every second), the good
//! traffic's latency, and whether every message received reached exactly one outcome.
//!
//! Every attacker loops at a fixed pace and stops at the deadline; the target is the server named
//! by `--to` (loopback in every documented use).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::bench_load::{LoadReport, LoadSpec, run};
use super::client::{ClientError, authority, http, metric};

/// What a hostile run measured.
#[derive(Debug, Clone, Default)]
pub struct HostileReport {
    /// The good traffic.
    pub good: LoadReport,
    /// Largest resident memory of the server seen, bytes.
    pub max_rss: u64,
    /// Resident memory at the start and at the end, bytes.
    pub first_rss: u64,
    /// Resident memory at the end, bytes.
    pub last_rss: u64,
    /// `kotae_messages_received_total` and the sum of `kotae_messages_total` once settled.
    pub received: u64,
    /// The sum of `kotae_messages_total` once settled; equal to `received` when nothing was lost.
    pub outcomes: u64,
    /// Attacks made, by kind.
    pub attacks: Vec<(&'static str, u64)>,
    /// Counters the server kept about them.
    pub refusals: Vec<(String, u64)>,
}

/// Limits a run is held to.
pub const MAX_RSS: u64 = 200 << 20;
/// The good traffic's 99th-percentile latency a run must stay under, in milliseconds.
pub const MAX_P99_MS: f64 = 10.0;

impl HostileReport {
    /// Whether the run stayed within the limits: RSS under 200 MB, good traffic's p99 under 10 ms,
    /// and received == sum of outcomes.
    pub fn passed(&self) -> bool {
        self.max_rss < MAX_RSS
            && self.good.quantile_ms(0.99) < MAX_P99_MS
            && self.received == self.outcomes
            && self.good.mismatched == 0
    }

    /// A few lines for the terminal: the good traffic, memory against the limit, the accounting,
    /// the attacks made and the server's refusal counters.
    pub fn summary(&self) -> String {
        let mb = |b: u64| b as f64 / (1 << 20) as f64;
        let mut s = format!(
            "good traffic: {}\nserver RSS: {:.1} MB at start, {:.1} MB max, {:.1} MB at the end (limit {:.0} MB)\n\
             accounting: {} received, {} outcomes ({})\nattacks:",
            self.good.summary(),
            mb(self.first_rss),
            mb(self.max_rss),
            mb(self.last_rss),
            mb(MAX_RSS),
            self.received,
            self.outcomes,
            if self.received == self.outcomes { "equal" } else { "NOT EQUAL" },
        );
        for (k, n) in &self.attacks {
            s += &format!(" {k} {n},");
        }
        s.pop();
        s += "\nrefused by the server:";
        for (k, n) in &self.refusals {
            s += &format!(" {k} {n},");
        }
        s.pop();
        s += &format!(
            "\nverdict: {} (RSS < {:.0} MB, good p99 < {MAX_P99_MS} ms at the offered rate, received == outcomes)",
            if self.passed() { "PASS" } else { "FAIL" },
            mb(MAX_RSS)
        );
        s
    }
}

/// A websocket opened by hand on a raw socket (attackers send what libraries never would).
async fn raw_ws(addr: &str, path: &str, extra: &str) -> Option<TcpStream> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    s.write_all(req.as_bytes()).await.ok()?;
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.ok()? == 0 || head.len() > 4096 {
            return None;
        }
        head.push(b[0]);
    }
    head.starts_with(b"HTTP/1.1 101").then_some(s)
}

/// A client frame: masked unless `mask` is false.
fn frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let mut f = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
    let m = if mask { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(m | n as u8),
        n if n < 65536 => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if mask {
        let key = [0x5a, 0x17, 0xc3, 0x01];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// Runs `attack` every `every` until `stop`, counting the rounds, on the attackers' runtime.
fn attacker<F, Fut>(
    rt: &tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    every: Duration,
    attack: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(u64) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    rt.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut round = 0;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            attack(round).await;
            round += 1;
            count.fetch_add(1, Ordering::Relaxed);
        }
    })
}

/// Reads what the server says until it closes or `within` passes.
async fn drain(s: &mut TcpStream, within: Duration) {
    let mut buf = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(within, async { while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {} }).await;
}

async fn sample_rss(addr: &str) -> Option<u64> {
    let (_, text) = http(addr, "GET", "/metrics", None, None).await.ok()?;
    metric(&text, "kotae_process_resident_bytes").map(|v| v as u64)
}

/// Runs the good traffic of `spec` and the attacks side by side for `spec.duration`.
pub async fn run_hostile(spec: LoadSpec) -> Result<HostileReport, ClientError> {
    let addr = authority(&spec.server)?.to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = spec.duration;
    let kinds = [
        "ping_flood",
        "slow_body",
        "unfinished_frame",
        "host_frames",
        "bad_messages",
        "random_reads",
        "cross_site",
        "protocol_errors",
    ];
    let counts: Vec<Arc<AtomicU64>> = kinds.iter().map(|_| Arc::default()).collect();
    let first_rss = sample_rss(&addr).await.unwrap_or(0);
    // The attackers get a runtime (one thread) of their own, so they never hold up the timers
    // and readers that measure the good traffic.
    let attackers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("hostile")
        .enable_all()
        .build()
        .map_err(ClientError::Io)?;
    let rt = attackers.handle().clone();
    let mut tasks = Vec::new();

    // Pings as fast as the socket takes them, pongs never read; four at a time.
    for _ in 0..4 {
        let a = addr.clone();
        tasks.push(attacker(&rt, stop.clone(), counts[0].clone(), Duration::from_millis(100), move |i| {
            let a = a.clone();
            async move {
                let Some(mut s) = raw_ws(&a, &format!("/v1/ingest?stream=flood{}", i % 4), "").await else { return };
                let ping = frame(true, 0, 0x9, b"are you there", true);
                for _ in 0..400 {
                    if s.write_all(&ping).await.is_err() {
                        break;
                    }
                }
            }
        }));
    }
    // Request bodies that never finish, twenty at a time: each waits for the server's 408.
    for _ in 0..20 {
        let a = addr.clone();
        tasks.push(attacker(&rt, stop.clone(), counts[1].clone(), Duration::from_millis(200), move |_| {
            let a = a.clone();
            async move {
                let Ok(mut s) = TcpStream::connect(&a).await else { return };
                let head = format!(
                    "PUT /v1/streams/slow/product HTTP/1.1\r\nHost: {a}\r\nContent-Type: application/json\r\n\
                     Content-Length: 100000\r\n\r\n{{\"product\":\""
                );
                if s.write_all(head.as_bytes()).await.is_ok() {
                    drain(&mut s, Duration::from_secs(30)).await;
                }
            }
        }));
    }
    // Frames of 12 MiB begun and never finished (10 MiB sent), eight at a time: 80 MiB in all,
    // more than the default frame budget; each holds what it got in until the frame timeout.
    let big = Arc::new(frame(true, 0, 0x1, &vec![b' '; 12 << 20], true));
    for k in 0..8 {
        let (a, big) = (addr.clone(), big.clone());
        tasks.push(attacker(&rt, stop.clone(), counts[2].clone(), Duration::from_millis(200), move |_| {
            let (a, big) = (a.clone(), big.clone());
            async move {
                let Some(mut s) = raw_ws(&a, &format!("/v1/ingest?stream=big{k}"), "").await else { return };
                let _ = tokio::time::timeout(Duration::from_secs(15), s.write_all(&big[..10 << 20])).await;
                drain(&mut s, Duration::from_secs(30)).await;
            }
        }));
    }
    // Host websockets: one sends frames below the control limit for the whole run, one floods.
    {
        let a = addr.clone();
        let count = counts[3].clone();
        let stop2 = stop.clone();
        tasks.push(rt.spawn(async move {
            while !stop2.load(Ordering::Relaxed) {
                let Some(mut s) = raw_ws(&a, "/v1/streams/bench-0/host", "").await else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let mut buf = vec![0u8; 64 * 1024];
                while !stop2.load(Ordering::Relaxed) {
                    if s.write_all(&frame(true, 0, 0x1, b"refresh please", true)).await.is_err() {
                        break;
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    // Read what was pushed (updates come from the good traffic only).
                    match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
                        Ok(Ok(0)) | Ok(Err(_)) => break,
                        _ => {}
                    }
                }
            }
        }));
        let a = addr.clone();
        tasks.push(attacker(&rt, stop.clone(), counts[3].clone(), Duration::from_millis(250), move |_| {
            let a = a.clone();
            async move {
                let Some(mut s) = raw_ws(&a, "/v1/streams/bench-1/host", "").await else { return };
                for _ in 0..200 {
                    if s.write_all(&frame(true, 0, 0x1, b"x", true)).await.is_err() {
                        break;
                    }
                }
                drain(&mut s, Duration::from_secs(2)).await;
            }
        }));
    }
    // Messages that are wild in every way, twenty frames a second on one connection.
    {
        let a = addr.clone();
        let count = counts[4].clone();
        let stop2 = stop.clone();
        tasks.push(rt.spawn(async move {
            let big = "u".repeat(64 * 1024);
            let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
            let frames = [
                format!(r#"[{{"id":"{big}","text":"こんにちは"}},{{"user":"{big}","text":"在庫ありますか"}}]"#),
                r#"{"text":"送料いくらですか","ts":18446744073709551615}"#.to_string(),
                r#"[{"text":"\u200b\u202e"},{"text":"\u0000"},{"text":"\ufeff"}]"#.to_string(),
                format!(r#"[{{"text":"かわいい"}},{deep},7]"#),
                "{not json".to_string(),
            ];
            while !stop2.load(Ordering::Relaxed) {
                let Some(mut s) = raw_ws(&a, "/v1/ingest?stream=wild", "").await else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let mut tick = tokio::time::interval(Duration::from_millis(50));
                let mut buf = vec![0u8; 64 * 1024];
                let mut i = 0;
                while !stop2.load(Ordering::Relaxed) {
                    tick.tick().await;
                    if s.write_all(&frame(true, 0, 0x1, frames[i % frames.len()].as_bytes(), true)).await.is_err() {
                        break;
                    }
                    i += 1;
                    count.fetch_add(1, Ordering::Relaxed);
                    // Take the error frames as they come.
                    if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
                        break;
                    }
                }
                drain(&mut s, Duration::from_secs(2)).await;
            }
        }));
    }
    // Reads of streams nobody sent to, fifty a second.
    {
        let a = addr.clone();
        tasks.push(attacker(&rt, stop.clone(), counts[5].clone(), Duration::from_millis(20), move |i| {
            let a = a.clone();
            async move {
                let what = ["questions", "held", "summary", "settings"][(i % 4) as usize];
                let _ = http(&a, "GET", &format!("/v1/streams/random-{i}/{what}"), None, None).await;
            }
        }));
    }
    // Writes from another site's page and through a re-pointed name, twenty a second.
    {
        let a = addr.clone();
        tasks.push(attacker(&rt, stop.clone(), counts[6].clone(), Duration::from_millis(50), move |i| {
            let a = a.clone();
            async move {
                let Ok(mut s) = TcpStream::connect(&a).await else { return };
                let req = if i % 2 == 0 {
                    format!(
                        "POST /v1/streams/bench-0/questions/q1/dismiss HTTP/1.1\r\nHost: {a}\r\n\
                         Origin: http://evil.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                } else {
                    "PUT /v1/streams/bench-0/product HTTP/1.1\r\nHost: rebound.example:7878\r\nContent-Type: application/json\r\n\
                     Content-Length: 15\r\nConnection: close\r\n\r\n{\"product\":\"x\"}"
                        .to_string()
                };
                if s.write_all(req.as_bytes()).await.is_ok() {
                    drain(&mut s, Duration::from_secs(2)).await;
                }
            }
        }));
    }
    // Frames that break the protocol, ten connections a second.
    {
        let a = addr.clone();
        tasks.push(attacker(&rt, stop.clone(), counts[7].clone(), Duration::from_millis(100), move |i| {
            let a = a.clone();
            async move {
                let Some(mut s) = raw_ws(&a, "/v1/ingest?stream=proto", "").await else { return };
                let bad = match i % 4 {
                    0 => frame(true, 0, 0x1, &[0x7b, 0xff, 0x7d], true),
                    1 => frame(true, 0, 0x1, br#"{"text":"a"}"#, false),
                    2 => frame(true, 4, 0x1, br#"{"text":"a"}"#, true),
                    _ => frame(true, 0, 0x9, &[0u8; 126], true),
                };
                if s.write_all(&bad).await.is_ok() {
                    drain(&mut s, Duration::from_secs(2)).await;
                }
            }
        }));
    }

    // Resident memory, every second.
    let sampler = {
        let a = addr.clone();
        let stop2 = stop.clone();
        tokio::spawn(async move {
            let mut max = 0u64;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !stop2.load(Ordering::Relaxed) {
                tick.tick().await;
                if let Some(rss) = sample_rss(&a).await {
                    max = max.max(rss);
                }
            }
            max
        })
    };

    let good = run(spec).await;
    stop.store(true, Ordering::Relaxed);
    let max_rss = sampler.await.unwrap_or(0);
    // Attackers finish their current round (bounded by their own timeouts).
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(35), t).await;
    }
    // A runtime may not be dropped from async code; this lets it go without waiting.
    attackers.shutdown_background();
    let good = good?;
    // Every message received reaches one outcome once the server has answered everything.
    let settle = Instant::now();
    let (mut received, mut outcomes, mut text) = (0, 0, String::new());
    while settle.elapsed() < Duration::from_secs(20) {
        text = http(&addr, "GET", "/metrics", None, None).await.map(|r| r.1).unwrap_or_default();
        received = metric(&text, "kotae_messages_received_total").unwrap_or(0.0) as u64;
        outcomes = ["allowed", "held", "blocked", "rejected"]
            .iter()
            .map(|o| metric(&text, &format!("kotae_messages_total{{outcome=\"{o}\"}}")).unwrap_or(0.0) as u64)
            .sum();
        if received == outcomes {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refusals = text
        .lines()
        .filter(|l| {
            (l.starts_with("kotae_refused_total")
                || l.starts_with("kotae_connection_events_total")
                || l.starts_with("kotae_rejected_total"))
                && !l.ends_with(" 0")
        })
        .filter_map(|l| l.rsplit_once(' ').map(|(k, v)| (k.to_string(), v.parse::<f64>().unwrap_or(0.0) as u64)))
        .collect();
    let last_rss = metric(&text, "kotae_process_resident_bytes").unwrap_or(0.0) as u64;
    let _ = deadline;
    Ok(HostileReport {
        good,
        max_rss: max_rss.max(last_rss),
        first_rss,
        last_rss,
        received,
        outcomes,
        attacks: kinds.iter().zip(&counts).map(|(k, c)| (*k, c.load(Ordering::Relaxed))).collect(),
        refusals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_are_masked_and_sized_as_rfc_6455_says() {
        let f = frame(true, 0, 0x1, b"hi", true);
        assert_eq!(&f[..2], &[0x81, 0x82]);
        assert_eq!(f.len(), 2 + 4 + 2);
        let f = frame(false, 4, 0x9, &[0u8; 126], false);
        assert_eq!(&f[..4], &[0x49, 126, 0, 126]);
        let f = frame(true, 0, 0x2, &vec![0u8; 70_000], true);
        assert_eq!(f[1], 0x80 | 127);
    }
}
