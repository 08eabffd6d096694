//! The moderator's endpoints (host tokens, like the host endpoints):
//!
//! - `POST /v1/moderator/explain` `{"text"}`: how one phrase is seen — normalized views, tokens
//!   with part of speech, labels, scores, action, reasons with their spans in the original.
//! - `GET /v1/moderator/dictionaries`: every list, section and term as written in the files.
//! - `POST /v1/moderator/dictionaries/dry-run` and `…/apply` with an [`Edit`]: the edit is
//!   compiled in memory with every other file; a broken one is refused with its `file:line`
//!   problems. The dry run shows how the last messages of a stream would have been classified;
//!   apply writes the file atomically, installs the compiled dictionaries into the running
//!   pipeline (next message sees them) and records who did what in the audit log.
//! - `GET /v1/moderator/audit`, `GET /v1/moderator/streams`.
//! - `GET /v1/streams/ID/held` and `POST …/held/MSG/{approve,deny}`: held messages and why.
//! - `GET|PUT /v1/streams/ID/settings`: fail-open/closed, hold thresholds, slow mode.
//! - `GET /v1/streams/ID/summary`: blocked counts and the purchase-intent ticker (host screen).
//!
//! Who did something comes from the `X-Kotae-Moderator` header (tokens are shared secrets, not
//! names), `moderator` when absent.

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
use crate::dictionary::{Dictionaries, DictionaryError};
use crate::label::{Action, Label};
use crate::moderation::{Audit, AuditEntry, Moderation, StreamSettings, audit_path_for};
use crate::pipeline::Engine;
use crate::pipeline::classify::Classifier;
use crate::pipeline::normalize::Normalizer;
use crate::queue::unix_ms;

/// Messages a dry run replays by default, and at most.
const DRY_RUN_DEFAULT: usize = 200;
const DRY_RUN_MAX: usize = crate::moderation::MAX_RECENT;
/// Longest term a moderator may add, in characters.
const MAX_TERM_CHARS: usize = 64;

/// The console's shared state.
pub(crate) struct Console {
    pub engine: Arc<Engine>,
    pub moderation: Arc<Moderation>,
    /// Serializes dictionary edits: read files, compile, write, install as one step.
    edit: tokio::sync::Mutex<()>,
}

impl Console {
    pub fn new(engine: Arc<Engine>, config: &ServerConfig) -> Self {
        let path = if config.journal.enabled() { audit_path_for(&config.journal.path) } else { None };
        Self { engine, moderation: Arc::new(Moderation::new(Audit::open(path))), edit: tokio::sync::Mutex::new(()) }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn guard(ctx: &Ctx, headers: &HeaderMap, query: &HashMap<String, String>) -> Result<(), Response> {
    auth::check(&ctx.config, &ctx.metrics, Scope::Host, headers, query).map_err(IntoResponse::into_response)?;
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

/// The prologue of a console `POST`: the caller may use the console, and the body parses.
fn guarded_body<T: serde::de::DeserializeOwned>(
    ctx: &Ctx,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &[u8],
    expected: &str,
) -> Result<T, Response> {
    guard(ctx, headers, query)?;
    json_body(body, expected)
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
    if let Err(r) = stream_guard(&ctx, &headers, &q, &stream) {
        return r;
    }
    let m = ctx.console.moderation.stream(&stream);
    let s = m.lock().unwrap_or_else(|e| e.into_inner()).summary(&stream);
    axum::Json(s).into_response()
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
    let m = ctx.console.moderation.stream(&stream);
    let held = m.lock().unwrap_or_else(|e| e.into_inner()).held(all);
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
    let m = ctx.console.moderation.stream(&stream);
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
    let m = ctx.console.moderation.stream(&stream);
    let s = m.lock().unwrap_or_else(|e| e.into_inner()).settings.clone();
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
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = stream_guard(&ctx, &headers, &q, &stream) {
        return r;
    }
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
    let m = ctx.console.moderation.stream(&stream);
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
    body: axum::body::Bytes,
) -> Response {
    let body: ExplainBody = match guarded_body(&ctx, &headers, &q, &body, "{\"text\": \"…\"}") {
        Ok(b) => b,
        Err(r) => return r,
    };
    let engine = ctx.console.engine.clone();
    let out = tokio::task::spawn_blocking(move || {
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

/// A term as written in a dictionary file.
#[derive(Debug, Serialize)]
struct TermLine {
    term: String,
    flags: Vec<String>,
    line: usize,
}

#[derive(Debug, Serialize)]
struct SectionView {
    name: String,
    rule: String,
    declared: Option<String>,
    line: usize,
    terms: Vec<TermLine>,
}

#[derive(Debug, Serialize)]
struct ListView {
    list: String,
    file: String,
    sections: Vec<SectionView>,
}

/// The `*.txt` files of the dictionary directory, sorted, as `(path, text)`.
fn read_sources(dir: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            std::fs::read_to_string(&p).map(|t| (p.clone(), t)).map_err(|e| format!("cannot read {}: {e}", p.display()))
        })
        .collect()
}

fn list_name(path: &Path) -> String {
    path.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string()
}

/// A line without its comment, trimmed.
fn content(line: &str) -> &str {
    line.split_once('#').map_or(line, |(before, _)| before).trim()
}

/// The section name of a header line (`[insult => abuse]` → `insult`), if it is one.
fn header(line: &str) -> Option<(&str, Option<&str>)> {
    let h = content(line).strip_prefix('[')?.strip_suffix(']')?;
    Some(match h.split_once("=>") {
        Some((n, l)) => (n.trim(), Some(l.trim())),
        None => (h.trim(), None),
    })
}

fn view(path: &Path, text: &str) -> ListView {
    let list = list_name(path);
    let mut sections: Vec<SectionView> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if let Some((name, declared)) = header(raw) {
            sections.push(SectionView {
                name: name.to_string(),
                rule: format!("ja.{list}.{name}"),
                declared: declared.map(str::to_string),
                line: i + 1,
                terms: Vec::new(),
            });
            continue;
        }
        let c = content(raw);
        if c.is_empty() {
            continue;
        }
        if let Some(s) = sections.last_mut() {
            let mut parts = c.split('|').map(str::trim);
            let term = parts.next().unwrap_or("").to_string();
            s.terms.push(TermLine { term, flags: parts.map(str::to_string).collect(), line: i + 1 });
        }
    }
    ListView { file: path.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default(), list, sections }
}

/// `GET /v1/moderator/dictionaries`.
pub(crate) async fn dictionaries(State(ctx): State<Arc<Ctx>>, Query(q): Q, headers: HeaderMap) -> Response {
    if let Err(r) = guard(&ctx, &headers, &q) {
        return r;
    }
    let dir = ctx.console.engine.config.dictionaries.clone();
    match read_sources(&dir) {
        Ok(sources) => {
            let lists: Vec<ListView> = sources.iter().map(|(p, t)| view(p, t)).collect();
            let entries = ctx.console.engine.classifier().dictionaries.len();
            axum::Json(json!({ "dir": dir, "entries": entries, "lists": lists })).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// Add or remove one term of one section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Edit {
    /// `add` or `remove`.
    op: String,
    /// The list: a file name without `.txt` (`abuse`, `spam`, …).
    list: String,
    section: String,
    term: String,
    /// Entry flags for `add`: `bounded`, `end`, `start`, `whole`.
    #[serde(default)]
    flags: Vec<String>,
    /// The stream whose last messages the dry run replays.
    #[serde(default)]
    stream: Option<String>,
    /// How many of them (default 200).
    #[serde(default)]
    last: Option<usize>,
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
    let term = edit.term.trim();
    if term.is_empty() {
        return Err(Refused::new(StatusCode::UNPROCESSABLE_ENTITY, "the term is empty"));
    }
    if term.chars().count() > MAX_TERM_CHARS {
        return Err(Refused::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("terms are at most {MAX_TERM_CHARS} characters"),
        ));
    }
    if term.contains(['#', '|', '\n', '\r']) || term.starts_with('[') || term.chars().any(char::is_control) {
        return Err(Refused::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a term cannot contain '#', '|', line breaks or start with '['",
        ));
    }
    for f in &edit.flags {
        if !["bounded", "end", "start", "whole", "inword"].contains(&f.as_str()) {
            return Err(Refused::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("unknown flag '{f}' (bounded, end, start, whole, inword)"),
            ));
        }
    }
    let dir = &engine.config.dictionaries;
    let mut sources = read_sources(dir).map_err(|e| Refused::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let Some(i) = sources.iter().position(|(p, _)| list_name(p) == edit.list) else {
        return Err(Refused::new(StatusCode::NOT_FOUND, format!("no list '{}'", edit.list)));
    };
    let lines: Vec<&str> = sources[i].1.lines().collect();
    let Some(start) = lines.iter().position(|l| header(l).is_some_and(|(n, _)| n == edit.section)) else {
        return Err(Refused::new(StatusCode::NOT_FOUND, format!("no section [{}] in {}.txt", edit.section, edit.list)));
    };
    let end = lines[start + 1..].iter().position(|l| header(l).is_some()).map_or(lines.len(), |k| start + 1 + k);
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match edit.op.as_str() {
        "add" => {
            let at = (start + 1..end).rev().find(|&k| !content(lines[k]).is_empty()).map_or(start + 1, |k| k + 1);
            let mut line = term.to_string();
            for f in &edit.flags {
                line.push_str(" | ");
                line.push_str(f);
            }
            out.insert(at, line);
        }
        "remove" => {
            let mut normalizer = Normalizer::new(&engine.config.normalize);
            let key = normalizer.key_of(term);
            let term_of = |l: &str| content(l).split('|').next().unwrap_or("").trim().to_string();
            let found = (start + 1..end).find(|&k| term_of(lines[k]) == term).or_else(|| {
                (start + 1..end)
                    .find(|&k| !term_of(lines[k]).is_empty() && normalizer.key_of(&term_of(lines[k])) == key)
            });
            let Some(k) = found else {
                return Err(Refused::new(
                    StatusCode::NOT_FOUND,
                    format!("'{term}' is not in [{}] of {}.txt", edit.section, edit.list),
                ));
            };
            out.remove(k);
        }
        other => return Err(Refused::new(StatusCode::BAD_REQUEST, format!("unknown op '{other}'; use add or remove"))),
    }
    let mut text = out.join("\n");
    text.push('\n');
    sources[i].1 = text;
    Ok((sources, i))
}

fn compile(engine: &Engine, sources: &[(PathBuf, String)]) -> Result<Dictionaries, Refused> {
    let dir = &engine.config.dictionaries;
    Dictionaries::compile(dir, sources, &engine.config.normalize).map_err(|DictionaryError(problems)| {
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
        Some(s) if super::valid_stream(s) => {
            ctx.console.moderation.stream(s).lock().unwrap_or_else(|e| e.into_inner()).recent(n)
        }
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
    let out = tokio::task::spawn_blocking(move || {
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
    body: axum::body::Bytes,
) -> Response {
    match guarded_body::<Edit>(&ctx, &headers, &q, &body, EDIT_SHAPE) {
        Ok(edit) => dry_run_edit(ctx, edit).await,
        Err(r) => r,
    }
}

/// Writes a file by renaming a sibling temporary file over it, so the watcher and readers
/// never see half a file. The temporary name does not end in `.txt`, so it is never loaded.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("txt.kotae-edit");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// `POST /v1/moderator/dictionaries/apply` with an [`Edit`].
pub(crate) async fn apply(
    State(ctx): State<Arc<Ctx>>,
    Query(q): Q,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let edit: Edit = match guarded_body(&ctx, &headers, &q, &body, EDIT_SHAPE) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let who = who(&headers);
    let _one_at_a_time = ctx.console.edit.lock().await;
    let worker = ctx.clone();
    let out = tokio::task::spawn_blocking(move || {
        let ctx = worker;
        let engine = &ctx.console.engine;
        let (sources, i) = edited(engine, &edit)?;
        let next = Arc::new(compile(engine, &sources)?);
        let diff = replay_recent(&ctx, &next, &edit);
        let (path, text) = &sources[i];
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
        // The record comes first: a change must never be in force without its audit entry.
        ctx.console
            .moderation
            .audit
            .record(entry)
            .map_err(|e| Refused::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot write the audit log: {e}")))?;
        write_atomically(path, text).map_err(|e| {
            Refused::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot write {}: {e}", path.display()))
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_list_sections_and_terms_with_flags() {
        let v = view(Path::new("d/abuse.txt"), "# c\n[die => abuse]\nしね | bounded\n\n[insult]\nバカ # note\n");
        assert_eq!(v.list, "abuse");
        assert_eq!(v.sections.len(), 2);
        assert_eq!(v.sections[0].declared.as_deref(), Some("abuse"));
        assert_eq!(v.sections[0].terms[0].flags, ["bounded"]);
        assert_eq!((v.sections[1].terms[0].term.as_str(), v.sections[1].terms[0].line), ("バカ", 6));
    }

    #[test]
    fn moderator_names_are_percent_decoded() {
        assert_eq!(percent_decode("%E3%81%82%E3%81%84 ok%2"), "あい ok%2");
    }
}
