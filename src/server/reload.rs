//! Dictionary hot reload: a file watcher on the dictionary directory triggers
//! [`Engine::reload`], which swaps the classifier whole or, on a broken edit, keeps the old one.

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::metrics::Metrics;
use crate::pipeline::Engine;

/// Keeps the watcher alive; dropping it stops reloading.
pub struct Reloader {
    _watcher: notify::RecommendedWatcher,
}

/// Editors write files in several steps; changes closer together than this are one reload.
const SETTLE: Duration = Duration::from_millis(200);

/// Starts watching `engine`'s dictionary directory.
pub fn watch(engine: Arc<Engine>, metrics: Arc<Metrics>) -> notify::Result<Reloader> {
    // One slot: a pending reload already covers any change that arrives meanwhile, so a full
    // channel drops the signal (policy: coalesce).
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&engine.config.dictionaries, RecursiveMode::Recursive)?;
    std::thread::Builder::new()
        .name("kotae-reload".into())
        .spawn(move || {
            // Ends when the watcher (and with it the sender) is dropped.
            while rx.recv().is_ok() {
                std::thread::sleep(SETTLE);
                while rx.try_recv().is_ok() {}
                match engine.reload() {
                    Ok(()) => {
                        metrics.reload(true);
                        tracing::info!(dir = %engine.config.dictionaries.display(), "dictionaries reloaded");
                    }
                    Err(e) => {
                        metrics.reload(false);
                        tracing::error!(error = %e, "dictionary reload failed; the previous dictionaries stay in force");
                    }
                }
            }
        })
        .map_err(|e| notify::Error::generic(&e.to_string()))?;
    Ok(Reloader { _watcher: watcher })
}
