//! The console's dictionary endpoints: listing the lists as written, dry runs and applied edits
//! (compiled with every other list first, written durably, audited, installed), and confirmed
//! reloads. The files are read through [`crate::dictionary::source`], as the loader reads them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{error, job_slot, record, who};
use crate::dictionary::edit::{self, Edit, EditError, ListView};
use crate::dictionary::{Dictionaries, DictionaryError};
use crate::label::{Action, Label};
use crate::moderation::AuditEntry;
use crate::pipeline::Engine;
use crate::pipeline::classify::Classifier;
use crate::runtime::clock::unix_ms;
use crate::server::Ctx;
use crate::server::extract::{Caller, JsonBody, Moderator, Open, Shape};
use crate::server::reload::Reloaded;

/// Messages a dry run replays by default, and at most.
const DRY_RUN_DEFAULT: usize = 200;
const DRY_RUN_MAX: usize = crate::moderation::MAX_RECENT;

/// The lists as the loader reads them: the dictionary directory's files over the defaults.
fn read_sources(engine: &Engine) -> Result<Vec<(PathBuf, String)>, String> {
    engine.config.read_sources().map_err(|e| e.to_string())
}

/// `GET /v1/moderator/dictionaries`.
pub(crate) async fn dictionaries(State(ctx): State<Arc<Ctx>>, _: Caller<Moderator>, _: Open) -> Response {
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
        Some(s) if crate::server::valid_stream(s) => ctx
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
    _: Caller<Moderator>,
    _: Open,
    JsonBody(edit): JsonBody<Edit>,
) -> Response {
    dry_run_edit(ctx, edit).await
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
    _: Caller<Moderator>,
    _: Open,
    headers: HeaderMap,
    JsonBody(edit): JsonBody<Edit>,
) -> Response {
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
        // No reload between reading the files and installing the edit.
        let _no_reload = ctx.console.reload.exclusive();
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
pub(crate) struct ReloadBody {
    /// Install even when lists would lose most of their entries.
    #[serde(default)]
    confirm: bool,
}

impl Shape for ReloadBody {
    const SHAPE: &'static str = "{\"confirm\": true}";

    /// No body is no confirmation.
    fn when_empty() -> Option<Self> {
        Some(Self::default())
    }
}

/// `POST /v1/moderator/dictionaries/reload` `{"confirm": true}`: reloads the files now; with
/// `confirm`, also when lists would lose most of their entries (audited).
pub(crate) async fn reload(
    State(ctx): State<Arc<Ctx>>,
    _: Caller<Moderator>,
    _: Open,
    headers: HeaderMap,
    JsonBody(req): JsonBody<ReloadBody>,
) -> Response {
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
            if let Err((status, e)) = record(&ctx, entry) {
                return super::error(status, &e);
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
