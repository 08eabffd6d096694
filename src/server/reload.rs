//! Dictionary hot reload: a file watcher on the dictionary directory reloads dictionaries and
//! model once the files have been quiet for [`SETTLE`], and installs them only when they are
//! complete:
//!
//! - a file that does not parse keeps the running dictionaries (`result="error"`);
//! - a reload after which a list would have lost most of its entries (a file emptied, deleted or
//!   cut short while being written) is refused (`result="refused"`, and
//!   `kotae_refused_total{what="dictionary_shrink"}`), logged, and the running dictionaries stay
//!   until a moderator confirms it with `POST /v1/moderator/dictionaries/reload`
//!   `{"confirm": true}`.
//!
//! Edits made through the moderator console are installed by the console itself, with reloads
//! held off meanwhile ([`ReloadHandle::exclusive`]).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::dictionary::shrunk_lists;
use crate::metrics::Metrics;
use crate::pipeline::Engine;

/// Keeps the watcher alive; dropping it stops reloading.
pub struct Reloader {
    _watcher: notify::RecommendedWatcher,
}

/// Editors write files in several steps: a reload waits until no change has come for this long.
pub const SETTLE: Duration = Duration::from_millis(200);

/// How a reload went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// Installed; entries per list.
    Installed(std::collections::BTreeMap<String, usize>),
    /// Not installed: lists would have lost most of their entries (described). Confirm to install.
    Refused(Vec<String>),
    /// Not installed: the files do not load (every problem).
    Failed(String),
}

/// Reloads the engine's dictionaries and model; shared by the watcher and the console.
#[derive(Clone)]
pub struct ReloadHandle {
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    /// Serializes reloads, so two never interleave their check and install.
    lock: Arc<Mutex<()>>,
}

impl ReloadHandle {
    /// A handle that swaps `engine`'s classifier, counting reloads and their errors in `metrics`.
    pub fn new(engine: Arc<Engine>, metrics: Arc<Metrics>) -> Self {
        Self { engine, metrics, lock: Arc::default() }
    }

    /// Holds reloads off while the caller reads, writes and installs the files itself (a console
    /// edit): a reload that read the files before the edit wrote them would otherwise install
    /// that older reading over the edit.
    pub fn exclusive(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the files; installs them unless they fail, or lists shrank and `confirm` is false.
    pub fn reload(&self, confirm: bool) -> Reloaded {
        let _one = self.exclusive();
        let next = match self.engine.load_from_disk() {
            Ok(c) => c,
            Err(e) => {
                self.metrics.reload(false);
                tracing::error!(error = %e, "dictionary reload failed; the previous dictionaries stay in force");
                return Reloaded::Failed(e.to_string());
            }
        };
        let before = self.engine.classifier().dictionaries.list_sizes();
        let after = next.dictionaries.list_sizes();
        let shrunk = shrunk_lists(&before, &after);
        if !shrunk.is_empty() && !confirm {
            self.metrics.reload_refused();
            tracing::error!(
                lists = %shrunk.join("; "),
                "dictionary reload refused: lists would lose most of their entries; the previous dictionaries \
                 stay in force until the reload is confirmed (POST /v1/moderator/dictionaries/reload {{\"confirm\": true}})"
            );
            return Reloaded::Refused(shrunk);
        }
        self.engine.swap(next);
        self.metrics.reload(true);
        tracing::info!(dir = %self.engine.config.dictionary_dir().display(), confirmed = confirm, "dictionaries reloaded");
        Reloaded::Installed(after)
    }
}

/// Starts watching the dictionary directory of `handle`'s engine.
pub fn watch(handle: ReloadHandle) -> notify::Result<Reloader> {
    // One slot: a pending reload already covers any change that arrives meanwhile, so a full
    // channel drops the signal (policy: coalesce).
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.try_send(());
        }
    })?;
    // Over the built-in lists the directory may not exist yet: it is where edits go.
    let dir = handle.engine.config.dictionary_dir();
    if handle.engine.config.defaults().is_some() {
        std::fs::create_dir_all(&dir).map_err(notify::Error::io)?;
    }
    watcher.watch(&dir, RecursiveMode::Recursive)?;
    std::thread::Builder::new()
        .name("kotae-reload".into())
        .spawn(move || {
            // Ends when the watcher (and with it the sender) is dropped.
            while rx.recv().is_ok() {
                // Debounce: wait until a whole SETTLE passes without a change.
                loop {
                    std::thread::sleep(SETTLE);
                    if rx.try_recv().is_err() {
                        break;
                    }
                }
                handle.reload(false);
            }
        })
        .map_err(|e| notify::Error::generic(&e.to_string()))?;
    Ok(Reloader { _watcher: watcher })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::PipelineConfig;

    #[test]
    fn a_reload_waits_while_an_edit_holds_the_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dictionaries/ja");
        let config = PipelineConfig { dictionaries: Some(dir), ..PipelineConfig::default() };
        let handle = ReloadHandle::new(Engine::new(config).unwrap(), Arc::new(Metrics::new()));
        let edit = handle.exclusive();
        let (done, finished) = crossbeam_channel::bounded(1);
        let watcher = handle.clone();
        std::thread::spawn(move || done.send(watcher.reload(false)).unwrap());
        assert!(
            finished.recv_timeout(Duration::from_millis(500)).is_err(),
            "a reload that read the files now could install them over the edit"
        );
        drop(edit);
        let outcome = finished.recv_timeout(Duration::from_secs(60)).expect("the reload runs once the edit is in");
        assert!(matches!(outcome, Reloaded::Installed(_)), "{outcome:?}");
    }
}
