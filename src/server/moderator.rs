//! The moderator's endpoints (moderator tokens; host tokens do not open them), except the summary,
//! which the host screen shows (host tokens):
//!
//! - `POST /v1/moderator/explain` `{"text"}`: how one phrase is seen — normalized views, tokens
//!   with part of speech, labels, scores, action, reasons with their spans in the original.
//! - `GET /v1/moderator/dictionaries`: every list, section and term as written in the files.
//! - `POST /v1/moderator/dictionaries/dry-run` and `…/apply` with an [`Edit`]: the edit is
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
//! Who did something comes from the `X-Kotae-Moderator` header (tokens are shared secrets, not
//! names), `moderator` when absent. Reads never create a stream's state. Dry runs, explains and
//! applies run at most `max_console_jobs` at once (429 past it). Bodies are read after the token
//! is checked.

// The guards here return the axum `Response` to send as their error; boxing it would only
// unbox it again.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Ctx;
use super::auth::{self, Scope};
use super::config::ServerConfig;
use crate::dictionary::edit::{self, Edit, EditError, ListView};
use crate::dictionary::{Dictionaries, DictionaryError};
use crate::label::{Action, Label};
use crate::metrics::Refusal;
use crate::moderation::{Audit, AuditEntry, Moderation, StreamSettings, audit_path_for};
use crate::pipeline::Engine;
use crate::pipeline::classify::Classifier;
use crate::queue::unix_ms;
use crate::server::reload::{ReloadHandle, Reloaded};

/// Messages a dry run replays by default, and at most.
const DRY_RUN_DEFAULT: usize = 200;
const DRY_RUN_MAX: usize = crate::moderation::MAX_RECENT;

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

fn guard(ctx: &Ctx, headers: &HeaderMap, query: &HashMap<String, String>) -> Result<(), Response> {
    guard_as(ctx, Scope::Moderator, headers, query)
}

fn guard_as(ctx: &Ctx, scope: Scope, headers: &HeaderMap, query: &HashMap<String, String>) -> Result<(), Response> {
    auth::check(&ctx.config, &ctx.metrics, scope, headers, query).map_err(IntoResponse::into_response)?;
    if ctx.is_closing() {
        return Err(error(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down"));
    }
    Ok(())
}

fn stream_guard(ctx: &Ctx, headers: &HeaderMap, query: &HashMap<String, String>, stream: &str) -> Result<(), Response> {
    guard(ctx, headers, query)?;
    if !super::valid_stream(stream) {
        return Err(error(StatusCode::BAD_REQUEST, "invalid stream id"));
    }
    Ok(())
}

/// `%E3%81%82` → `あ` (header values are ASCII, names need not be).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], expected: &str) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| error(StatusCode::BAD_REQUEST, &format!("expected {expected}: {e}")))
}

/// The prologue of a console `POST`: the caller may use the console, then the body is read
/// (bounded in size and time) and parses.
async fn guarded_body<T: serde::de::DeserializeOwned>(
    ctx: &Ctx,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: axum::body::Body,
    expected: &str,
) -> Result<T, Response> {
    guard(ctx, headers, query)?;
    let body = super::guard::read_body(body).await?;
    json_body(&body, expected)
}

type Q = Query<HashMap<String, String>>;

/// What an [`Edit`] body looks like, for error messages.
const EDIT_SHAPE: &str = "{\"op\", \"list\", \"section\", \"term\"}";

/// `GET /v1/streams/ID/summary`.
pub(crate) async fn summary(
    State(ctx): State<Arc<Ctx>>,
    UrlPath(stream): UrlPath<String>,
    Query(q): Q,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = guard_as(&ctx, Scope::Host, &headers, &q) {
        return r;
    }
    if !super::valid_stream(&stream) {
        return error(StatusCode::BAD_REQUEST, "invalid stream id");
    }
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
    UrlPath(stream): UrlPath<String>,
    Query(q): Q,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = stream_guard(&ctx, &headers, &q, &stream) {
        return r;
    }
    let all = q.get("all").is_some_and(|v| v == "1" || v == "true");
    let held = ctx
        .console
        .moderation
        .get(&stream)
        .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()).held(all))
        .unwrap_or_default();
    axum::Json(json!({ "stream": stream, "held": held })).into_response()
}

/// `POST /v1/streams/ID/held/MSG/{approve,deny}`.
pub(crate) async fn decide(
    State(ctx): State<Arc<Ctx>>,
    UrlPath((stream, id, decision)): UrlPath<(String, String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = stream_guard(&ctx, &headers, &q, &stream) {
        return r;
    }
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
    UrlPath(stream): UrlPath<String>,
    Query(q): Q,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = stream_guard(&ctx, &headers, &q, &stream) {
        return r;
    }
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
    UrlPath(stream): UrlPath<String>,
    Query(q): Q,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    if let Err(r) = stream_guard(&ctx, &headers, &q, &stream) {
        return r;
    }
    let body = match super::guard::read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let s: StreamSettings = match json_body(&body, "stream settings") {
        Ok(s) => s,
        Err(r) => return r,
    };
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
pub(crate) async fn streams(State(ctx): State<Arc<Ctx>>, Query(q): Q, headers: HeaderMap) -> Response {
    if let Err(r) = guard(&ctx, &headers, &q) {
        return r;
    }
    axum::Json(json!({ "streams": ctx.console.moderation.streams() })).into_response()
}

/// `GET /v1/moderator/audit[?n=100]`.
pub(crate) async fn audit(State(ctx): State<Arc<Ctx>>, Query(q): Q, headers: HeaderMap) -> Response {
    if let Err(r) = guard(&ctx, &headers, &q) {
        return r;
    }
    let n = q.get("n").and_then(|n| n.parse().ok()).unwrap_or(100usize).min(1000);
    let a = &ctx.console.moderation.audit;
    axum::Json(json!({ "file": a.path(), "entries": a.last(n) })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainBody {
    text: String,
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
    Query(q): Q,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let body: ExplainBody = match guarded_body(&ctx, &headers, &q, body, "{\"text\": \"…\"}").await {
        Ok(b) => b,
        Err(r) => return r,
    };
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

/// The lists as the loader reads them: the dictionary directory's files over the defaults.
fn read_sources(engine: &Engine) -> Result<Vec<(PathBuf, String)>, String> {
    engine.config.read_sources().map_err(|e| e.to_string())
}

/// `GET /v1/moderator/dictionaries`.
pub(crate) async fn dictionaries(State(ctx): State<Arc<Ctx>>, Query(q): Q, headers: HeaderMap) -> Response {
    if let Err(r) = guard(&ctx, &headers, &q) {
        return r;
    }
    let dir = ctx.console.engine.config.dictionary_dir();
    match read_sources(&ctx.console.engine) {
        Ok(sources) => {
            let lists: Vec<ListView> = sources.iter().map(|(p, t)| edit::view(p, t)).collect();
            let entries = ctx.console.engine.classifier().dictionaries.len();
            axum::Json(json!({ "dir": dir, "entries": entries, "lists": lists })).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// Why an edit was refused.
struct Refused {
    status: StatusCode,
    message: String,
    problems: Vec<String>,
}

impl Refused {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), problems: Vec::new() }
    }
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "error": self.message, "problems": self.problems }))).into_response()
    }
}

/// The dictionary sources with `edit` applied, and the index of the edited file.
fn edited(engine: &Engine, edit: &Edit) -> Result<(Vec<(PathBuf, String)>, usize), Refused> {
    edit::check(edit).map_err(refused_edit)?;
    let sources = read_sources(engine).map_err(|e| Refused::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    edit::apply(sources, edit, &engine.config.normalize).map_err(refused_edit)
}

fn refused_edit(e: EditError) -> Refused {
    match e {
        EditError::Invalid(m) => Refused::new(StatusCode::UNPROCESSABLE_ENTITY, m),
        EditError::NotFound(m) => Refused::new(StatusCode::NOT_FOUND, m),
    }
}

fn compile(engine: &Engine, sources: &[(PathBuf, String)]) -> Result<Dictionaries, Refused> {
    let dir = &engine.config.dictionary_dir();
    engine.compile_dictionaries(dir, sources).map_err(|DictionaryError(problems)| {
        let problems: Vec<String> = problems
            .iter()
            .map(|p| {
                let file = p.file.strip_prefix(dir).unwrap_or(&p.file);
                // Messages name other files by full path; the console shows them relative.
                let message = p.message.replace(&format!("{}/", dir.display()), "");
                format!("{}:{}: {message}", file.display(), p.line)
            })
            .collect();
        Refused {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!("refused: {}", problems.first().cloned().unwrap_or_default()),
            problems,
        }
    })
}

#[derive(Debug, Serialize)]
struct Outcome {
    labels: Vec<Label>,
    action: Action,
}

#[derive(Debug, Serialize)]
struct Changed {
    id: String,
    user: Option<String>,
    text: String,
    before: Outcome,
    after: Outcome,
}

/// Classifies the stream's last messages under the running and the edited dictionaries.
fn replay_recent(ctx: &Ctx, next: &Arc<Dictionaries>, edit: &Edit) -> serde_json::Value {
    let engine = &ctx.console.engine;
    let n = edit.last.unwrap_or(DRY_RUN_DEFAULT).min(DRY_RUN_MAX);
    let recent = match &edit.stream {
        Some(s) if super::valid_stream(s) => ctx
            .console
            .moderation
            .get(s)
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()).recent(n))
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let current = engine.classifier();
    let edited = Classifier::new(next.clone(), current.model.clone(), current.config.clone());
    let mut analyzer = engine.analyzer();
    let mut changed = Vec::new();
    for m in &recent {
        let a = analyzer.classify_with(&current, &m.text);
        let b = analyzer.classify_with(&edited, &m.text);
        let (aa, ba) = (a.action(&current.config), b.action(&edited.config));
        if a.labels != b.labels || aa != ba {
            changed.push(Changed {
                id: m.id.clone(),
                user: m.user.clone(),
                text: m.text.clone(),
                before: Outcome { labels: a.labels.iter().collect(), action: aa },
                after: Outcome { labels: b.labels.iter().collect(), action: ba },
            });
        }
    }
    json!({
        "stream": edit.stream,
        "checked": recent.len(),
        "changed": changed,
        "entries_before": current.dictionaries.len(),
        "entries_after": next.len(),
    })
}

async fn dry_run_edit(ctx: Arc<Ctx>, edit: Edit) -> Response {
    let slot = match job_slot(&ctx) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let out = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let engine = &ctx.console.engine;
        let (sources, _) = edited(engine, &edit)?;
        let next = Arc::new(compile(engine, &sources)?);
        Ok::<_, Refused>(replay_recent(&ctx, &next, &edit))
    })
    .await;
    match out {
        Ok(Ok(v)) => axum::Json(v).into_response(),
        Ok(Err(r)) => r.into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `POST /v1/moderator/dictionaries/dry-run` with an [`Edit`].
pub(crate) async fn dry_run(
    State(ctx): State<Arc<Ctx>>,
    Query(q): Q,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    match guarded_body::<Edit>(&ctx, &headers, &q, body, EDIT_SHAPE).await {
        Ok(edit) => dry_run_edit(ctx, edit).await,
        Err(r) => r,
    }
}

/// Writes a file durably and whole: a temporary file in the same directory is written and
/// synced, then renamed over the file, then the directory is synced, so neither the watcher nor
/// a crash ever sees half a file. The temporary name does not end in `.txt`, so it is never
/// loaded.
pub(crate) fn write_durably(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".kotae-edit-").suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename itself is durable once the directory is synced.
    std::fs::File::open(dir)?.sync_all()
}

/// `POST /v1/moderator/dictionaries/apply` with an [`Edit`]: validated and compiled, written
/// durably, then audited (an entry is written only for a change that was written), then installed.
/// When the audit entry cannot be written the file is put back and nothing is installed.
pub(crate) async fn apply(
    State(ctx): State<Arc<Ctx>>,
    Query(q): Q,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let edit: Edit = match guarded_body(&ctx, &headers, &q, body, EDIT_SHAPE).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let who = who(&headers);
    let _one_at_a_time = ctx.console.edit.lock().await;
    let slot = match job_slot(&ctx) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let worker = ctx.clone();
    let out = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let ctx = worker;
        let engine = &ctx.console.engine;
        let (sources, i) = edited(engine, &edit)?;
        let next = Arc::new(compile(engine, &sources)?);
        let diff = replay_recent(&ctx, &next, &edit);
        let (path, text) = &sources[i];
        // Over the built-in lists, the edited list may not be in the directory yet: it is
        // written there whole, and removing it undoes the edit.
        let before = match std::fs::read_to_string(path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Refused::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        };
        write_durably(path, text).map_err(|e| {
            Refused::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot write {}: {e}", path.display()))
        })?;
        let entry = AuditEntry {
            at: unix_ms(),
            who,
            action: format!("dictionary.{}", edit.op),
            stream: edit.stream.clone(),
            detail: json!({
                "list": edit.list, "section": edit.section, "term": edit.term.trim(), "flags": edit.flags,
                "changed_in_dry_run": diff["changed"].as_array().map_or(0, Vec::len),
            }),
        };
        // A change is never in force without its audit entry: without one, the file goes back.
        if let Err(e) = ctx.console.moderation.audit.record(entry) {
            tracing::error!(error = %e, "cannot write the audit log; the dictionary edit is undone");
            let undone = match &before {
                Some(text) => write_durably(path, text),
                None => std::fs::remove_file(path),
            };
            if let Err(e) = undone {
                tracing::error!(error = %e, file = %path.display(), "cannot undo the dictionary edit");
            }
            return Err(Refused::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot write the audit log: {e}")));
        }
        let entries = next.len();
        let dictionaries = Arc::try_unwrap(next)
            .map_err(|_| Refused::new(StatusCode::INTERNAL_SERVER_ERROR, "dictionaries still shared"))?;
        engine.install(dictionaries);
        tracing::info!(list = %edit.list, section = %edit.section, op = %edit.op, entries, "dictionary edit applied");
        Ok::<_, Refused>(json!({ "applied": true, "entries": entries, "dry_run": diff }))
    })
    .await;
    match out {
        Ok(Ok(v)) => axum::Json(v).into_response(),
        Ok(Err(r)) => r.into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// Body of `POST /v1/moderator/dictionaries/reload`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReloadBody {
    /// Install even when lists would lose most of their entries.
    #[serde(default)]
    confirm: bool,
}

/// `POST /v1/moderator/dictionaries/reload` `{"confirm": true}`: reloads the files now; with
/// `confirm`, also when lists would lose most of their entries (audited).
pub(crate) async fn reload(
    State(ctx): State<Arc<Ctx>>,
    Query(q): Q,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    if let Err(r) = guard(&ctx, &headers, &q) {
        return r;
    }
    let body = match super::guard::read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let req: ReloadBody = if body.is_empty() {
        ReloadBody::default()
    } else {
        match json_body(&body, "{\"confirm\": true}") {
            Ok(b) => b,
            Err(r) => return r,
        }
    };
    let who = who(&headers);
    let _one_at_a_time = ctx.console.edit.lock().await;
    let handle = ctx.console.reload.clone();
    let outcome = match tokio::task::spawn_blocking(move || handle.reload(req.confirm)).await {
        Ok(o) => o,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    match outcome {
        Reloaded::Installed(lists) => {
            let entry = AuditEntry {
                at: unix_ms(),
                who,
                action: "dictionary.reload".into(),
                stream: None,
                detail: json!({ "confirmed": req.confirm, "lists": lists }),
            };
            if let Err(r) = record(&ctx, entry) {
                return r;
            }
            axum::Json(json!({ "reloaded": true, "lists": lists })).into_response()
        }
        Reloaded::Refused(shrunk) => (
            StatusCode::CONFLICT,
            axum::Json(json!({
                "error": format!("lists would lose most of their entries ({}); send {{\"confirm\": true}} to install anyway", shrunk.join("; ")),
                "problems": shrunk,
            })),
        )
            .into_response(),
        Reloaded::Failed(e) => error(StatusCode::UNPROCESSABLE_ENTITY, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moderator_names_are_percent_decoded() {
        assert_eq!(percent_decode("%E3%81%82%E3%81%84 ok%2"), "あい ok%2");
    }

    #[test]
    fn durable_writes_replace_the_file_whole_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abuse.txt");
        std::fs::write(&path, "old\n").unwrap();
        write_durably(&path, "[insult]\nバカ\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[insult]\nバカ\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [std::ffi::OsString::from("abuse.txt")]);
    }
}
