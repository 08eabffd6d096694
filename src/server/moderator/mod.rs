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

fn record(ctx: &Ctx, entry: AuditEntry) -> Result<(), Response> {
    ctx.console.moderation.audit.record(entry).map_err(|e| {
        tracing::error!(error = %e, "cannot write the audit log");
        error(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot write the audit log: {e}"))
    })
}

type Q = Query<HashMap<String, String>>;

impl Shape for crate::dictionary::edit::Edit {
    const SHAPE: &'static str = "{\"op\", \"list\", \"section\", \"term\"}";
}

impl Shape for StreamSettings {
    const SHAPE: &'static str = "stream settings";
}

/// `GET /v1/streams/ID/summary`.
pub(crate) async fn summary(
    State(ctx): State<Arc<Ctx>>,
    _: Caller<Host>,
    _: Open,
    StreamId(stream): StreamId,
) -> Response {
    let s = match ctx.console.moderation.get(&stream) {
        Some(m) => m.lock().unwrap_or_else(|e| e.into_inner()).summary(&stream),
        None => crate::moderation::StreamModeration::default().summary(&stream),
    };
    // The host screen polls this: it also says when the stream's platform adapters have ended.
    match (ctx.adapter_stats.stream(&stream), serde_json::to_value(&s)) {
        (Some(adapters), Ok(mut v)) => {
            if let Some(o) = v.as_object_mut() {
                o.insert("adapters".into(), serde_json::to_value(adapters).unwrap_or_default());
            }
            axum::Json(v).into_response()
        }
        _ => axum::Json(s).into_response(),
    }
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
    let (held, degraded) = ctx
        .console
        .moderation
        .get(&stream)
        .map(|m| {
            let m = m.lock().unwrap_or_else(|e| e.into_inner());
            (m.held(all), m.degraded())
        })
        .unwrap_or_default();
    axum::Json(json!({ "stream": stream, "held": held, "degraded": degraded })).into_response()
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
    let who = who(&headers);
    let Some(m) = ctx.console.moderation.get(&stream) else {
        return error(StatusCode::NOT_FOUND, "no such held message");
    };
    let decided = m.lock().unwrap_or_else(|e| e.into_inner()).decide(&id, approve, &who, unix_ms());
    let Some(h) = decided else { return error(StatusCode::NOT_FOUND, "no such held message") };
    let entry = AuditEntry {
        at: unix_ms(),
        who,
        action: if approve { "held.approve" } else { "held.deny" }.into(),
        stream: Some(stream),
        detail: json!({ "id": h.id, "text": h.text, "user": h.user, "why": h.why }),
    };
    if let Err(r) = record(&ctx, entry) {
        return r;
    }
    axum::Json(json!({ "held": h })).into_response()
}

/// `GET /v1/streams/ID/settings`.
pub(crate) async fn settings(
    State(ctx): State<Arc<Ctx>>,
    _: Caller<Moderator>,
    _: Open,
    StreamId(stream): StreamId,
) -> Response {
    let s = ctx
        .console
        .moderation
        .get(&stream)
        .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()).settings.clone())
        .unwrap_or_default();
    let c = &ctx.console.engine.config.classify;
    axum::Json(json!({
        "stream": stream,
        "settings": s,
        "defaults": {
            "fail_policy": ctx.config.on_budget_exceeded,
            "hold_at": round3(c.thresholds[Label::Spam.index()].min(c.thresholds[Label::Abuse.index()])),
            "block_at": round3(c.block_at),
            "slow_mode_seconds": 0,
        },
    }))
    .into_response()
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
    let Some(m) = ctx.console.moderation.stream_for_change(&stream) else {
        ctx.metrics.refused(Refusal::Streams);
        return error(StatusCode::SERVICE_UNAVAILABLE, "too many streams");
    };
    let entry = AuditEntry {
        at: unix_ms(),
        who: who(&headers),
        action: "settings".into(),
        stream: Some(stream.clone()),
        detail: json!(s),
    };
    if let Err(r) = record(&ctx, entry) {
        return r;
    }
    m.lock().unwrap_or_else(|e| e.into_inner()).settings = s.clone();
    axum::Json(json!({ "stream": stream, "settings": s })).into_response()
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
