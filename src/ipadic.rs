//! Obtaining the IPADIC system dictionary without internet access.
//!
//! Lindera's `embed-ipadic` feature downloads an archive at build time, which fails offline. Instead
//! kotae builds the dictionary at first use from the original IPADIC sources that Debian ships in
//! its `mecab-ipadic` package (EUC-JP CSV and `.def` files), with Lindera's own builder and the
//! metadata of the `lindera-ipadic` 6.2.0 crate, and caches the result. Later starts only mmap it.
//!
//! Where the sources come from, in order:
//! 1. `KOTAE_IPADIC_SRC` (a directory of IPADIC `*.csv` and `*.def` files, EUC-JP or UTF-8);
//! 2. a previous extraction under the cache directory;
//! 3. `/usr/share/mecab/dic/ipadic` (the `mecab-ipadic` package installed system-wide);
//! 4. `apt-get download mecab-ipadic` + `dpkg-deb -x` into the cache directory (no root needed).
//!
//! Concurrent processes (parallel tests) serialize on a lock file; the built dictionary appears
//! atomically by directory rename.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use lindera::dictionary::{Dictionary, DictionaryBuilder, Metadata, load_dictionary};

/// The `metadata.json` of the `lindera-ipadic` 6.2.0 crate: the schema of IPADIC's 13 columns.
const IPADIC_METADATA: &str = include_str!("pipeline/ipadic-metadata.json");
/// Name of the built dictionary directory inside the cache; bump with the lindera version.
const BUILT: &str = "ipadic-lindera-6.2.0";
/// Where a `dpkg-deb -x` of the Debian package keeps the sources.
const DEB_SOURCES: &str = "usr/share/mecab/dic/ipadic";

/// Failure to obtain or load the system dictionary.
#[derive(Debug, thiserror::Error)]
pub enum IpadicError {
    /// No IPADIC sources found: `KOTAE_IPADIC_SRC` lacks them, or none are in the cache or the
    /// system and fetching the Debian package failed (why, and the cache directory the message
    /// tells to fetch into).
    #[error(
        "ipadic sources not found and could not be fetched ({0}).\n  \
         on Debian/Ubuntu run:  apt-get update  (as root), then retry;\n  \
         or fetch by hand:      mkdir -p {cache} && cd {cache} && apt-get download mecab-ipadic && dpkg-deb -x mecab-ipadic_*_all.deb mecab-ipadic\n  \
         elsewhere:             set KOTAE_IPADIC_SRC to a directory holding IPADIC 2.7.0 *.csv and *.def files \
         (e.g. from the mecab-ipadic-2.7.0-20070801 source tarball)",
        cache = .1.display()
    )]
    NoSources(String, PathBuf),
    /// Reading, extracting or writing a file of the dictionary or its cache failed.
    #[error("io error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Lindera could not build the dictionary from the sources or load the built one (its
    /// message).
    #[error("lindera: {0}")]
    Lindera(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IpadicError + '_ {
    move |source| IpadicError::Io { path: path.to_path_buf(), source }
}

/// Loads the IPADIC dictionary from `cache`, building it first if it is not there yet.
pub fn load(cache: &Path) -> Result<Dictionary, IpadicError> {
    let built = ensure_built(cache)?;
    load_dictionary(&built.to_string_lossy()).map_err(|e| IpadicError::Lindera(e.to_string()))
}

/// Returns the directory of the built dictionary, building it if needed.
pub fn ensure_built(cache: &Path) -> Result<PathBuf, IpadicError> {
    let built = cache.join(BUILT);
    if built.join("metadata.json").exists() {
        return Ok(built);
    }
    fs::create_dir_all(cache).map_err(io(cache))?;
    let lock_path = cache.join(".ipadic.lock");
    let lock = fs::File::create(&lock_path).map_err(io(&lock_path))?;
    fs4::fs_std::FileExt::lock_exclusive(&lock).map_err(io(&lock_path))?;
    if built.join("metadata.json").exists() {
        return Ok(built);
    }
    let started = Instant::now();
    let sources = find_sources(cache)?;
    let utf8 = cache.join("ipadic-src-utf8");
    convert_sources(&sources, &utf8)?;
    let tmp = cache.join(format!("{BUILT}.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let metadata = Metadata::load(IPADIC_METADATA.as_bytes()).map_err(|e| IpadicError::Lindera(e.to_string()))?;
    DictionaryBuilder::new(metadata).build_dictionary(&utf8, &tmp).map_err(|e| IpadicError::Lindera(e.to_string()))?;
    fs::rename(&tmp, &built).map_err(io(&built))?;
    let _ = fs::remove_dir_all(&utf8);
    tracing::info!(dir = %built.display(), elapsed_ms = started.elapsed().as_millis() as u64, "built ipadic dictionary");
    Ok(built)
}

fn has_sources(dir: &Path) -> bool {
    dir.join("matrix.def").exists() && dir.join("char.def").exists() && dir.join("unk.def").exists()
}

fn find_sources(cache: &Path) -> Result<PathBuf, IpadicError> {
    if let Some(dir) = std::env::var_os("KOTAE_IPADIC_SRC").map(PathBuf::from) {
        if has_sources(&dir) {
            return Ok(dir);
        }
        return Err(IpadicError::NoSources(
            format!("KOTAE_IPADIC_SRC={} has no matrix.def/char.def/unk.def", dir.display()),
            cache.into(),
        ));
    }
    let extracted = cache.join("mecab-ipadic").join(DEB_SOURCES);
    for dir in [extracted.clone(), PathBuf::from("/").join(DEB_SOURCES)] {
        if has_sources(&dir) {
            return Ok(dir);
        }
    }
    fetch_debian_package(cache)?;
    if has_sources(&extracted) {
        Ok(extracted)
    } else {
        Err(IpadicError::NoSources(format!("{} missing after extraction", extracted.display()), cache.into()))
    }
}

/// `apt-get download mecab-ipadic` and `dpkg-deb -x` into the cache (no root needed).
fn fetch_debian_package(cache: &Path) -> Result<(), IpadicError> {
    let no_sources = |why: String| IpadicError::NoSources(why, cache.into());
    tracing::info!("fetching ipadic sources: apt-get download mecab-ipadic");
    let download = || {
        Command::new("apt-get")
            .args(["download", "-q", "mecab-ipadic"])
            .current_dir(cache)
            .output()
            .map_err(|e| no_sources(format!("apt-get: {e}")))
    };
    let mut out = download()?;
    // A fresh machine has no package lists yet; as root, fetch them once and try again.
    let is_root = rustix::process::geteuid().is_root();
    if !out.status.success() && is_root {
        eprintln!("kotae: package lists missing; running apt-get update once to fetch mecab-ipadic");
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        out = download()?;
    }
    if !out.status.success() {
        return Err(no_sources(format!("apt-get download failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    let deb = fs::read_dir(cache)
        .map_err(io(cache))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("mecab-ipadic_") && n.ends_with(".deb"))
        })
        .ok_or_else(|| no_sources("no mecab-ipadic .deb after apt-get download".into()))?;
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(cache.join("mecab-ipadic"))
        .status()
        .map_err(|e| no_sources(format!("dpkg-deb: {e}")))?;
    if !status.success() {
        return Err(no_sources(format!("dpkg-deb -x {} failed", deb.display())));
    }
    let _ = fs::remove_file(&deb);
    Ok(())
}

/// Copies the `*.csv` and `*.def` files to `out` as UTF-8 (Debian ships them as EUC-JP).
fn convert_sources(src: &Path, out: &Path) -> Result<(), IpadicError> {
    let _ = fs::remove_dir_all(out);
    fs::create_dir_all(out).map_err(io(out))?;
    for entry in fs::read_dir(src).map_err(io(src))? {
        let path = entry.map_err(io(src))?.path();
        let keep = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e == "csv" || e == "def");
        if !keep {
            continue;
        }
        let bytes = fs::read(&path).map_err(io(&path))?;
        let text = match std::str::from_utf8(&bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => encoding_rs::EUC_JP.decode(&bytes).0.into_owned(),
        };
        let target = out.join(path.file_name().unwrap_or_default());
        fs::write(&target, text).map_err(io(&target))?;
    }
    Ok(())
}
