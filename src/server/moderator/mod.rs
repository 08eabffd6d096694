//! The moderator's endpoints (moderator tokens; host tokens do not open them), except the summary,
//! which the host screen shows (host tokens):
//!
//! - `POST /v1/moderator/explain` `{"text"}`: how one phrase is seen — normalized views, tokens
//!   with part of speech, labels, scores, action, reasons with their spans in the original.
//! - `GET /v1/moderator/dictionaries`: every list, section and term as written in the files.
//! - `POST /v1/moderator/dictionaries/dry-run` and `…/apply` with an
//!   [`Edit`](crate::dictionary::edit::Edit): the edit is
//!   compiled in memory with every other file; a broken one is refused with its `file:line`
//!   problems. The dry run shows how the last messages of a stream would have been classified;
//!   apply writes the file atomically, installs the compiled dictionaries into the running
//!   pipeline (next message sees them) and records who did what in the audit log.
//! - `POST /v1/moderator/dictionaries/reload` `{"confirm": true}`: installs a reload that was
//!   refused because lists would have lost most of their entries.
//! - `GET /v1/moderator/audit`, `GET /v1/moderator/streams`.
//! - `GET /v1/streams/ID/held` and `POST …/held/MSG/{approve,deny}`: held messages and why.
//! - `GET|PUT /v1/streams/ID/settings`: fail-open/closed, hold thresholds, slow mode.
//! - `GET /v1/streams/ID/summary`: blocked counts and the purchase-intent ticker (host screen).
//!
//! In cluster mode the per-stream requests ([`StreamRequest`]) are answered by the stream's
//! owner, where its pipeline and moderation state are; decisions and settings are journaled
//! there. Dictionaries, explains, dry runs, the audit log and `GET /v1/moderator/streams` stay
//! the receiving instance's.
//!
//! The dictionary endpoints are in [`dictionaries`].
//!
//! Who did something comes from the `X-Kotae-Moderator` header (tokens are shared secrets, not
//! names), `moderator` when absent. Reads never create a stream's state. Dry runs, explains and
//! applies run at most `max_console_jobs` at once (429 past it). Bodies are read after the token
//! is checked.

// The helpers here (`job_slot`, `record`) return the axum `Response` to send as their error;
// boxing it would only unbox it again.
#![allow(clippy::result_large_err)]

mod dictionaries;

pub(crate) use dictionaries::{apply, dictionaries, dry_run, reload};

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Ctx;
use super::config::ServerConfig;
use super::extract::{Caller, Host, JsonBody, Moderator, Open, Shape, StreamId};
use crate::label::Label;
use crate::metrics::Refusal;
use crate::moderation::{Audit, AuditEntry, Moderation, StreamSettings, audit_path_for};
use crate::pipeline::Engine;
use crate::runtime::clock::unix_ms;
use crate::server::reload::ReloadHandle;

/// The console's shared state.
pub(crate) struct Console {
    pub engine: Arc<Engine>,
    pub moderation: Arc<Moderation>,
    /// Serializes dictionary edits: read files, compile, write, install as one step.
    edit: tokio::sync::Mutex<()>,
    /// One permit per dry run, explain or apply allowed to run at once (`max_console_jobs`).
    jobs: Arc<tokio::sync::Semaphore>,
    /// Reloads the dictionaries from disk (confirming a refused reload).
    reload: ReloadHandle,
}

impl Console {
    pub fn new(engine: Arc<Engine>, config: &ServerConfig, reload: ReloadHandle) -> Self {
        let path = if config.journal.enabled() { audit_path_for(&config.journal.path) } else { None };
        Self {
            engine,
            moderation: Arc::new(Moderation::new(Audit::open(path))),
            edit: tokio::sync::Mutex::new(()),
            jobs: Arc::new(tokio::sync::Semaphore::new(config.max_console_jobs.get())),
            reload,
        }
    }
}

/// A slot to run a costly console job, or 429 (counted) when `max_console_jobs` run already.
fn job_slot(ctx: &Ctx) -> Result<tokio::sync::OwnedSemaphorePermit, Response> {
    ctx.console.jobs.clone().try_acquire_owned().map_err(|_| {
        ctx.metrics.refused(Refusal::ConsoleBusy);
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(axum::http::header::RETRY_AFTER, "1")],
            axum::Json(json!({ "error": "too many dry runs and explains at once; try again shortly" })),
        )
            .into_response()
    })
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// `%E3%81%82` → `あ` (header values are ASCII, names need not be).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The moderator's name for the audit log (the console sends it percent-encoded).
fn who(headers: &HeaderMap) -> String {
    let raw = headers.get("x-kotae-moderator").and_then(|v| v.to_str().ok()).unwrap_or("");
    let name = percent_decode(raw);
    let name: String = name.trim().chars().filter(|c| !c.is_control()).take(64).collect();
    if name.is_empty() { "moderator".into() } else { name }
}

fn record(ctx: &Ctx, entry: AuditEntry) -> Result<(), Refused> {
    ctx.console.moderation.audit.record(entry).map_err(|e| {
        tracing::error!(error = %e, "cannot write the audit log");
        (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot write the audit log: {e}"))
    })
}

type Q = Query<HashMap<String, String>>;

impl Shape for crate::dictionary::edit::Edit {
    const SHAPE: &'static str = "{\"op\", \"list\", \"section\", \"term\"}";
}

impl Shape for StreamSettings {
    const SHAPE: &'static str = "stream settings";
}

/// A moderator's request about one stream, answered where the stream's state is: here, or at
/// its owner in cluster mode (`Input::Moderate`). Decisions and settings change state, so a
/// cluster journals them and a new owner replays them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub(crate) enum StreamRequest {
    /// `GET …/summary` (without the adapters' part, which is the receiving instance's).
    Summary,
    /// `GET …/held[?all=1]`.
    Held { all: bool },
    /// `GET …/settings`.
    Settings,
    /// `GET …/faq`.
    Faq,
    /// `POST …/held/MSG/{approve,deny}`, by `who` at `at` (Unix ms).
    Decide { id: String, approve: bool, who: String, at: u64 },
    /// `PUT …/settings` (already validated), by `who` at `at`.
    PutSettings { settings: StreamSettings, who: String, at: u64 },
}

impl StreamRequest {
    /// It changes the stream's state (journaled in cluster mode).
    pub(crate) fn changes(&self) -> bool {
        matches!(self, StreamRequest::Decide { .. } | StreamRequest::PutSettings { .. })
    }
}

/// A refused request: its status and message.
pub(crate) type Refused = (StatusCode, String);

/// Answers a stream request from this instance's state. `live`: a moderator is waiting (the
/// change is written to the audit log); otherwise a cluster journal record is being replayed.
pub(crate) async fn answer(
    ctx: &Ctx,
    stream: &str,
    req: StreamRequest,
    live: bool,
) -> Result<serde_json::Value, Refused> {
    let moderation = &ctx.console.moderation;
    fn lock(
        m: &std::sync::Mutex<crate::moderation::StreamModeration>,
    ) -> std::sync::MutexGuard<'_, crate::moderation::StreamModeration> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
    match req {
        StreamRequest::Summary => {
            let s = match moderation.get(stream) {
                Some(m) => lock(&m).summary(stream),
                None => crate::moderation::StreamModeration::default().summary(stream),
            };
            Ok(serde_json::to_value(s).unwrap_or_default())
        }
        StreamRequest::Held { all } => {
            let (held, degraded) = moderation
                .get(stream)
                .map(|m| {
                    let m = lock(&m);
                    (m.held(all), m.degraded())
                })
                .unwrap_or_default();
            Ok(json!({ "stream": stream, "held": held, "degraded": degraded }))
        }
        StreamRequest::Settings => {
            let s = moderation.get(stream).map(|m| lock(&m).settings.clone()).unwrap_or_default();
            let c = &ctx.console.engine.config.classify;
            Ok(json!({
                "stream": stream,
                "settings": s,
                "defaults": {
                    "fail_policy": ctx.config.on_budget_exceeded,
                    "hold_at": round3(c.thresholds[Label::Spam.index()].min(c.thresholds[Label::Abuse.index()])),
                    "block_at": round3(c.block_at),
                    "slow_mode_seconds": 0,
                },
            }))
        }
        StreamRequest::Faq => match ctx.shards.faq(Arc::from(stream)).await {
            Some(faq) => Ok(serde_json::to_value(faq).unwrap_or_default()),
            None => Err((StatusCode::SERVICE_UNAVAILABLE, "server is shutting down".into())),
        },
        StreamRequest::Decide { id, approve, who, at } => {
            let missing = || (StatusCode::NOT_FOUND, "no such held message".to_string());
            let m = moderation.get(stream).ok_or_else(missing)?;
            let h = lock(&m).decide(&id, approve, &who, at).ok_or_else(missing)?;
            if live {
                let entry = AuditEntry {
                    at,
                    who,
                    action: if approve { "held.approve" } else { "held.deny" }.into(),
                    stream: Some(stream.to_string()),
                    detail: json!({ "id": h.id, "text": h.text, "user": h.user, "why": h.why }),
                };
                record(ctx, entry)?;
            }
            Ok(json!({ "held": h }))
        }
        StreamRequest::PutSettings { settings, who, at } => {
            let Some(m) = moderation.stream_for_change(stream) else {
                ctx.metrics.refused(Refusal::Streams);
                return Err((StatusCode::SERVICE_UNAVAILABLE, "too many streams".into()));
            };
            if live {
                let entry = AuditEntry {
                    at,
                    who,
                    action: "settings".into(),
                    stream: Some(stream.to_string()),
                    detail: json!(settings),
                };
                record(ctx, entry)?;
            }
            lock(&m).settings = settings.clone();
            Ok(json!({ "stream": stream, "settings": settings }))
        }
    }
}

/// Answers a stream request: at the stream's owner in cluster mode, here otherwise.
pub(crate) async fn route(ctx: &Ctx, stream: &str, req: StreamRequest) -> Response {
    // ── cluster hook: moderation state lives where the stream's pipeline runs.
    let answered = match &ctx.cluster {
        Some(node) => match node.moderate(stream, req).await {
            Ok(r) => r.map_err(|(status, e)| (StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY), e)),
            Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, format!("cluster: {e}"))),
        },
        None => answer(ctx, stream, req, true).await,
    };
    match answered {
        Ok(v) => axum::Json(v).into_response(),
        Err((status, e)) => error(status, &e),
    }
}

/// `GET /v1/streams/ID/summary`.
pub(crate) async fn summary(
    State(ctx): State<Arc<Ctx>>,
    _: Caller<Host>,
    _: Open,
    StreamId(stream): StreamId,
) -> Response {
    let s = match &ctx.cluster {
        Some(node) => node.moderate(&stream, StreamRequest::Summary).await,
        None => Ok(answer(&ctx, &stream, StreamRequest::Summary, true).await.map_err(|(s, e)| (s.as_u16(), e))),
    };
    let mut v = match s {
        Ok(Ok(v)) => v,
        Ok(Err((status, e))) => {
            return error(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY), &e);
        }
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &format!("cluster: {e}")),
    };
    // The host screen polls this: it also says when the stream's platform adapters (which run
    // on the instance that started them) have ended.
    if let Some(adapters) = ctx.adapter_stats.stream(&stream)
        && let Some(o) = v.as_object_mut()
    {
        o.insert("adapters".into(), serde_json::to_value(adapters).unwrap_or_default());
    }
    axum::Json(v).into_response()
}

/// `GET /v1/streams/ID/held[?all=1]`.
pub(crate) async fn held(
    State(ctx): State<Arc<Ctx>>,
    _: Caller<Moderator>,
    _: Open,
    StreamId(stream): StreamId,
    Query(q): Q,
) -> Response {
    let all = q.get("all").is_some_and(|v| v == "1" || v == "true");
    route(&ctx, &stream, StreamRequest::Held { all }).await
}

/// `POST /v1/streams/ID/held/MSG/{approve,deny}`.
pub(crate) async fn decide(
    State(ctx): State<Arc<Ctx>>,
    UrlPath((_, id, decision)): UrlPath<(String, String, String)>,
    _: Caller<Moderator>,
    _: Open,
    StreamId(stream): StreamId,
    headers: HeaderMap,
) -> Response {
    let approve = match decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return error(StatusCode::NOT_FOUND, "unknown decision; use approve or deny"),
    };
    route(&ctx, &stream, StreamRequest::Decide { id, approve, who: who(&headers), at: unix_ms() }).await
}

/// `GET /v1/streams/ID/settings`.
pub(crate) async fn settings(
    State(ctx): State<Arc<Ctx>>,
    _: Caller<Moderator>,
    _: Open,
    StreamId(stream): StreamId,
) -> Response {
    route(&ctx, &stream, StreamRequest::Settings).await
}

/// An `f32` setting as people write it (0.8, not 0.800000011920929).
fn round3(x: f32) -> f64 {
    (f64::from(x) * 1000.0).round() / 1000.0
}

/// `PUT /v1/streams/ID/settings` with a whole [`StreamSettings`].
pub(crate) async fn put_settings(
    State(ctx): State<Arc<Ctx>>,
    _: Caller<Moderator>,
    _: Open,
    StreamId(stream): StreamId,
    headers: HeaderMap,
    JsonBody(s): JsonBody<StreamSettings>,
) -> Response {
    let problems = s.problems();
    if !problems.is_empty() {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({ "error": problems.join("; "), "problems": problems })),
        )
            .into_response();
    }
    route(&ctx, &stream, StreamRequest::PutSettings { settings: s, who: who(&headers), at: unix_ms() }).await
}

/// `GET /v1/moderator/streams`.
pub(crate) async fn streams(State(ctx): State<Arc<Ctx>>, _: Caller<Moderator>, _: Open) -> Response {
    axum::Json(json!({ "streams": ctx.console.moderation.streams() })).into_response()
}

/// `GET /v1/moderator/audit[?n=100]`.
pub(crate) async fn audit(State(ctx): State<Arc<Ctx>>, _: Caller<Moderator>, _: Open, Query(q): Q) -> Response {
    let n = q.get("n").and_then(|n| n.parse().ok()).unwrap_or(100usize).min(1000);
    let a = &ctx.console.moderation.audit;
    axum::Json(json!({ "file": a.path(), "entries": a.last(n) })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExplainBody {
    text: String,
}

impl Shape for ExplainBody {
    const SHAPE: &'static str = "{\"text\": \"…\"}";
}

/// A reason with the original text it points at.
#[derive(Debug, Serialize)]
struct ShownReason {
    label: Label,
    rule: String,
    span: [u32; 2],
    original: String,
}

/// `POST /v1/moderator/explain` `{"text": "…"}`.
pub(crate) async fn explain(
    State(ctx): State<Arc<Ctx>>,
    _: Caller<Moderator>,
    _: Open,
    JsonBody(body): JsonBody<ExplainBody>,
) -> Response {
    let slot = match job_slot(&ctx) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let engine = ctx.console.engine.clone();
    let out = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let mut analyzer = engine.analyzer();
        let analysis = analyzer.analyze(&body.text).map_err(|e| e.to_string())?;
        let c = &analysis.classification;
        let action = c.action(&engine.config.classify);
        let reasons: Vec<ShownReason> = c
            .reasons
            .iter()
            .map(|r| {
                let (a, b) = (r.span[0] as usize, (r.span[1] as usize).min(body.text.len()));
                ShownReason {
                    label: r.label,
                    rule: r.rule.to_string(),
                    span: [a as u32, b as u32],
                    original: body.text.get(a..b).unwrap_or("").to_string(),
                }
            })
            .collect();
        let labels: Vec<Label> = c.labels.iter().collect();
        let scores = c.scores;
        let explanation = analyzer.explain(&body.text);
        Ok::<_, String>(json!({
            "text": body.text,
            "labels": labels,
            "action": action,
            "scores": {
                "question": scores[0], "purchase_intent": scores[1], "spam": scores[2], "abuse": scores[3],
            },
            "reasons": reasons,
            "category": c.category,
            "topics": analysis.topics,
            "normalized": explanation.surface,
            "key": explanation.key,
            "tokens": explanation.tokens,
            "hits": explanation.hits,
            "features": explanation.features,
            "ngrams": explanation.ngrams,
        }))
    })
    .await;
    match out {
        Ok(Ok(v)) => axum::Json(v).into_response(),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, &e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moderator_names_are_percent_decoded() {
        assert_eq!(percent_decode("%E3%81%82%E3%81%84 ok%2"), "あい ok%2");
    }
}
