//! The moderators' audit log: every dictionary edit, held-message decision and settings change,
//! appended to a JSON Lines file beside the journal (synced, never rewritten), the last entries
//! kept in memory for the console.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Audit entries kept in memory for the console.
const MAX_AUDIT: usize = 1000;

/// One audit log entry: who changed what, when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Wall-clock ms.
    pub at: u64,
    /// The moderator's name as the console sent it (`x-kotae-moderator`), else `moderator`.
    pub who: String,
    /// `dictionary.add`, `dictionary.remove`, `held.approve`, `held.deny`, `settings`.
    pub action: String,
    /// The stream concerned (for a dictionary edit, the one its dry run replayed); `None` for
    /// server-wide changes such as a dictionary reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// What changed, e.g. `{"list":"abuse","section":"insult","term":"ぽんこつ"}`.
    pub detail: serde_json::Value,
}

/// The audit log: appended to a JSON Lines file (one entry a line, never rewritten) and the
/// last entries kept in memory for the console.
#[derive(Debug)]
pub struct Audit {
    path: Option<PathBuf>,
    recent: Mutex<VecDeque<AuditEntry>>,
}

impl Audit {
    /// Opens (or starts) the log at `path`; `None` keeps it in memory only.
    pub fn open(path: Option<PathBuf>) -> Self {
        let mut recent = VecDeque::new();
        if let Some(p) = &path
            && let Ok(text) = std::fs::read_to_string(p)
        {
            for line in text.lines() {
                if let Ok(e) = serde_json::from_str::<AuditEntry>(line) {
                    if recent.len() >= MAX_AUDIT {
                        recent.pop_front();
                    }
                    recent.push_back(e);
                }
            }
        }
        Self { path, recent: Mutex::new(recent) }
    }

    /// The file the log is written to, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Appends an entry (and syncs it: a change applied must not lose its record).
    pub fn record(&self, entry: AuditEntry) -> std::io::Result<()> {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = &self.path {
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(p)?;
            let mut line = serde_json::to_string(&entry).map_err(std::io::Error::other)?;
            line.push('\n');
            f.write_all(line.as_bytes())?;
            f.sync_data()?;
        }
        if recent.len() >= MAX_AUDIT {
            recent.pop_front();
        }
        recent.push_back(entry);
        Ok(())
    }

    /// The last `n` entries, newest first.
    pub fn last(&self, n: usize) -> Vec<AuditEntry> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner()).iter().rev().take(n).cloned().collect()
    }
}

/// The audit file beside a journal database: `kotae.db` → `kotae.audit.jsonl`.
pub fn audit_path_for(journal: &Path) -> Option<PathBuf> {
    if journal.as_os_str().is_empty() {
        return None;
    }
    let stem = journal.file_stem()?.to_string_lossy().to_string();
    Some(journal.with_file_name(format!("{stem}.audit.jsonl")))
}
