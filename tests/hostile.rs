//! `kotae serve` against hostile clients and pages, on 127.0.0.1:0: one test per defect found
//! when the server was attacked (ping floods, unbounded fields, host websocket amplification,
//! wild timestamps, state from reads, protocol errors, nested arrays, invisible text, the bearer
//! scheme's case), the websocket conformance of close codes and control frames, and the risks:
//! cross-site requests and DNS rebinding, slow bodies, the frame budget, hot reload of broken
//! files, durable and audited edits, roles, and the console's concurrency.

mod common;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use kotae::commands::client::{Ws, connect, http, metric};
use kotae::config::Config;
use kotae::pipeline::Engine;
use kotae::server::config::AuthMode;
use kotae::server::{Server, ShutdownReport};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use common::copy_dir;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn base_config() -> Config {
    let mut c = Config::default();
    c.pipeline.dictionaries = Some(root().join("dictionaries/ja"));
    c.pipeline.tokenize.cache_dir = root().join(".kotae");
    c.server.listen = "127.0.0.1:0".parse().unwrap();
    c.server.reload_dictionaries = false;
    c.server.workers = 2;
    c
}

fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(base_config().pipeline).expect("engine")).clone()
}

struct TestServer {
    addr: String,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<ShutdownReport>,
}

impl TestServer {
    async fn start(tune: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(None, tune).await
    }

    /// With `dicts`, the server gets its own engine on that dictionary directory.
    async fn start_with(dicts: Option<&Path>, tune: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = base_config();
        config.server.journal.path = dir.path().join("journal.db");
        if let Some(d) = dicts {
            config.pipeline.dictionaries = Some(d.to_path_buf());
        }
        tune(&mut config);
        config.validate().expect("valid test config");
        let engine = if dicts.is_some() { Engine::new(config.pipeline.clone()).expect("engine") } else { engine() };
        let server = Server::bind(&config, engine).await.expect("bind");
        let addr = server.local_addr().to_string();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        Self { addr, dir, stop: Some(stop), task }
    }

    async fn ws(&self, stream: &str) -> Ws {
        connect(&format!("ws://{}/v1/ingest?stream={stream}", self.addr), None).await.expect("connect")
    }

    async fn metrics(&self) -> String {
        http(&self.addr, "GET", "/metrics", None, None).await.unwrap().1
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        let (status, text) = http(&self.addr, method, path, None, body.as_deref()).await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// A raw request: `head` is the request line and headers without the final blank line.
    async fn raw(&self, head: &str, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).await.unwrap();
        s.write_all(format!("{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes())
            .await
            .unwrap();
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw)).await;
        let text = String::from_utf8_lossy(&raw).to_string();
        let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, text)
    }

    async fn metric(&self, name: &str) -> f64 {
        metric(&self.metrics().await, name).unwrap_or(0.0)
    }

    /// Waits until every received message has its outcome, then checks the sum.
    async fn assert_outcomes_add_up(&self) {
        let started = Instant::now();
        loop {
            let text = self.metrics().await;
            let received = metric(&text, "kotae_messages_received_total").unwrap_or(-1.0);
            let total: f64 = ["allowed", "held", "blocked", "rejected"]
                .iter()
                .map(|o| metric(&text, &format!("kotae_messages_total{{outcome=\"{o}\"}}")).unwrap_or(0.0))
                .sum();
            if received == total {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "received {received} but {total} outcomes");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = self.task.await;
    }
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).unwrap(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

async fn send(ws: &mut Ws, v: &Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

// --- A raw websocket client, to send what a well-behaved library never would. -------------

/// Opens a websocket by hand; returns the socket after a `101`.
async fn raw_ws(addr: &str, path: &str, extra: &str) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    if head.starts_with("HTTP/1.1 101") {
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "the accept key of RFC 6455's example: {head}");
        Ok(s)
    } else {
        Err(head)
    }
}

/// One frame as a client sends it: masked unless `mask` is false.
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
    let key = [0x12, 0x34, 0x56, 0x78];
    if mask {
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// Reads server frames until a close frame; its code, or `None` if the connection just ends.
async fn raw_close_code(s: &mut TcpStream) -> Option<u16> {
    loop {
        let mut h = [0u8; 2];
        if tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut h)).await.expect("in time").is_err() {
            return None;
        }
        let opcode = h[0] & 0x0f;
        let mut len = u64::from(h[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).await.ok()?;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).await.ok()?;
            len = u64::from_be_bytes(b);
        }
        let mut payload = vec![0u8; len as usize];
        s.read_exact(&mut payload).await.ok()?;
        if opcode == 0x8 {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
}

// --- Defects ---------------------------------------------------------------------------------

/// Defect 1: a client that floods pings and never reads the pongs is closed (1008) instead of
/// growing the server's write buffer without bound; pings alone do not keep a connection open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_closes_the_connection_and_pings_are_not_activity() {
    // The idle timeout is long enough that a loaded machine still reads the flood before it.
    let server = TestServer::start(|c| c.server.idle_timeout_ms = 2000.try_into().unwrap()).await;
    let mut s = raw_ws(&server.addr, "/v1/ingest?stream=flood", "").await.unwrap();
    for _ in 0..200 {
        if s.write_all(&frame(true, 0, 0x9, b"ping", true)).await.is_err() {
            break;
        }
    }
    assert_eq!(raw_close_code(&mut s).await, Some(1008), "policy violation");
    assert_eq!(server.metric("kotae_connection_events_total{reason=\"control_flood\"}").await, 1.0);

    // Slow pings, well under the limit: the connection still closes when idle.
    let mut ws = server.ws("pings").await;
    let started = Instant::now();
    let closer = async {
        loop {
            if ws.send(Message::Ping(vec![1].into())).await.is_err() {
                return None;
            }
            let deadline = tokio::time::Instant::now() + Duration::from_millis(150);
            while let Ok(msg) = tokio::time::timeout_at(deadline, ws.next()).await {
                match msg {
                    Some(Ok(Message::Close(f))) => return f.map(|f| f.reason.to_string()),
                    Some(Ok(_)) => {}
                    _ => return None,
                }
            }
        }
    };
    let reason = tokio::time::timeout(Duration::from_secs(10), closer).await.expect("closed although it pings");
    assert_eq!(reason.as_deref(), Some("idle timeout"));
    assert!(started.elapsed() >= Duration::from_millis(2000));
    server.shutdown().await;
}

/// Defect 2: `id` and `user` are bounded; an oversize one gets an error, not a verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_ids_and_users_are_refused() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.ws("fields").await;
    let big = "x".repeat(100_000);
    send(&mut ws, &json!([{"id": big, "text": "こんにちは"}, {"id": "u", "user": big, "text": "こんにちは"}])).await;
    let e = recv(&mut ws).await;
    assert_eq!(e["id"], "1", "a refused id is not echoed: {e}");
    assert!(e["error"].as_str().unwrap().contains("id of 100000 bytes"), "{e}");
    let e = recv(&mut ws).await;
    assert_eq!(e["id"], "u");
    assert!(e["error"].as_str().unwrap().contains("user of 100000 bytes"), "{e}");
    server.assert_outcomes_add_up().await;
    assert_eq!(server.metric("kotae_rejected_total{reason=\"too_large\"}").await, 2.0);
    let conn = rusqlite::Connection::open(server.dir.path().join("journal.db")).unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0, "nothing of them is journaled");
    server.shutdown().await;
}

/// Defect 3: frames a host screen sends never trigger a push of the whole list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_client_sending_frames_gets_no_extra_pushes() {
    let server = TestServer::start(|_| {}).await;
    let mut host = connect(&format!("ws://{}/v1/streams/amp/host", server.addr), None).await.unwrap();
    assert_eq!(recv(&mut host).await["type"], "snapshot");
    for i in 0..15 {
        host.send(Message::Text(format!("hello {i}").into())).await.unwrap();
    }
    let extra = tokio::time::timeout(Duration::from_millis(800), recv(&mut host)).await;
    assert!(extra.is_err(), "no push without a change: {extra:?}");
    assert_eq!(server.metric("kotae_host_pushes_total").await, 1.0);
    // A real change is still pushed.
    let mut ws = server.ws("amp").await;
    send(&mut ws, &json!({"id": "q", "user": "a", "text": "送料いくらですか"})).await;
    recv(&mut ws).await;
    assert_eq!(recv(&mut host).await["type"], "update");
    server.shutdown().await;
}

/// Defect 4: a wild `ts` neither wraps nor pins the stream's clock, nor splits a question.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wild_timestamps_are_clamped() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.ws("clock").await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    send(&mut ws, &json!({"id": "a", "user": "a", "text": "敏感肌でも使えますか", "ts": now})).await;
    let a = recv(&mut ws).await;
    send(&mut ws, &json!({"id": "b", "user": "b", "text": "敏感肌でも使えますか？", "ts": u64::MAX})).await;
    let b = recv(&mut ws).await;
    send(&mut ws, &json!({"id": "c", "user": "c", "text": "敏感肌でも大丈夫ですか", "ts": now + 2000})).await;
    let c = recv(&mut ws).await;
    assert_eq!(a["cluster"], b["cluster"], "{a} {b}");
    assert_eq!(a["cluster"], c["cluster"], "one question: {a} {c}");
    send(&mut ws, &json!({"id": "d", "user": "d", "text": "送料いくらですか", "ts": now + 10 * 365 * 86_400_000}))
        .await;
    recv(&mut ws).await;
    let (_, list) = server.call("GET", "/v1/streams/clock/questions", None).await;
    let clock = list["now"].as_u64().unwrap();
    assert!(clock < now + 400_000, "the clock is not pinned in the future: {list}");
    for q in list["questions"].as_array().unwrap() {
        let why = q["why"].as_str().unwrap();
        assert!(!why.contains("waiting") || why.len() < 60, "{why}");
    }
    assert_eq!(server.metric("kotae_refused_total{what=\"timestamp\"}").await, 2.0);
    server.shutdown().await;
}

/// Defect 6: reads on stream ids nobody sent to leave no state behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_on_unknown_streams_create_no_state() {
    let server = TestServer::start(|c| c.server.max_streams = 8.try_into().unwrap()).await;
    for i in 0..300 {
        for path in ["questions", "held", "summary", "settings"] {
            let (status, _) = server.call("GET", &format!("/v1/streams/r{i}/{path}"), None).await;
            assert_eq!(status, 200);
        }
        let (status, _) = server.call("POST", &format!("/v1/streams/r{i}/questions/q1/answered"), None).await;
        assert_eq!(status, 404);
    }
    let (_, streams) = server.call("GET", "/v1/moderator/streams", None).await;
    assert_eq!(streams["streams"], json!([]), "no moderation state");
    assert_eq!(server.metric("kotae_streams").await, 0.0, "no stream state");
    // Writes create streams, up to max_streams.
    for i in 0..8 {
        let (status, _) = server.call("PUT", &format!("/v1/streams/w{i}/product"), Some(json!({"product": "p"}))).await;
        assert_eq!(status, 200);
    }
    let (status, body) = server.call("PUT", "/v1/streams/w9/product", Some(json!({"product": "p"}))).await;
    assert_eq!(status, 503, "{body}");
    let mut ws = server.ws("w10").await;
    send(&mut ws, &json!({"id": "x", "text": "こんにちは"})).await;
    assert_eq!(recv(&mut ws).await["error"], "too many streams");
    server.assert_outcomes_add_up().await;
    server.shutdown().await;
}

/// Defect 7: protocol errors end with the close frame RFC 6455 §7.4.1 asks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_close_with_their_codes_on_both_websockets() {
    let server = TestServer::start(|c| c.server.max_frame_bytes = 1024.try_into().unwrap()).await;
    let cases: [(&str, Vec<u8>, u16); 9] = [
        ("invalid UTF-8", frame(true, 0, 0x1, &[0x7b, 0xff, 0xfe, 0x7d], true), 1007),
        ("unmasked frame", frame(true, 0, 0x1, br#"{"text":"a"}"#, false), 1002),
        ("RSV1 without an extension", frame(true, 4, 0x1, br#"{"text":"a"}"#, true), 1002),
        ("126-byte ping", frame(true, 0, 0x9, &[0u8; 126], true), 1002),
        ("fragmented ping", frame(false, 0, 0x9, b"x", true), 1002),
        ("reserved opcode", frame(true, 0, 0x3, b"x", true), 1002),
        ("continuation without a start", frame(true, 0, 0x0, b"x", true), 1002),
        ("close with a bad code", frame(true, 0, 0x8, &[0x03, 0xe7], true), 1002),
        ("frame over 16 x max_frame_bytes", frame(true, 0, 0x1, &vec![b' '; 16 * 1024 + 1], true), 1009),
    ];
    for path in ["/v1/ingest?stream=proto", "/v1/streams/proto/host"] {
        for (what, bytes, code) in &cases {
            if path.contains("host") && *code == 1009 {
                continue;
            }
            let mut s = raw_ws(&server.addr, path, "").await.unwrap();
            s.write_all(bytes).await.unwrap();
            assert_eq!(raw_close_code(&mut s).await, Some(*code), "{path}: {what}");
        }
        // A 125-byte ping is answered, and a close is echoed.
        let mut s = raw_ws(&server.addr, path, "").await.unwrap();
        s.write_all(&frame(true, 0, 0x9, &[7u8; 125], true)).await.unwrap();
        s.write_all(&frame(true, 0, 0x8, &[0x03, 0xe8], true)).await.unwrap();
        assert_eq!(raw_close_code(&mut s).await, Some(1000), "{path}: a normal close is echoed");
    }
    // A text frame in fragments is one message.
    let mut s = raw_ws(&server.addr, "/v1/ingest?stream=proto", "").await.unwrap();
    s.write_all(&frame(false, 0, 0x1, br#"{"id":"f","te"#, true)).await.unwrap();
    s.write_all(&frame(true, 0, 0x9, b"mid", true)).await.unwrap();
    s.write_all(&frame(true, 0, 0x0, br#"xt":"hi"}"#, true)).await.unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 512];
    while !String::from_utf8_lossy(&got).contains("\"id\":\"f\"") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await.unwrap().unwrap();
        assert!(n > 0, "{:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&b[..n]);
    }
    assert!(server.metric("kotae_connection_events_total{reason=\"protocol_error\"}").await >= 15.0);
    server.assert_outcomes_add_up().await;
    server.shutdown().await;
}

/// Defect 8: an array mixing a too deeply nested element and a non-object gets one outcome per
/// element.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_element_costs_only_its_own_error() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.ws("nested").await;
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    ws.send(Message::Text(
        format!(r#"[{{"id":"a","text":"こんにちは"}},{deep},5,{{"id":"d","text":"送料は？"}}]"#).into(),
    ))
    .await
    .unwrap();
    assert_eq!(recv(&mut ws).await["id"], "a");
    let e = recv(&mut ws).await;
    assert_eq!((e["id"].as_str(), e["error"].is_string()), (Some("2"), true), "{e}");
    let e = recv(&mut ws).await;
    assert_eq!(e["id"], "3", "{e}");
    let v = recv(&mut ws).await;
    assert_eq!(v["id"], "d");
    assert!(v.get("action").is_some());
    server.assert_outcomes_add_up().await;
    assert_eq!(server.metric("kotae_messages_received_total").await, 4.0);
    server.shutdown().await;
}

/// Defect 9: text made only of invisible characters is refused as empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_of_invisible_characters_is_empty() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.ws("invisible").await;
    ws.send(Message::Text(
        r#"[{"text":"\u200b"},{"text":"\u202e\u200b"},{"text":"\u0000"},{"text":"\ufeff\u2060"}]"#.into(),
    ))
    .await
    .unwrap();
    for _ in 0..4 {
        assert_eq!(recv(&mut ws).await["error"], "message text is empty");
    }
    server.assert_outcomes_add_up().await;
    assert_eq!(server.metric("kotae_rejected_total{reason=\"empty\"}").await, 4.0);
    server.shutdown().await;
}

/// Defect 10: the bearer scheme is matched without regard to case (RFC 7235).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_case_bearer_scheme_is_accepted() {
    let server = TestServer::start(|c| {
        c.server.auth = AuthMode::Always;
        c.server.ingest_tokens = vec!["ingest-secret-0123456789".into()];
        c.server.host_tokens = vec!["host-secret-0123456789".into()];
    })
    .await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let (status, body) = server
            .raw(
                &format!(
                    "GET /v1/streams/s/questions HTTP/1.1\r\nHost: {}\r\nAuthorization: {scheme} host-secret-0123456789",
                    server.addr
                ),
                "",
            )
            .await;
        assert_eq!(status, 200, "{scheme}: {body}");
    }
    server.shutdown().await;
}

// --- Risks -------------------------------------------------------------------------------------

/// Pages of other sites can neither write nor open the websockets; a re-pointed name (DNS
/// rebinding) is refused; platforms without an Origin are not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_and_dns_rebinding_are_refused() {
    let server = TestServer::start(|c| c.server.allowed_origins = vec!["https://shop.example".into()]).await;
    let a = server.addr.clone();
    let json = "Content-Type: application/json";
    for (what, head, body, status) in [
        (
            "dismiss",
            format!("POST /v1/streams/s/questions/q1/dismiss HTTP/1.1\r\nHost: {a}\r\nOrigin: http://evil.example"),
            "",
            403,
        ),
        (
            "product",
            format!("PUT /v1/streams/s/product HTTP/1.1\r\nHost: {a}\r\nOrigin: http://evil.example\r\n{json}"),
            r#"{"product":"x"}"#,
            403,
        ),
        (
            "dictionary",
            format!(
                "POST /v1/moderator/dictionaries/apply HTTP/1.1\r\nHost: {a}\r\nOrigin: http://evil.example\r\n{json}"
            ),
            r#"{"op":"add","list":"abuse","section":"insult","term":"x"}"#,
            403,
        ),
        (
            "origin null",
            format!("PUT /v1/streams/s/product HTTP/1.1\r\nHost: {a}\r\nOrigin: null\r\n{json}"),
            r#"{"product":"x"}"#,
            403,
        ),
        (
            "a form",
            format!("PUT /v1/streams/s/product HTTP/1.1\r\nHost: {a}\r\nContent-Type: text/plain"),
            r#"{"product":"x"}"#,
            415,
        ),
        (
            "an image tag",
            format!(
                "GET /v1/streams/s/questions HTTP/1.1\r\nHost: {a}\r\nSec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors"
            ),
            "",
            403,
        ),
        ("rebinding", "GET /v1/streams/s/questions HTTP/1.1\r\nHost: rebound.example:7878".to_string(), "", 403),
        ("rebinding a page", "GET / HTTP/1.1\r\nHost: rebound.example".to_string(), "", 403),
        (
            "same origin",
            format!("PUT /v1/streams/s/product HTTP/1.1\r\nHost: {a}\r\nOrigin: http://{a}\r\n{json}"),
            r#"{"product":"p"}"#,
            200,
        ),
        (
            "an allowed origin",
            format!("GET /v1/streams/s/questions HTTP/1.1\r\nHost: {a}\r\nOrigin: https://shop.example"),
            "",
            200,
        ),
        (
            "a link to the page",
            format!("GET / HTTP/1.1\r\nHost: {a}\r\nSec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: navigate"),
            "",
            200,
        ),
        ("localhost", "GET /healthz HTTP/1.1\r\nHost: localhost".to_string(), "", 200),
    ] {
        let (got, text) = server.raw(&head, body).await;
        assert_eq!(got, status, "{what}: {text}");
    }
    for path in ["/v1/ingest?stream=s", "/v1/streams/s/host"] {
        let err = raw_ws(&a, path, "Origin: http://evil.example\r\n").await.expect_err("refused");
        assert!(err.starts_with("HTTP/1.1 403"), "{path}: {err}");
        raw_ws(&a, path, &format!("Origin: http://{a}\r\n")).await.expect("same origin");
        raw_ws(&a, path, "").await.expect("no Origin: a platform");
    }
    let (_, list) = server.call("GET", "/v1/streams/s/questions", None).await;
    assert_eq!(list["current_product"], "p", "only the same-origin write took effect");
    let (_, page) = server.raw(&format!("GET /moderator HTTP/1.1\r\nHost: {a}"), "").await;
    let lower = page.to_ascii_lowercase();
    assert!(lower.contains("content-security-policy: default-src 'none'; script-src 'sha256-"), "{page}");
    assert!(lower.contains("frame-ancestors 'none'"));
    assert!(lower.contains("x-content-type-options: nosniff"));
    assert!(lower.contains("x-frame-options: deny"));
    assert!(server.metric("kotae_refused_total{what=\"origin\"}").await >= 7.0);
    assert_eq!(server.metric("kotae_refused_total{what=\"host\"}").await, 2.0);
    server.shutdown().await;
}

/// A body that never finishes gets 408 after `body_timeout_ms`, before and whatever the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_bodies_are_timed_out() {
    let server = TestServer::start(|c| {
        c.server.body_timeout_ms = 300.try_into().unwrap();
        c.server.max_body_bytes = 1024.try_into().unwrap();
    })
    .await;
    let mut s = TcpStream::connect(&server.addr).await.unwrap();
    let head = format!(
        "PUT /v1/streams/s/product HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"pro",
        server.addr
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(n.is_ok(), "answered and closed in time");
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 408"), "{}", String::from_utf8_lossy(&out));
    let (status, _) = server
        .raw(
            &format!("PUT /v1/streams/s/product HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json", server.addr),
            &format!("{{\"product\":\"{}\"}}", "x".repeat(2000)),
        )
        .await;
    assert_eq!(status, 413);
    assert_eq!(server.metric("kotae_refused_total{what=\"body_timeout\"}").await, 1.0);
    assert_eq!(server.metric("kotae_refused_total{what=\"body_too_large\"}").await, 1.0);
    server.shutdown().await;
}

/// Large frames being read share one budget: past it they wait, small frames keep flowing, and a
/// frame that cannot finish in time closes its connection and gives its bytes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_frames_share_one_budget() {
    let budget = 256 * 1024;
    let server = TestServer::start(|c| {
        c.server.frame_budget_bytes = budget.try_into().unwrap();
        c.server.body_timeout_ms = 1500.try_into().unwrap();
    })
    .await;
    // Eight connections each start a 900 KiB frame and send 200 KiB of it.
    let mut hogs = Vec::new();
    for i in 0..8 {
        let mut s = raw_ws(&server.addr, &format!("/v1/ingest?stream=hog{i}"), "").await.unwrap();
        let f = frame(true, 0, 0x1, &vec![b' '; 900 * 1024], true);
        let part = f[..200 * 1024].to_vec();
        hogs.push(tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(1), s.write_all(&part)).await;
            s
        }));
    }
    let mut hogs: Vec<TcpStream> = futures_util::future::join_all(hogs).await.into_iter().map(Result::unwrap).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let used = server.metric("kotae_frame_budget_used_bytes").await;
    assert!(used <= (budget + 8 * 16 * 1024) as f64, "{used} bytes buffered");
    assert!(server.metric("kotae_refused_total{what=\"frame_budget\"}").await >= 1.0);
    // Small frames still flow.
    let mut ws = server.ws("small").await;
    send(&mut ws, &json!({"id": "s", "text": "在庫ありますか"})).await;
    assert_eq!(recv(&mut ws).await["id"], "s");
    // The stalled frames time out and their bytes come back.
    for s in &mut hogs {
        assert_eq!(raw_close_code(s).await, Some(1008));
    }
    let started = Instant::now();
    while server.metric("kotae_frame_budget_used_bytes").await > 0.0 {
        assert!(started.elapsed() < Duration::from_secs(5), "budget given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.metric("kotae_connection_events_total{reason=\"frame_timeout\"}").await, 8.0);
    server.shutdown().await;
}

async fn wait_for(server: &TestServer, name: &str, at_least: f64) {
    let started = Instant::now();
    while server.metric(name).await < at_least {
        assert!(started.elapsed() < Duration::from_secs(15), "{name} never reached {at_least}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A list emptied (or cut short) on disk is not installed until a moderator confirms it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_that_lost_most_of_its_entries_is_refused_until_confirmed() {
    let dicts = tempfile::tempdir().unwrap();
    copy_dir(&root().join("dictionaries/ja"), dicts.path());
    let server = TestServer::start_with(Some(dicts.path()), |c| c.server.reload_dictionaries = true).await;
    let mut ws = server.ws("reload").await;
    let probe = json!({"id": "p", "text": "お前死ね"});
    send(&mut ws, &probe).await;
    assert_eq!(recv(&mut ws).await["action"], "block");
    std::fs::write(dicts.path().join("abuse.txt"), "").unwrap();
    wait_for(&server, "kotae_dictionary_reloads_total{result=\"refused\"}", 1.0).await;
    send(&mut ws, &probe).await;
    assert_eq!(recv(&mut ws).await["action"], "block", "the previous dictionaries stay");
    assert_eq!(server.metric("kotae_refused_total{what=\"dictionary_shrink\"}").await, 1.0);
    let (status, body) = server.call("POST", "/v1/moderator/dictionaries/reload", None).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("abuse.txt"), "{body}");
    let (status, body) = server.call("POST", "/v1/moderator/dictionaries/reload", Some(json!({"confirm": true}))).await;
    assert_eq!(status, 200, "{body}");
    send(&mut ws, &probe).await;
    assert_ne!(recv(&mut ws).await["action"], "block", "confirmed: the emptied list is in force");
    let (_, audit) = server.call("GET", "/v1/moderator/audit", None).await;
    assert_eq!(audit["entries"][0]["action"], "dictionary.reload");
    server.shutdown().await;
}

/// An edit whose audit entry cannot be written is undone: the file goes back, nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_without_its_audit_entry_is_undone() {
    let dicts = tempfile::tempdir().unwrap();
    copy_dir(&root().join("dictionaries/ja"), dicts.path());
    let server = TestServer::start_with(Some(dicts.path()), |_| {}).await;
    let before = std::fs::read_to_string(dicts.path().join("abuse.txt")).unwrap();
    // The audit log's path taken by a directory: the entry cannot be appended.
    std::fs::create_dir(server.dir.path().join("journal.audit.jsonl")).unwrap();
    let edit = json!({"op": "add", "list": "abuse", "section": "insult", "term": "へなちょこ"});
    let (status, body) = server.call("POST", "/v1/moderator/dictionaries/apply", Some(edit)).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(std::fs::read_to_string(dicts.path().join("abuse.txt")).unwrap(), before, "the file is put back");
    let mut ws = server.ws("undo").await;
    send(&mut ws, &json!({"id": "a", "text": "へなちょこ配信"})).await;
    assert_eq!(recv(&mut ws).await["action"], "allow", "not installed");
    let leftovers: Vec<_> = std::fs::read_dir(dicts.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".kotae-edit"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files left");
    server.shutdown().await;
}

/// Host tokens read and act on the host queue but do not open the moderator console.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_tokens_do_not_open_the_moderator_console() {
    let dicts = tempfile::tempdir().unwrap();
    copy_dir(&root().join("dictionaries/ja"), dicts.path());
    let server = TestServer::start_with(Some(dicts.path()), |c| {
        c.server.auth = AuthMode::Always;
        c.server.ingest_tokens = vec!["ingest-secret-0123456789".into()];
        c.server.host_tokens = vec!["host-secret-0123456789".into()];
        c.server.moderator_tokens = vec!["moderator-secret-0123456789".into()];
    })
    .await;
    let a = server.addr.clone();
    let edit = r#"{"op":"add","list":"abuse","section":"insult","term":"へなちょこ"}"#;
    for (method, path, body) in [
        ("POST", "/v1/moderator/dictionaries/dry-run", Some(edit)),
        ("POST", "/v1/moderator/dictionaries/apply", Some(edit)),
        ("PUT", "/v1/streams/s/settings", Some(r#"{"block_at":1.0}"#)),
        ("GET", "/v1/moderator/audit", None),
        ("GET", "/v1/streams/s/held", None),
    ] {
        let (status, _) = http(&a, method, path, Some("host-secret-0123456789"), body).await.unwrap();
        assert_eq!(status, 401, "{method} {path} with a host token");
        let (status, text) = http(&a, method, path, Some("moderator-secret-0123456789"), body).await.unwrap();
        assert!(status == 200, "{method} {path} with a moderator token: {status} {text}");
    }
    let (status, _) = http(&a, "GET", "/v1/streams/s/summary", Some("host-secret-0123456789"), None).await.unwrap();
    assert_eq!(status, 200, "the host screen's summary");
    let (status, _) =
        http(&a, "GET", "/v1/streams/s/questions", Some("moderator-secret-0123456789"), None).await.unwrap();
    assert_eq!(status, 401, "each role its own endpoints");
    server.shutdown().await;
}

/// Dry runs past `max_console_jobs` get 429 (counted) instead of queueing without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_are_limited_in_concurrency() {
    let server = Arc::new(TestServer::start(|c| c.server.max_console_jobs = 1.try_into().unwrap()).await);
    let mut ws = server.ws("dry").await;
    let batch: Vec<Value> =
        (0..500).map(|i| json!({"id": i, "user": format!("u{i}"), "text": "この店員へなちょこすぎ"})).collect();
    send(&mut ws, &Value::Array(batch)).await;
    for _ in 0..500 {
        recv(&mut ws).await;
    }
    let edit =
        json!({"op": "add", "list": "abuse", "section": "insult", "term": "へなちょこ", "stream": "dry", "last": 500});
    let calls = (0..8).map(|_| {
        let server = server.clone();
        let edit = edit.clone();
        tokio::spawn(async move { server.call("POST", "/v1/moderator/dictionaries/dry-run", Some(edit)).await.0 })
    });
    let statuses: Vec<u16> = futures_util::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
    let busy = statuses.iter().filter(|s| **s == 429).count();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    assert_eq!(server.metric("kotae_refused_total{what=\"console_busy\"}").await, busy as f64);
    eprintln!("dry runs: {statuses:?}");
}
