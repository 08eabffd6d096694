//! The default dictionaries and model, built into the binary (`dictionaries/ja` at build time),
//! and where they lie on disk: written once into the cache directory, in a directory named by
//! their hash, so two versions of kotae never share one and nothing is written twice.
//!
//! They are read-only defaults: moderator edits go to a writable directory whose files replace
//! the default file of the same name (see [`super::source::read_sources`]).

use std::io::Write;
use std::path::{Path, PathBuf};

mod files {
    include!(concat!(env!("OUT_DIR"), "/builtin_dictionaries.rs"));
}

/// The built-in files: (path inside the dictionary directory, contents).
pub fn files() -> &'static [(&'static str, &'static [u8])] {
    files::FILES
}

/// A short hash of every built-in file's name and contents (computed when the binary is built).
pub fn version() -> &'static str {
    files::VERSION
}

/// Name of the file written last, whose presence says the directory is complete.
const COMPLETE: &str = ".complete";

/// The directory holding the built-in files under `cache`, written there on first use
/// (`cache/dictionaries-<hash>`). Concurrent processes each write a temporary directory and
/// rename it into place, so none ever reads half of one.
pub fn materialize(cache: &Path) -> std::io::Result<PathBuf> {
    let dir = cache.join(format!("dictionaries-{}", version()));
    if dir.join(COMPLETE).is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(cache)?;
    let tmp = tempfile::Builder::new().prefix(".dictionaries-").tempdir_in(cache)?;
    for (name, bytes) in files() {
        let path = tmp.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut f = std::fs::File::create(&path)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::File::create(tmp.path().join(COMPLETE))?.sync_all()?;
    let tmp = tmp.keep();
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        // Another process got there first: theirs is the same.
        Err(_) if dir.join(COMPLETE).is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_and_model_are_built_in_and_written_once() {
        let names: Vec<&str> = files().iter().map(|(n, _)| *n).collect();
        for expected in [
            "abuse.txt",
            "synonyms.txt",
            "model/ja.tsv",
            "model/identity.tsv",
            "model/attributes.tsv",
            "model/similarity.tsv",
        ] {
            assert!(names.contains(&expected), "{expected} in {names:?}");
        }
        let cache = tempfile::tempdir().unwrap();
        let dir = materialize(cache.path()).unwrap();
        assert_eq!(materialize(cache.path()).unwrap(), dir);
        let on_disk = std::fs::read(dir.join("synonyms.txt")).unwrap();
        let built_in = files().iter().find(|(n, _)| *n == "synonyms.txt").unwrap().1;
        assert_eq!(on_disk, built_in);
        let entries: Vec<_> = std::fs::read_dir(cache.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(entries.len(), 1, "no temporary directory is left: {entries:?}");
    }
}
