//! The host's endpoints: the ranked questions as JSON, actions on them, the product on screen,
//! and `GET /v1/streams/ID/host`, a websocket that pushes the list whenever it changes (at most
//! once per `host_push_interval_ms`; what the client sends never triggers a push).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio_tungstenite::tungstenite::Message;

use super::Ctx;
use super::extract::{Caller, Host, JsonBody, Open, Shape, StreamId};
use super::upgrade::{Meter, Socket, Upgrade, close_code, ws_config};
use crate::catalog::{Catalog, CatalogError, CatalogSpec};
use crate::metrics::{ConnEvent, Endpoint};
use crate::stream::{AnswerText, HostAction, Unavailable};

/// Largest frame a host screen may send (it sends nothing but pings).
const HOST_MAX_FRAME: usize = 4 * 1024;
/// Bytes of updates (and automatic pongs) one host websocket may have waiting to be sent: room
/// for the largest list (`max_questions_per_stream` questions with their wordings).
const HOST_WRITE_BUFFER: usize = 16 << 20;

fn unavailable(u: Unavailable) -> Response {
    match u {
        Unavailable::ShuttingDown => error(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down"),
        Unavailable::TooManyStreams => error(StatusCode::SERVICE_UNAVAILABLE, "too many streams"),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

pub(crate) async fn list(
    State(ctx): State<Arc<Ctx>>,
    _: Caller<Host>,
    StreamId(stream): StreamId,
    _: Open,
) -> Response {
    // ── cluster hook: the queue is read at the stream's owner.
    if let Some(node) = &ctx.cluster {
        return match node.list(&stream).await {
            Ok(list) => axum::Json(list).into_response(),
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("cluster: {e}")),
        };
    }
    match ctx.shards.list(Arc::from(stream)).await {
        Some(list) => axum::Json(list).into_response(),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down"),
    }
}

/// Longest answer text, in characters: a short reply, not an essay.
pub(crate) const MAX_ANSWER_CHARS: usize = 500;

/// Body of `POST …/questions/QID/answered` (optional).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    /// What the host answered; `""` clears a text given before.
    answer: Option<String>,
}

/// The answer text of an `answered` request: none without a body, else the body's `answer`.
/// A refusal is its status and message.
fn answer_text(action: HostAction, body: &[u8]) -> Result<AnswerText, (StatusCode, String)> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(AnswerText::Keep);
    }
    let parsed: AnswerBody = serde_json::from_slice(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("expected {{\"answer\": \"…\"}}: {e}")))?;
    let Some(text) = parsed.answer else { return Ok(AnswerText::Keep) };
    if action != HostAction::Answered {
        return Err((StatusCode::BAD_REQUEST, "only answered takes an answer".into()));
    }
    let text = text.trim();
    if text.chars().count() > MAX_ANSWER_CHARS {
        return Err((StatusCode::UNPROCESSABLE_ENTITY, format!("answers are at most {MAX_ANSWER_CHARS} characters")));
    }
    // Line breaks and other control characters would not survive a platform's chat reply.
    let text: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    Ok(if text.is_empty() { AnswerText::Clear } else { AnswerText::Set(text.into_boxed_str()) })
}

pub(crate) async fn act(
    State(ctx): State<Arc<Ctx>>,
    Path((_, qid, action)): Path<(String, String, String)>,
    _: Caller<Host>,
    StreamId(stream): StreamId,
    _: Open,
    body: axum::body::Bytes,
) -> Response {
    let name = action;
    let Some(action) = HostAction::parse(&name) else {
        return error(StatusCode::NOT_FOUND, "unknown action; use answered, pin, unpin, dismiss or reopen");
    };
    let Some(cluster) = qid.strip_prefix('q').and_then(|n| n.parse::<u32>().ok()) else {
        return error(StatusCode::NOT_FOUND, "question ids look like q12");
    };
    let answer = match answer_text(action, &body) {
        Ok(a) => a,
        Err((status, message)) => return error(status, &message),
    };
    // ── cluster hook: the action is journaled and applied at the stream's owner.
    if let Some(node) = &ctx.cluster {
        return match node.act(&stream, cluster, &name, &answer).await {
            Ok(serde_json::Value::Null) => error(StatusCode::NOT_FOUND, "no such question"),
            Ok(q) => axum::Json(serde_json::json!({ "id": qid, "question": q })).into_response(),
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("cluster: {e}")),
        };
    }
    match ctx.shards.act_with(Arc::from(stream), cluster, action, answer).await {
        Some(q) => axum::Json(serde_json::json!({ "id": qid, "question": q })).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such question"),
    }
}

/// A cluster owner's JSON reply, or 503 with why it could not be had.
fn cluster_reply(r: Result<serde_json::Value, String>) -> Response {
    match r {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("cluster: {e}")),
    }
}

/// Largest catalogue body accepted (a few hundred products with their keywords fit).
const MAX_CATALOG_BYTES: usize = 1 << 20;

/// `PUT /v1/streams/ID/catalog`: replaces the stream's products. Every problem of a refused
/// catalogue is listed, and the previous catalogue stays.
pub(crate) async fn put_catalog(
    State(ctx): State<Arc<Ctx>>,
    _: Caller<Host>,
    StreamId(stream): StreamId,
    _: Open,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let declared = headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    // Refused before reading: a client that waits for `100 Continue` never sends the body.
    let too_large = declared.is_some_and(|n| n > MAX_CATALOG_BYTES);
    let body = if too_large { Err(()) } else { axum::body::to_bytes(body, MAX_CATALOG_BYTES).await.map_err(|_| ()) };
    let Ok(body) = body else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("a catalogue is at most {MAX_CATALOG_BYTES} bytes; the previous one stays"),
        );
    };
    let spec: CatalogSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({
                    "error": format!("expected {{\"products\":[{{\"id\",\"name\",\"keywords\":[…]}}]}}: {e}"),
                    "problems": [e.to_string()],
                })),
            )
                .into_response();
        }
    };
    let catalog = match Catalog::compile(spec, &ctx.console.engine.config.normalize) {
        Ok(c) => Arc::new(c),
        Err(CatalogError(problems)) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(serde_json::json!({
                    "error": "the catalogue was refused; the previous one stays",
                    "problems": problems,
                })),
            )
                .into_response();
        }
    };
    let products = catalog.products().len();
    // ── cluster hook: the catalogue is journaled and set at the stream's owner.
    if let Some(node) = &ctx.cluster {
        return cluster_reply(node.call(&stream, crate::cluster::HostRequest::Catalog(catalog.spec().clone())).await);
    }
    match ctx.shards.set_catalog(Arc::from(stream), catalog).await {
        Ok(()) => axum::Json(serde_json::json!({ "products": products })).into_response(),
        Err(u) => unavailable(u),
    }
}

/// `GET /v1/streams/ID/catalog`: the stream's products as last set.
pub(crate) async fn get_catalog(
    State(ctx): State<Arc<Ctx>>,
    _: Caller<Host>,
    StreamId(stream): StreamId,
    _: Open,
) -> Response {
    // ── cluster hook: the catalogue is read at the stream's owner.
    if let Some(node) = &ctx.cluster {
        return cluster_reply(node.call(&stream, crate::cluster::HostRequest::GetCatalog).await);
    }
    match ctx.shards.catalog(Arc::from(stream)).await {
        Ok(c) => axum::Json(c.spec().clone()).into_response(),
        Err(u) => unavailable(u),
    }
}

/// Body of `PUT /v1/streams/ID/product`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProductBody {
    /// The product id on screen now; `null` when none is.
    product: Option<String>,
}

impl Shape for ProductBody {
    const SHAPE: &'static str = "{\"product\": \"id\" | null}";
}

pub(crate) async fn set_product(
    State(ctx): State<Arc<Ctx>>,
    _: Caller<Host>,
    StreamId(stream): StreamId,
    _: Open,
    JsonBody(body): JsonBody<ProductBody>,
) -> Response {
    if body.product.as_ref().is_some_and(|p| p.len() > 128) {
        return error(StatusCode::BAD_REQUEST, "product ids are at most 128 bytes");
    }
    // ── cluster hook: the product change is journaled and applied at the stream's owner.
    if let Some(node) = &ctx.cluster {
        return cluster_reply(node.call(&stream, crate::cluster::HostRequest::Product(body.product.clone())).await);
    }
    match ctx.shards.set_product(Arc::from(stream), body.product.clone()).await {
        Ok(()) => axum::Json(serde_json::json!({ "current_product": body.product })).into_response(),
        Err(u) => unavailable(u),
    }
}

pub(crate) async fn host_ws(
    State(ctx): State<Arc<Ctx>>,
    _: Caller<Host>,
    StreamId(stream): StreamId,
    _: Open,
    mut req: Request,
) -> Response {
    let upgrade = match Upgrade::from_request(&mut req) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Ok(permit) = ctx.conn_slots.clone().try_acquire_owned() else {
        ctx.metrics.conn_event(ConnEvent::Full);
        return error(StatusCode::SERVICE_UNAVAILABLE, "too many connections");
    };
    let stream: Arc<str> = Arc::from(stream);
    // ── cluster hook: changes of the queue are announced by the stream's owner over NATS.
    let version = match &ctx.cluster {
        Some(node) => match node.subscribe(&stream).await {
            Ok(v) => v,
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &format!("cluster: {e}")),
        },
        None => match ctx.shards.subscribe(stream.clone()).await {
            Ok(v) => v,
            Err(u) => return unavailable(u),
        },
    };
    let (budget, tracker) = (ctx.frame_budget.clone(), ctx.tracker.clone());
    upgrade.respond(ws_config(HOST_MAX_FRAME, HOST_WRITE_BUFFER), budget, &tracker, move |socket, meter| {
        host_session(socket, meter, stream, version, ctx, permit)
    })
}

fn frame(kind: &str, mut v: serde_json::Value) -> Message {
    if let Some(o) = v.as_object_mut() {
        o.insert("type".into(), kind.into());
    }
    Message::Text(v.to_string().into())
}

async fn host_session(
    socket: Socket,
    meter: Meter,
    stream: Arc<str>,
    mut version: watch::Receiver<u64>,
    ctx: Arc<Ctx>,
    _permit: OwnedSemaphorePermit,
) {
    let metrics = ctx.metrics.clone();
    metrics.connections(Endpoint::Host).inc();
    let send_timeout = Duration::from_millis(ctx.config.send_timeout_ms.get());
    let interval = Duration::from_millis(ctx.config.host_push_interval_ms.get());
    let mut controls = super::ws::control_bucket(ctx.config.max_control_frames_per_second.get());
    let (mut sink, mut source) = socket.split();
    let mut closing = ctx.closing.clone();
    let mut close = None;
    let mut peer_closed = false;
    version.borrow_and_update();
    let mut kind = "snapshot";
    'push: loop {
        // ── cluster hook: the queue is read at the stream's owner.
        let list = match &ctx.cluster {
            Some(node) => match node.list(&stream).await {
                Ok(v) => v,
                Err(_) => break,
            },
            None => match ctx.shards.list(stream.clone()).await {
                Some(list) => serde_json::to_value(&list).unwrap_or_default(),
                None => break,
            },
        };
        match tokio::time::timeout(send_timeout, sink.send(frame(kind, list))).await {
            Ok(Ok(())) => metrics.host_pushes.inc(),
            Ok(Err(_)) => break,
            Err(_) => {
                metrics.conn_event(ConnEvent::SlowClient);
                break;
            }
        }
        kind = "update";
        // Only a change of the stream's queue leads to the next push; what the client sends is
        // read (pings are answered) and otherwise ignored, at most `max_control_frames_per_second`.
        loop {
            tokio::select! {
                changed = version.changed() => {
                    if changed.is_err() {
                        break 'push;
                    }
                    break;
                }
                msg = source.next() => match msg {
                    Some(Ok(Message::Close(_))) => {
                        peer_closed = true;
                        break 'push;
                    }
                    None => break 'push,
                    Some(Err(e)) => {
                        if let Some(code) = close_code(&e) {
                            metrics.conn_event(ConnEvent::ProtocolError);
                            close = Some(code);
                        }
                        break 'push;
                    }
                    Some(Ok(_)) => {
                        drop(meter.claim());
                        if controls.take(1, std::time::Instant::now()) == 0 {
                            metrics.conn_event(ConnEvent::ControlFlood);
                            close = Some((1008, "too many frames"));
                            break 'push;
                        }
                    }
                },
                () = super::closed(&mut closing) => {
                    metrics.conn_event(ConnEvent::Shutdown);
                    close = Some((1001, "server shutting down"));
                    break 'push;
                }
            }
        }
        // Coalesce bursts: one push per interval at most.
        tokio::time::sleep(interval).await;
        version.borrow_and_update();
    }
    super::ws::finish(&mut sink, &mut source, peer_closed, close, send_timeout).await;
    metrics.connections(Endpoint::Host).dec();
}

/// `GET /`: the host screen.
pub(crate) async fn screen(State(ctx): State<Arc<Ctx>>) -> Response {
    super::web::page(ctx.config.locale, super::web::Page::Host)
}
