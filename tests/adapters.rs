//! Each platform adapter against a fake platform on 127.0.0.1:0 speaking the real wire format,
//! fed from `fixtures/platforms/`: messages arrive normalized; a connection dropped mid-stream is
//! resumed without losing or doubling a message; malformed frames are counted and skipped;
//! moderation actions reach the fake platform's endpoints as the documented requests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use kotae::ingest::adapters::chat::Fragment;
use kotae::ingest::adapters::ndgr::{self, ChunkedEntry, ChunkedMessage, MessageSegment, ReadyForNext, Timestamp};
use kotae::ingest::adapters::niconico::NiconicoAdapter;
use kotae::ingest::adapters::twitch::TwitchAdapter;
use kotae::ingest::adapters::youtube::YoutubeAdapter;
use kotae::ingest::adapters::{
    ActionError, ActionOutcome, Adapter, AdaptersConfig, ChatMessage, ConnState, EndReason, IdOrigin, IdScope,
    Ingested, MessageKind, ModerationAction, ModerationEvent, NiconicoConfig, Platform, RunningAdapter, Support,
    TwitchConfig, YoutubeConfig,
};
use kotae::money::Money;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn fixture(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/platforms").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Fixture lines without comments and blank lines.
fn fixture_lines(rel: &str) -> Vec<String> {
    fixture(rel).lines().filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect()
}

fn fast() -> AdaptersConfig {
    AdaptersConfig { reconnect_min_ms: 10, reconnect_max_ms: 40, ..AdaptersConfig::default() }
}

struct Harness {
    rx: mpsc::Receiver<Ingested>,
    running: RunningAdapter,
    shutdown: watch::Sender<bool>,
}

fn start(adapter: Box<dyn Adapter>) -> Harness {
    let (tx, rx) = mpsc::channel(64);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let running = kotae::ingest::adapters::spawn(adapter, tx, 8, shutdown_rx);
    Harness { rx, running, shutdown }
}

impl Harness {
    /// The next `n` items, failing after 10 s.
    async fn take(&mut self, n: usize) -> Vec<Ingested> {
        let mut out = Vec::new();
        while out.len() < n {
            match tokio::time::timeout(Duration::from_secs(10), self.rx.recv()).await {
                Ok(Some(item)) => out.push(item),
                Ok(None) => panic!("channel closed after {} of {n} items: {out:#?}", out.len()),
                Err(_) => panic!("timed out after {} of {n} items: {out:#?}", out.len()),
            }
        }
        out
    }

    /// Everything until the adapter ends by itself.
    async fn until_end(mut self) -> (Vec<Ingested>, RunningAdapter) {
        let mut out = Vec::new();
        while let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(10), self.rx.recv()).await {
            out.push(item);
        }
        let running = self.running;
        tokio::time::timeout(Duration::from_secs(5), async {
            while !running.task.is_finished() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("adapter ends");
        (out, running)
    }

    async fn stop(self) {
        self.shutdown.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.running.task).await.unwrap().unwrap().unwrap();
    }
}

fn chats(items: &[Ingested]) -> Vec<&ChatMessage> {
    items
        .iter()
        .filter_map(|i| match i {
            Ingested::Chat(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn events(items: &[Ingested]) -> Vec<&ModerationEvent> {
    items
        .iter()
        .filter_map(|i| match i {
            Ingested::Moderation(n) => Some(&n.event),
            _ => None,
        })
        .collect()
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// A fake HTTP platform: records every request, answers through a closure.

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    query: String,
    auth: Option<String>,
    client_id: Option<String>,
    body: String,
    at: Instant,
}

impl Recorded {
    fn param(&self, key: &str) -> Option<String> {
        self.query.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| percent_decode(v))
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(Ok(v)) = s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16))
        {
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

type Responder = Arc<dyn Fn(&Recorded, usize) -> Response + Send + Sync>;

#[derive(Clone)]
struct FakeHttp {
    log: Arc<Mutex<Vec<Recorded>>>,
    respond: Responder,
}

impl FakeHttp {
    async fn start(respond: impl Fn(&Recorded, usize) -> Response + Send + Sync + 'static) -> (SocketAddr, Self) {
        let fake = FakeHttp { log: Arc::default(), respond: Arc::new(respond) };
        let app = axum::Router::new().fallback(handle).with_state(fake.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, fake)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }
}

async fn handle(axum::extract::State(fake): axum::extract::State<FakeHttp>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let header = |k: &str| parts.headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
    let rec = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        auth: header("authorization"),
        client_id: header("client-id"),
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    };
    let nth = {
        let mut log = fake.log.lock().unwrap();
        log.push(rec.clone());
        log.iter().filter(|r| r.path == rec.path && r.query == rec.query).count()
    };
    (fake.respond)(&rec, nth)
}

/// A body that sends `bytes` in `chunk`-byte pieces; with `cut_at`, only that many bytes and
/// then the connection breaks (the declared length is never reached).
fn streamed(bytes: Vec<u8>, chunk: usize, cut_at: Option<usize>) -> Response {
    let total = bytes.len();
    let sent = cut_at.unwrap_or(total).min(total);
    let mut pieces: Vec<Result<Bytes, std::io::Error>> =
        bytes[..sent].chunks(chunk.max(1)).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    if cut_at.is_some() {
        pieces.push(Err(std::io::Error::other("fake platform drops the connection")));
    }
    let stream = futures_util::stream::iter(pieces).then(|p| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        p
    });
    Response::builder()
        .header("content-length", total.to_string())
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

// ---------------------------------------------------------------------------------------------
// Twitch: a fake IRC-over-WebSocket server.

enum End {
    /// Drop the TCP connection without a close frame.
    Drop,
    /// Send RECONNECT and wait for the client to leave.
    Reconnect,
    /// Send PING and stay open, recording what the client sends.
    PingAndStay,
}

struct Conn {
    lines: Vec<String>,
    end: End,
}

type ClientLines = Arc<Mutex<Vec<Vec<String>>>>;

async fn fake_twitch(plan: Vec<Conn>) -> (SocketAddr, ClientLines) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: ClientLines = Arc::default();
    let handshake = fixture_lines("twitch/handshake.irc");
    let log = seen.clone();
    tokio::spawn(async move {
        for (n, conn) in plan.into_iter().enumerate() {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            log.lock().unwrap().push(Vec::new());
            let record = |text: &str| {
                for l in text.split("\r\n").filter(|l| !l.is_empty()) {
                    log.lock().unwrap()[n].push(l.to_string());
                }
            };
            // Read the client's handshake up to JOIN.
            let mut nick = String::new();
            while let Some(Ok(msg)) = ws.next().await {
                if let WsMessage::Text(t) = msg {
                    record(t.as_str());
                    if let Some(nk) = t.as_str().strip_prefix("NICK ") {
                        nick = nk.trim().to_string();
                    }
                    if t.as_str().starts_with("JOIN ") {
                        break;
                    }
                }
            }
            let hello: Vec<String> = handshake.iter().map(|l| l.replace("{nick}", &nick)).collect();
            ws.send(WsMessage::text(hello.join("\r\n") + "\r\n")).await.unwrap();
            // Two IRC lines per frame, as Twitch batches them.
            for pair in conn.lines.chunks(2) {
                ws.send(WsMessage::text(pair.join("\r\n") + "\r\n")).await.unwrap();
            }
            match conn.end {
                End::Drop => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    drop(ws);
                }
                End::Reconnect | End::PingAndStay => {
                    let last = if matches!(conn.end, End::Reconnect) {
                        ":tmi.twitch.tv RECONNECT"
                    } else {
                        "PING :tmi.twitch.tv"
                    };
                    ws.send(WsMessage::text(format!("{last}\r\n"))).await.unwrap();
                    let log = log.clone();
                    // Keep reading in the background so the next connection can be accepted.
                    tokio::spawn(async move {
                        while let Some(Ok(msg)) = ws.next().await {
                            if let WsMessage::Text(t) = msg {
                                for l in t.as_str().split("\r\n").filter(|l| !l.is_empty()) {
                                    log.lock().unwrap()[n].push(l.to_string());
                                }
                            }
                        }
                    });
                }
            }
        }
    });
    (addr, seen)
}

fn twitch_adapter(irc: SocketAddr, helix: Option<SocketAddr>) -> TwitchAdapter {
    let mut c = TwitchConfig::for_channel("pajlada");
    c.irc_url = format!("ws://{irc}");
    if let Some(h) = helix {
        c.helix_url = format!("http://{h}/helix");
        c.client_id = Some("kotae-client".into());
        c.moderator_id = Some("40286300".into());
    }
    let a = TwitchAdapter::new("shop-1", &c, &fast()).unwrap();
    a.with_token(helix.map(|_| "tok123".into()))
}

#[tokio::test]
async fn twitch_messages_arrive_normalized_across_a_drop_and_a_reconnect_without_loss_or_duplicates() {
    let chat = fixture_lines("twitch/chat.irc");
    assert_eq!(chat.len(), 14);
    let malformed = fixture_lines("twitch/malformed.irc");
    let mut first: Vec<String> = chat[..6].to_vec();
    first.extend(malformed.iter().cloned());
    // The second connection repeats lines 5 and 6 (messages in flight when the first broke).
    let plan = vec![
        Conn { lines: first, end: End::Drop },
        Conn { lines: chat[4..10].to_vec(), end: End::Reconnect },
        Conn { lines: chat[10..].to_vec(), end: End::PingAndStay },
    ];
    let (addr, client) = fake_twitch(plan).await;
    let mut h = start(Box::new(twitch_adapter(addr, None)));
    let items = h.take(14).await;
    let metrics = h.running.metrics.clone();
    wait_for("PONG", || client.lock().unwrap().get(2).is_some_and(|c| c.iter().any(|l| l == "PONG :tmi.twitch.tv")))
        .await;

    // Every chat line once, in order; the moderation lines as events.
    let ids: Vec<&str> = chats(&items).iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "e9d998c3-36f1-430f-89ec-6b887c28af36",
            "f9c5774b-faa7-4378-b1af-c4e08b532dc2",
            "0b7c5e1a-3f2d-4c8e-9a61-2d4f8e7b1c01",
            "d7f03a35-f339-41ca-b4d4-7c0721438570",
            "bdfa278e-11c4-484f-9491-0a61b16fab60",
            "7e2f0c4d-5b6a-4e1f-8c3d-9a0b1c2d3e02",
            "5b4f63a9-776f-4fce-bf3c-d9707f52e32d",
            "e21409b1-d25d-4a1a-b5cf-ef27d8b7030e",
            "1c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e03",
            "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c04",
        ]
    );
    assert_eq!(
        events(&items),
        [
            &ModerationEvent::MessageDeleted { message_id: "3c92014f-340a-4dc3-a9c9-e5cf182f4a84".into() },
            &ModerationEvent::UserCleared { user_id: "148973258".into(), timeout_secs: Some(1) },
            &ModerationEvent::UserCleared { user_id: "70948394".into(), timeout_secs: None },
            &ModerationEvent::ChatCleared,
        ]
    );
    let seqs: Vec<u64> = chats(&items).iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>(), "ingest order numbers have no gaps");

    // Normalized fields.
    let c = chats(&items);
    let sakura = c[2];
    assert_eq!(sakura.platform, Platform::Twitch);
    assert_eq!(sakura.stream, "shop-1");
    assert_eq!(sakura.channel, "pajlada");
    assert_eq!(sakura.text, "この色の在庫ありますか？ Kappa");
    assert_eq!(sakura.author.display_name, "さくら");
    assert!(sakura.author.roles.first_time);
    assert_eq!(
        sakura.fragments.last(),
        Some(&Fragment::Emote { id: "25".into(), code: "Kappa".into(), start: 13, end: 18 })
    );
    assert_eq!(sakura.raw.bytes.as_ref(), chat[2].as_bytes(), "the raw line is kept");
    let taro = c[5];
    let codes: Vec<&str> = taro
        .fragments
        .iter()
        .filter_map(|f| if let Fragment::Emote { code, .. } = f { Some(code.as_str()) } else { None })
        .collect();
    assert_eq!(codes, ["PogChamp", "PogChamp"]);
    assert_eq!(taro.author.member_months, Some(3));
    assert_eq!(c[3].kind, MessageKind::Paid);
    assert_eq!(c[7].kind, MessageKind::Gift);
    assert!(c[9].backfill, "historical=1 is backfill");
    assert!(!c[0].backfill);
    let input = sakura.to_in_message();
    assert_eq!(input.text, "この色の在庫ありますか？ Kappa");
    assert_eq!(input.user.as_deref(), Some("tw:500000001"));
    assert_eq!(input.stream.as_deref(), Some("shop-1"));
    assert_eq!(input.ts, Some(1594556100120));

    // The handshake, anonymous; the PING answered.
    let first_conn = client.lock().unwrap()[0].clone();
    assert_eq!(first_conn[0], "CAP REQ :twitch.tv/tags twitch.tv/commands");
    assert!(first_conn[1].starts_with("NICK justinfan"), "{first_conn:?}");
    assert_eq!(first_conn[2], "JOIN #pajlada");
    assert!(!first_conn.iter().any(|l| l.starts_with("PASS")));

    let m = metrics.snapshot();
    assert_eq!(m.duplicates, 2, "{m:?}");
    assert_eq!(m.parse_errors, 3, "{m:?}");
    assert_eq!(m.reconnects, 2, "{m:?}");
    assert_eq!(m.connects, 3, "{m:?}");
    assert_eq!((m.messages, m.moderation_events), (10, 4));
    assert_eq!(m.state, ConnState::Connected);
    h.stop().await;
    assert_eq!(metrics.state(), ConnState::Stopped);
}

#[tokio::test]
async fn twitch_hype_chat_cheers_without_id_subs_and_anonymous_gifts_arrive_once_and_whole() {
    let paid = fixture_lines("twitch/paid.irc");
    assert_eq!(paid.len(), 10);
    // The cheer without an id is in flight when the first connection drops, and comes again.
    let plan = vec![
        Conn { lines: paid[..3].to_vec(), end: End::Drop },
        Conn { lines: paid[2..].to_vec(), end: End::PingAndStay },
    ];
    let (addr, _client) = fake_twitch(plan).await;
    let mut h = start(Box::new(twitch_adapter(addr, None)));
    let items = h.take(10).await;
    let m = h.running.metrics.snapshot();
    assert_eq!((m.duplicates, m.parse_errors), (1, 0), "the repeated cheer is dropped by its synthetic id: {m:?}");
    let c = chats(&items);
    let kinds: Vec<MessageKind> = c.iter().map(|m| m.kind).collect();
    use MessageKind::{Gift, Membership, Paid};
    assert_eq!(kinds, [Paid, Paid, Paid, Membership, Membership, Gift, Gift, Gift, Membership, Membership]);
    let shown: Vec<String> = c[..3].iter().map(|m| m.paid.as_ref().unwrap().money.display()).collect();
    assert_eq!(shown, ["US$4.99", "¥1,000", "200 bits"]);
    let hype = c[0].to_in_message();
    assert_eq!(hype.paid, Some(499), "US$4.99 in cents");
    assert_eq!((hype.paid_currency.map(|c| c.to_string()), hype.paid_exponent), (Some("USD".into()), Some(2)));
    assert_eq!(c[1].to_in_message().paid, Some(1000));
    assert_eq!(c[2].to_in_message().paid, Some(200));
    assert_eq!(c[2].id_origin, IdOrigin::Synthesized);
    assert_eq!(c[2].text, "cheer200 黒のLはまだありますか");
    assert_eq!(c[3].author.member_months, Some(14), "msg-param-cumulative-months");
    for anon in [c[5], c[6]] {
        assert_eq!(anon.author.id, None, "the anonymous gifter is nobody");
        assert!(anon.author.roles.anonymous);
        assert_eq!(anon.to_in_message().user, None);
    }
    let gifts: Vec<(Option<u32>, Option<&str>)> = c[5..8]
        .iter()
        .map(|m| m.support.as_ref().map_or((None, None), |s| (s.gift_count, s.level.as_deref())))
        .collect();
    assert_eq!(gifts, [(Some(1), Some("Tier 1")), (Some(5), Some("Tier 1")), (Some(5), Some("Tier 2"))]);
    assert!(c[8..].iter().all(|m| m.support.as_ref().is_some_and(|s| s.upgrade)), "gift upgrades are flagged");
    h.stop().await;
}

#[tokio::test]
async fn twitch_actions_reach_the_helix_moderation_endpoints() {
    let (helix, fake) = FakeHttp::start(|r, _| {
        if r.body.contains("\"403\"") {
            (StatusCode::BAD_REQUEST, r#"{"error":"Bad Request","status":400,"message":"user is a moderator"}"#)
                .into_response()
        } else if r.method == "DELETE" {
            StatusCode::NO_CONTENT.into_response()
        } else {
            (StatusCode::OK, r#"{"data":[]}"#).into_response()
        }
    })
    .await;
    let chat = fixture_lines("twitch/chat.irc");
    let (irc, _) = fake_twitch(vec![Conn { lines: chat[..1].to_vec(), end: End::PingAndStay }]).await;
    let mut h = start(Box::new(twitch_adapter(irc, Some(helix))));
    h.take(1).await; // ROOMSTATE (room-id 11148817) came before this message.
    let act = h.running.actions.clone();

    let ok = |r: Result<ActionOutcome, ActionError>| r.unwrap();
    assert_eq!(ok(act.perform(ModerationAction::Delete { message_id: "e9d998c3".into() }).await), ActionOutcome::Sent);
    let timeout = ModerationAction::Timeout { user_id: "148973258".into(), secs: 600, reason: Some("spam".into()) };
    assert_eq!(ok(act.perform(timeout).await), ActionOutcome::Sent);
    assert_eq!(
        ok(act.perform(ModerationAction::Ban { user_id: "70948394".into(), reason: None }).await),
        ActionOutcome::Sent
    );
    let hold = ModerationAction::ResolveHold { message_id: "held-1".into(), approve: true };
    assert_eq!(ok(act.perform(hold).await), ActionOutcome::Sent);
    assert_eq!(ok(act.perform(ModerationAction::LocalHide { message_id: "x".into() }).await), ActionOutcome::Local);
    let refused = act.perform(ModerationAction::Ban { user_id: "403".into(), reason: None }).await;
    assert!(matches!(refused, Err(ActionError::Rejected { status: 400, .. })), "{refused:?}");

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 5, "local hide sends nothing: {reqs:#?}");
    for r in &reqs {
        assert_eq!(r.auth.as_deref(), Some("Bearer tok123"));
        assert_eq!(r.client_id.as_deref(), Some("kotae-client"));
    }
    assert_eq!((reqs[0].method.as_str(), reqs[0].path.as_str()), ("DELETE", "/helix/moderation/chat"));
    assert_eq!(reqs[0].param("broadcaster_id").as_deref(), Some("11148817"));
    assert_eq!(reqs[0].param("moderator_id").as_deref(), Some("40286300"));
    assert_eq!(reqs[0].param("message_id").as_deref(), Some("e9d998c3"));
    assert_eq!((reqs[1].method.as_str(), reqs[1].path.as_str()), ("POST", "/helix/moderation/bans"));
    assert_eq!(reqs[1].param("broadcaster_id").as_deref(), Some("11148817"));
    assert_eq!(
        reqs[1].json(),
        serde_json::json!({"data": {"user_id": "148973258", "duration": 600, "reason": "spam"}})
    );
    assert_eq!(
        reqs[2].json(),
        serde_json::json!({"data": {"user_id": "70948394", "reason": ""}}),
        "a ban has no duration"
    );
    assert_eq!(reqs[3].path, "/helix/moderation/automod/message");
    assert_eq!(reqs[3].json(), serde_json::json!({"user_id": "40286300", "msg_id": "held-1", "action": "ALLOW"}));
    let m = h.running.metrics.snapshot();
    assert_eq!((m.actions_ok, m.actions_failed), (5, 1));
    h.stop().await;
}

#[tokio::test]
async fn twitch_actions_without_a_token_say_what_is_missing() {
    let (irc, _) = fake_twitch(vec![Conn { lines: Vec::new(), end: End::PingAndStay }]).await;
    let h = start(Box::new(twitch_adapter(irc, None)));
    let r = h.running.actions.perform(ModerationAction::Delete { message_id: "m".into() }).await;
    assert_eq!(r, Err(ActionError::NotConfigured("twitch token_env")));
    h.stop().await;
}

// ---------------------------------------------------------------------------------------------
// YouTube: a fake Data API.

/// The fixture page for a token, with `pollingIntervalMillis` shortened so the test is quick.
fn youtube_page(token: Option<&str>, interval: u64) -> Vec<u8> {
    let file = match token {
        None => "youtube/page1.json",
        Some("GOB9kK2xQ_page2") => "youtube/page2.json",
        Some("GOB9kK2xQ_page3") => "youtube/page3.json",
        Some(other) => panic!("unknown page token {other}"),
    };
    let mut page: serde_json::Value = serde_json::from_str(&fixture(file)).unwrap();
    page["pollingIntervalMillis"] = interval.into();
    serde_json::to_vec(&page).unwrap()
}

fn youtube_adapter(api: SocketAddr, oauth: Option<&str>) -> YoutubeAdapter {
    let mut c = YoutubeConfig::for_chat("Cg0KC0Q5ZnFGZHY1RU5vKicKGFVDUHNmTTR2dXVfRm1qUVhmV0NIZGg0ZxILRDlmcUZkdjVFTm8");
    c.api_url = format!("http://{api}/youtube/v3");
    c.min_poll_ms = 0;
    c.max_results = 200;
    YoutubeAdapter::new("shop-1", &c, &fast())
        .unwrap()
        .with_credentials(Some("AIza-test".into()), oauth.map(str::to_string))
}

#[tokio::test]
async fn youtube_polling_follows_page_tokens_and_intervals_and_resumes_a_broken_page() {
    let (api, fake) = FakeHttp::start(|r, nth| {
        let token = r.param("pageToken");
        let body = youtube_page(token.as_deref(), 300);
        // The first answer for page 2 breaks halfway through the body.
        let cut = (token.as_deref() == Some("GOB9kK2xQ_page2") && nth == 1).then_some(body.len() / 2);
        streamed(body, 512, cut)
    })
    .await;
    let h = start(Box::new(youtube_adapter(api, None)));
    let metrics = h.running.metrics.clone();
    let (items, _running) = h.until_end().await;

    let reqs = fake.requests();
    let tokens: Vec<Option<String>> = reqs.iter().map(|r| r.param("pageToken")).collect();
    assert_eq!(
        tokens,
        [None, Some("GOB9kK2xQ_page2".into()), Some("GOB9kK2xQ_page2".into()), Some("GOB9kK2xQ_page3".into())]
    );
    assert!(reqs[1].at - reqs[0].at >= Duration::from_millis(300), "pollingIntervalMillis is honoured");
    assert!(reqs[3].at - reqs[2].at >= Duration::from_millis(300));
    for r in &reqs {
        assert_eq!(r.path, "/youtube/v3/liveChat/messages");
        assert_eq!(r.param("part").as_deref(), Some("id,snippet,authorDetails"));
        assert_eq!(r.param("key").as_deref(), Some("AIza-test"));
        assert_eq!(r.param("maxResults").as_deref(), Some("200"));
    }

    let c = chats(&items);
    let ids: Vec<&str> = c.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "LCC.CjgKDQoLRDlmcUZkdjVFTm8qJwoYVUNQc2ZNNHZ1dV9GbWpRWGZXQ0hkaDRnEgtEOWZxRmR2NUVObxIcChpDSzdtNC02aWtmOENGYkFJMWdBZFBTVURSZw",
            "LCC.jp0001",
            "LCC.jp0002",
            "LCC.EhwKGkNLanpxY2J1dnBNREZRbkN3Z1FkVGhZVVJB",
            "LCC.jp0003",
            "LCC.jp0004",
            "LCC.jp0006",
            "LCC.jp0008",
            "LCC.jp0009",
        ]
    );
    assert!(c[..3].iter().all(|m| m.backfill), "the first page is history");
    assert!(c[3..].iter().all(|m| !m.backfill));
    let yen = c[4];
    assert_eq!(yen.kind, MessageKind::Paid);
    assert_eq!(yen.text, "敏感肌でも使えますか？");
    let paid = yen.paid.as_ref().unwrap();
    assert_eq!((paid.money, paid.display.as_deref()), (Money::yen(1000), Some("¥1,000")));
    assert_eq!(yen.to_in_message().paid, Some(1000));
    assert_eq!(yen.to_in_message().user.as_deref(), Some("yt:UChanakohanakohanako00D"));
    assert_eq!(c[2].kind, MessageKind::Membership);
    assert!(c[2].author.roles.member);
    assert_eq!(c[7].author.member_months, Some(6));
    assert!(c[3].author.roles.broadcaster);
    assert_eq!(
        events(&items),
        [
            &ModerationEvent::MessageDeleted { message_id: "LCC.jp0004".into() },
            &ModerationEvent::UserCleared { user_id: "UCspamspamspamspamspam0C".into(), timeout_secs: Some(300) },
        ]
    );
    let m = metrics.snapshot();
    assert_eq!(m.parse_errors, 1, "the super chat without details: {m:?}");
    assert_eq!(m.duplicates, 2, "page 3 repeats the deletion event and the last message of page 2: {m:?}");
    assert_eq!(m.reconnects, 1, "{m:?}");
    assert_eq!(m.quota_units, 4 * 5, "every list call costs 5 units");
    assert_eq!(m.state, ConnState::Stopped, "offlineAt ends the adapter");
    assert_eq!(m.ended, Some(EndReason::ChatEnded));
}

/// A page answer, or a fixture error body with its status.
fn youtube_error(file: &str, status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    (status, [("content-type", "application/json; charset=UTF-8")], fixture(file)).into_response()
}

#[tokio::test]
async fn youtube_an_ended_missing_or_disabled_chat_ends_the_adapter_instead_of_polling_forever() {
    for (file, status, reason) in [
        ("youtube/error-chat-ended.json", 403, EndReason::ChatEnded),
        ("youtube/error-chat-not-found.json", 404, EndReason::ChatNotFound),
        ("youtube/error-chat-disabled.json", 403, EndReason::ChatDisabled),
    ] {
        // The first page, then a rate-limit answer (retried), then the chat is over.
        let (api, fake) = FakeHttp::start(move |r, nth| match r.param("pageToken") {
            None => {
                let mut page: serde_json::Value = serde_json::from_str(&fixture("youtube/page1.json")).unwrap();
                page["pollingIntervalMillis"] = 20.into();
                (StatusCode::OK, page.to_string()).into_response()
            }
            Some(_) if nth == 1 => youtube_error("youtube/error-rate-limit.json", 403),
            Some(_) => youtube_error(file, status),
        })
        .await;
        let h = start(Box::new(youtube_adapter(api, None)));
        let metrics = h.running.metrics.clone();
        let (items, running) = h.until_end().await;
        assert_eq!(chats(&items).len(), 3, "{file}: the first page is delivered");
        assert_eq!(fake.requests().len(), 3, "{file}: one retry after the rate limit, none after the end");
        let m = metrics.snapshot();
        assert_eq!(m.quota_units, 3 * 5, "{file}");
        assert_eq!(m.reconnects, 1, "{file}: the rate limit was retried");
        assert_eq!(m.state, ConnState::Stopped, "{file}");
        assert_eq!(m.ended, Some(reason), "{file}");
        running.task.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn youtube_paid_items_keep_their_currency_minor_units_and_membership_details() {
    let (api, _fake) = FakeHttp::start(|r, _| {
        assert_eq!(r.param("pageToken"), None, "the page carries offlineAt: no second poll");
        let mut page: serde_json::Value = serde_json::from_str(&fixture("youtube/page-paid.json")).unwrap();
        page["pollingIntervalMillis"] = 20.into();
        (StatusCode::OK, page.to_string()).into_response()
    })
    .await;
    let h = start(Box::new(youtube_adapter(api, None)));
    let (items, _running) = h.until_end().await;
    let c = chats(&items);
    let kinds: Vec<MessageKind> = c.iter().map(|m| m.kind).collect();
    use MessageKind::{Gift, Membership, Paid};
    assert_eq!(kinds, [Paid, Paid, Paid, Paid, Paid, Gift, Membership, Membership, Membership]);
    // US$4.99, NT$75.00, HUF 1,500.50, ₩2,000, KWD 1.500 in each currency's ISO 4217 minor units.
    let units: Vec<Option<u64>> = c[..5].iter().map(|m| m.to_in_message().paid).collect();
    assert_eq!(units, [Some(499), Some(7500), Some(150_050), Some(2000), Some(1500)]);
    let shown: Vec<String> = c[..5].iter().map(|m| m.paid.as_ref().unwrap().money.display()).collect();
    assert_eq!(shown, ["US$4.99", "NT$75.00", "HUF 1,500.50", "₩2,000", "KWD 1.500"]);
    let exponents: Vec<Option<u8>> = c[..5].iter().map(|m| m.to_in_message().paid_exponent).collect();
    assert_eq!(exponents, [Some(2), Some(2), Some(2), Some(0), Some(3)]);
    assert_eq!(c[3].text, "ハートのスタンプ", "a Super Sticker's text is its alt text");
    let support: Vec<Support> = c[5..].iter().map(|m| m.support.clone().expect("member details")).collect();
    assert_eq!((support[0].gift_count, support[0].level.as_deref()), (Some(5), Some("メンバー")));
    assert_eq!(support[1].gifter_id.as_deref(), Some("UCgiftgiftgiftgiftgift06"));
    assert!(support[2].upgrade && !support[1].upgrade);
    assert_eq!(support[2].level.as_deref(), Some("ゴールド"));
    assert_eq!(support[3].level.as_deref(), Some("ゴールド"));
    assert_eq!(c[8].author.member_months, Some(12));
}

#[tokio::test]
async fn youtube_actions_reach_the_delete_and_ban_endpoints_and_count_quota() {
    let (api, fake) = FakeHttp::start(|r, _| match (r.method.as_str(), r.path.as_str()) {
        ("GET", _) => {
            // An empty live page asking for a long wait: the adapter idles while actions run.
            let page = serde_json::json!({"kind":"youtube#liveChatMessageListResponse","etag":"e","nextPageToken":"t2","pollingIntervalMillis":60000,"items":[]});
            (StatusCode::OK, page.to_string()).into_response()
        }
        ("DELETE", _) => StatusCode::NO_CONTENT.into_response(),
        _ => (StatusCode::OK, r#"{"kind":"youtube#liveChatBan","id":"ban-1"}"#).into_response(),
    })
    .await;
    let h = start(Box::new(youtube_adapter(api, Some("ya29.token"))));
    wait_for("first poll", || !fake.requests().is_empty()).await;
    let act = h.running.actions.clone();
    let sent = Ok(ActionOutcome::Sent);
    assert_eq!(act.perform(ModerationAction::Delete { message_id: "LCC.jp0004".into() }).await, sent);
    let timeout = ModerationAction::Timeout { user_id: "UCspam".into(), secs: 300, reason: None };
    assert_eq!(act.perform(timeout).await, sent);
    assert_eq!(act.perform(ModerationAction::Ban { user_id: "UCspam".into(), reason: None }).await, sent);
    assert_eq!(
        act.perform(ModerationAction::ResolveHold { message_id: "m".into(), approve: false }).await,
        Err(ActionError::Unsupported { platform: Platform::YouTube, action: "resolve_hold" })
    );
    assert_eq!(act.perform(ModerationAction::LocalHide { message_id: "m".into() }).await, Ok(ActionOutcome::Local));

    let reqs: Vec<Recorded> = fake.requests().into_iter().filter(|r| r.method != "GET").collect();
    assert_eq!(reqs.len(), 3);
    assert_eq!((reqs[0].method.as_str(), reqs[0].path.as_str()), ("DELETE", "/youtube/v3/liveChat/messages"));
    assert_eq!(reqs[0].param("id").as_deref(), Some("LCC.jp0004"));
    let chat_id = "Cg0KC0Q5ZnFGZHY1RU5vKicKGFVDUHNmTTR2dXVfRm1qUVhmV0NIZGg0ZxILRDlmcUZkdjVFTm8";
    assert_eq!((reqs[1].method.as_str(), reqs[1].path.as_str()), ("POST", "/youtube/v3/liveChat/bans"));
    assert_eq!(reqs[1].param("part").as_deref(), Some("snippet"));
    assert_eq!(
        reqs[1].json(),
        serde_json::json!({"snippet": {"liveChatId": chat_id, "type": "temporary", "banDurationSeconds": 300, "bannedUserDetails": {"channelId": "UCspam"}}})
    );
    assert_eq!(
        reqs[2].json(),
        serde_json::json!({"snippet": {"liveChatId": chat_id, "type": "permanent", "bannedUserDetails": {"channelId": "UCspam"}}})
    );
    for r in &reqs {
        assert_eq!(r.auth.as_deref(), Some("Bearer ya29.token"));
    }
    assert_eq!(h.running.metrics.snapshot().quota_units, 5 + 3 * 50);
    h.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Niconico: a fake NDGR view and segment server.

/// Length-delimited frames from a hex fixture (one frame per line).
fn hex_frames(rel: &str) -> Vec<Vec<u8>> {
    fixture_lines(rel).iter().map(|l| ndgr::from_hex(l).unwrap_or_else(|| panic!("bad hex in {rel}: {l}"))).collect()
}

fn entry_frame(entry: ndgr::chunked_entry::Entry) -> Vec<u8> {
    ndgr::encode_frame(&ChunkedEntry { entry: Some(entry) })
}

fn segment(addr: SocketAddr, n: u32, from: i64) -> MessageSegment {
    MessageSegment {
        from: Some(Timestamp { seconds: from, nanos: 0 }),
        until: Some(Timestamp { seconds: from + 16, nanos: 0 }),
        uri: format!("http://{addr}/data/segment/v4/seg{n}"),
    }
}

#[tokio::test]
async fn niconico_comments_stream_normalized_and_a_broken_segment_is_fetched_again_without_duplicates() {
    use ndgr::chunked_entry::Entry;
    let addr_cell: Arc<std::sync::OnceLock<SocketAddr>> = Arc::default();
    let cell = addr_cell.clone();
    let (addr, fake) = FakeHttp::start(move |r, nth| {
        let addr = *cell.get().unwrap();
        let frames: Vec<Vec<u8>> = match (r.path.as_str(), r.param("at").as_deref()) {
            ("/api/view/v4/test", Some("now")) => vec![
                entry_frame(Entry::Previous(segment(addr, 0, 1_722_839_984))),
                entry_frame(Entry::Segment(segment(addr, 1, 1_722_840_000))),
                entry_frame(Entry::Next(ReadyForNext { at: 1_722_840_016 })),
            ],
            ("/api/view/v4/test", Some("1722840016")) => {
                vec![entry_frame(Entry::Segment(segment(addr, 2, 1_722_840_016)))]
            }
            ("/data/segment/v4/seg0", _) => hex_frames("niconico/segment-previous.hex"),
            ("/data/segment/v4/seg1", _) => hex_frames("niconico/segment-1.hex"),
            ("/data/segment/v4/seg2", _) => hex_frames("niconico/segment-2.hex"),
            _ => return StatusCode::NOT_FOUND.into_response(),
        };
        let bytes: Vec<u8> = frames.concat();
        // The first stream of segment 1 breaks in the middle of its fourth frame.
        let cut = (r.path.ends_with("seg1") && nth == 1).then(|| frames[..3].concat().len() + frames[3].len() / 2);
        streamed(bytes, 7, cut)
    })
    .await;
    addr_cell.set(addr).unwrap();
    let config = NiconicoConfig { live_id: "lv345479988".into(), view_uri: format!("http://{addr}/api/view/v4/test") };
    let h = start(Box::new(NiconicoAdapter::new("shop-1", &config, &fast()).unwrap()));
    let metrics = h.running.metrics.clone();
    let (items, _running) = h.until_end().await;

    let c = chats(&items);
    let texts: Vec<&str> = c.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "わこつ",
            "今日は何の商品ですか",
            "こんにちは",
            "この色の在庫ありますか？",
            "黒のMサイズ1つ買います",
            "送料はいくらですか",
            "応援してます！",
            "敏感肌でも使えますか",
            "8888888",
            "ポチりました",
        ]
    );
    assert!(c[..2].iter().all(|m| m.backfill), "the previous segment is history");
    assert!(c[2..].iter().all(|m| !m.backfill));
    let doc = c[2];
    assert_eq!(doc.id, "example-msg-id-0001");
    assert_eq!(doc.channel, "lv345479988");
    assert_eq!(doc.author.id.as_deref(), Some("a:AbCdEfGhIjKlMnOp"));
    assert_eq!(doc.author.id_scope, IdScope::PerProgram);
    assert!(doc.author.roles.anonymous);
    assert_eq!(doc.sent_at_ms, Some(1_722_840_000_123));
    let logged_in = c[3];
    assert_eq!(logged_in.author.id_scope, IdScope::Global);
    assert_eq!(logged_in.author.display_name, "さくら");
    assert_eq!(logged_in.to_in_message().user.as_deref(), Some("nico:12345678"));
    let gift = c[6];
    assert_eq!(gift.kind, MessageKind::Gift);
    assert_eq!(gift.paid.as_ref().map(|p| p.money.display()).as_deref(), Some("500 nicoad pt"));
    assert_eq!(gift.to_in_message().paid, Some(500));
    let ids: std::collections::HashSet<&str> = c.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids.len(), c.len(), "no message twice");

    let segs: Vec<String> = fake.requests().iter().map(|r| r.path.clone()).filter(|p| p.contains("segment")).collect();
    assert_eq!(
        segs,
        ["/data/segment/v4/seg0", "/data/segment/v4/seg1", "/data/segment/v4/seg1", "/data/segment/v4/seg2"]
    );
    let m = metrics.snapshot();
    assert_eq!(m.duplicates, 3, "the first three frames of segment 1 came twice: {m:?}");
    assert_eq!(m.parse_errors, 1, "the garbage frame of segment 2: {m:?}");
    assert_eq!(m.reconnects, 1, "{m:?}");
    assert_eq!(m.messages, 10);
    assert_eq!(m.state, ConnState::Stopped, "no `next` entry: the programme ended");
    assert_eq!(m.ended, Some(EndReason::ChatEnded));
}

#[tokio::test]
async fn niconico_is_read_only_except_for_local_hides() {
    // The view long-polls forever; actions are served meanwhile.
    let (addr, _fake) = FakeHttp::start(|_, _| {
        let stream = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
        Response::new(Body::from_stream(stream))
    })
    .await;
    let config = NiconicoConfig { live_id: "lv1".into(), view_uri: format!("http://{addr}/api/view/v4/x") };
    let h = start(Box::new(NiconicoAdapter::new("s", &config, &fast()).unwrap()));
    let act = h.running.actions.clone();
    assert_eq!(act.perform(ModerationAction::LocalHide { message_id: "m".into() }).await, Ok(ActionOutcome::Local));
    assert_eq!(
        act.perform(ModerationAction::Delete { message_id: "m".into() }).await,
        Err(ActionError::Unsupported { platform: Platform::Niconico, action: "delete" })
    );
    h.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Fixture generation for the binary Niconico frames (run once; the output is committed).

fn chat_frame(id: &str, at_ms: i64, live: i64, chat: ndgr::Chat, overflow: bool) -> ChunkedMessage {
    use ndgr::nicolive_message::Data;
    ChunkedMessage {
        meta: Some(ndgr::Meta {
            id: id.into(),
            at: Some(Timestamp { seconds: at_ms / 1000, nanos: ((at_ms % 1000) * 1_000_000) as i32 }),
            origin: Some(ndgr::Origin { chat: Some(ndgr::OriginChat { live_id: live }) }),
        }),
        payload: Some(ndgr::chunked_message::Payload::Message(ndgr::NicoliveMessage {
            data: Some(if overflow { Data::OverflowedChat(chat) } else { Data::Chat(chat) }),
        })),
    }
}

fn anon(content: &str, no: i32, hash: &str) -> ndgr::Chat {
    ndgr::Chat {
        content: content.into(),
        vpos: no * 150,
        hashed_user_id: Some(hash.into()),
        no,
        ..ndgr::Chat::default()
    }
}

#[test]
/// Regenerates the Niconico fixture frames. Run by hand after changing them:
/// `cargo test --release --test adapters write_niconico_fixtures -- --ignored`
#[ignore = "rewrites fixtures/platforms/niconico/*.hex; run by hand after changing the frames: cargo test --release --test adapters write_niconico_fixtures -- --ignored"]
fn write_niconico_fixtures() {
    use prost::Message;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/platforms/niconico");
    let live = 345_479_988;
    let write = |name: &str, header: &str, frames: Vec<(String, Vec<u8>)>| {
        let mut out = String::from(header);
        for (comment, bytes) in frames {
            out.push_str(&format!("# {comment}\n{}\n", kotae::ingest::adapters::chat::hex(&bytes)));
        }
        std::fs::write(dir.join(name), out).unwrap();
    };
    let frame = |m: &ChunkedMessage| ndgr::encode_frame(m);
    let doc = ndgr::from_hex(
        include_str!("../fixtures/platforms/niconico/doc-frame.hex")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<String>()
            .as_str(),
    )
    .unwrap();
    write(
        "segment-previous.hex",
        "# NDGR `previous` segment (comments from before connecting): length-delimited ChunkedMessage frames,\n# one per line as hex. Synthetic, encoded with prost from the n-air-app proto field numbers (platforms.md §3.2).\n",
        vec![
            (
                "chat, anonymous 184, no 40".into(),
                frame(&chat_frame(
                    "nd-prev-0040",
                    1_722_839_990_500,
                    live,
                    anon("わこつ", 40, "a:Qw3rTy0000000001"),
                    false,
                )),
            ),
            (
                "chat, anonymous 184, no 41".into(),
                frame(&chat_frame(
                    "nd-prev-0041",
                    1_722_839_995_000,
                    live,
                    anon("今日は何の商品ですか", 41, "a:Qw3rTy0000000002"),
                    false,
                )),
            ),
        ],
    );
    let sakura = ndgr::Chat {
        content: "この色の在庫ありますか？".into(),
        name: Some("さくら".into()),
        vpos: 12_400,
        account_status: 0,
        raw_user_id: Some(12_345_678),
        no: 43,
        ..ndgr::Chat::default()
    };
    let gift = ChunkedMessage {
        meta: Some(ndgr::Meta {
            id: "nd-gift-0001".into(),
            at: Some(Timestamp { seconds: 1_722_840_008, nanos: 0 }),
            origin: None,
        }),
        payload: Some(ndgr::chunked_message::Payload::Message(ndgr::NicoliveMessage {
            data: Some(ndgr::nicolive_message::Data::Gift(ndgr::Gift {
                item_id: "nicoad-500".into(),
                advertiser_user_id: Some(87_654_321),
                advertiser_name: "はなこ".into(),
                point: 500,
                message: "応援してます！".into(),
                item_name: "ニコニ広告".into(),
            })),
        })),
    };
    write(
        "segment-1.hex",
        "# NDGR live segment 1: length-delimited ChunkedMessage frames, one per line as hex.\n# Frame 1 is the synthetic example of platforms.md §3.2 verbatim; the others are synthetic, encoded with\n# prost from the n-air-app proto field numbers (§3.2 table).\n",
        vec![
            ("platforms.md §3.2 example: anonymous premium chat こんにちは, no 42".into(), doc),
            (
                "chat from a logged-in viewer (raw_user_id, name), no 43".into(),
                frame(&chat_frame("nd-live-0043", 1_722_840_004_200, live, sakura, false)),
            ),
            (
                "chat, anonymous 184, no 44".into(),
                frame(&chat_frame(
                    "nd-live-0044",
                    1_722_840_005_000,
                    live,
                    anon("黒のMサイズ1つ買います", 44, "a:Qw3rTy0000000003"),
                    false,
                )),
            ),
            (
                "overflowed_chat (moderated, not displayed), no 45".into(),
                frame(&chat_frame(
                    "nd-live-0045",
                    1_722_840_006_000,
                    live,
                    anon("送料はいくらですか", 45, "a:Qw3rTy0000000004"),
                    true,
                )),
            ),
            ("gift (nicoad 500 points) without origin".into(), frame(&gift)),
            (
                "signal Flushed (segment boundary; not the end)".into(),
                frame(&ChunkedMessage { meta: None, payload: Some(ndgr::chunked_message::Payload::Signal(0)) }),
            ),
        ],
    );
    let mut garbage = vec![0x0a, 0x20, 0x0a];
    garbage.extend_from_slice(b"truncated");
    let mut bad = Vec::new();
    prost::encoding::encode_varint(garbage.len() as u64, &mut bad);
    bad.extend_from_slice(&garbage);
    let state = ChunkedMessage {
        meta: Some(ndgr::Meta { id: "nd-state-0001".into(), at: None, origin: None }),
        payload: Some(ndgr::chunked_message::Payload::State(vec![0x0a, 0x04, 0x08, 0xd2, 0x09, 0x10])),
    };
    let _ = state.encoded_len();
    write(
        "segment-2.hex",
        "# NDGR live segment 2: length-delimited ChunkedMessage frames, one per line as hex. Synthetic (prost,\n# n-air-app field numbers). Frame 2 is deliberately malformed: a valid length prefix around a\n# truncated protobuf message.\n",
        vec![
            ("state (statistics), skipped".into(), frame(&state)),
            ("MALFORMED: meta length 32 but only 10 bytes follow".into(), bad),
            (
                "chat, anonymous 184, no 46".into(),
                frame(&chat_frame(
                    "nd-live-0046",
                    1_722_840_017_000,
                    live,
                    anon("敏感肌でも使えますか", 46, "a:Qw3rTy0000000005"),
                    false,
                )),
            ),
            (
                "chat, anonymous 184, no 47".into(),
                frame(&chat_frame(
                    "nd-live-0047",
                    1_722_840_018_000,
                    live,
                    anon("8888888", 47, "a:Qw3rTy0000000006"),
                    false,
                )),
            ),
            (
                "chat, premium, anonymous 184, no 48".into(),
                frame(&chat_frame(
                    "nd-live-0048",
                    1_722_840_019_000,
                    live,
                    ndgr::Chat { account_status: 1, ..anon("ポチりました", 48, "a:Qw3rTy0000000007") },
                    false,
                )),
            ),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// `kotae adapt`: configured from TOML, printing InMessage JSON Lines.

#[tokio::test]
async fn adapt_prints_classify_input_lines_from_a_configured_stream() {
    use kotae::commands::adapt::{self, Output};
    use kotae::message::InMessage;
    let (api, _fake) =
        FakeHttp::start(|r, _| streamed(youtube_page(r.param("pageToken").as_deref(), 20), 4096, None)).await;
    let toml = format!(
        "[adapters]\nreconnect_min_ms = 10\n[[adapters.streams]]\nstream = \"shop-1\"\n[adapters.streams.youtube]\nlive_chat_id = \"chat-1\"\napi_url = \"http://{api}/youtube/v3\"\nmin_poll_ms = 0\n"
    );
    let config = kotae::config::Config::parse(&toml, Path::new("test.toml")).unwrap();
    let mut out = Vec::new();
    let reports = adapt::run(&config.adapters, &mut out, Output::InMessage, std::future::pending()).await.unwrap();
    let lines: Vec<InMessage> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 9, "chat messages only");
    let yen = lines.iter().find(|m| m.text == "敏感肌でも使えますか？").unwrap();
    assert_eq!(yen.id, Some(serde_json::json!("LCC.jp0003")));
    assert_eq!(yen.stream.as_deref(), Some("shop-1"));
    assert_eq!(yen.user.as_deref(), Some("yt:UChanakohanakohanako00D"));
    assert_eq!(yen.paid, Some(1000));
    assert_eq!(yen.paid_currency.map(|c| c.to_string()).as_deref(), Some("JPY"));
    assert_eq!(yen.paid_exponent, Some(0));
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].metrics.messages, 9);
}

#[tokio::test]
async fn adapt_without_configured_streams_is_a_configuration_error() {
    let err = kotae::commands::adapt::run(
        &AdaptersConfig::default(),
        Vec::new(),
        kotae::commands::adapt::Output::Full,
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(err.is_config(), "{err}");
}

#[test]
fn the_adapt_command_exits_64_when_no_stream_is_configured() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kotae"))
        .arg("adapt")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no adapters configured"));
}
