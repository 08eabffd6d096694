//! Obtaining the IPADIC system dictionary without internet access.
//!
//! Lindera's `embed-ipadic` feature downloads an archive at build time, which fails offline. Instead
//! kotae builds the dictionary at first use from the original IPADIC sources that Debian ships in
//! its `mecab-ipadic` package (EUC-JP CSV and `.def` files), with Lindera's own builder and the
//! metadata of the `lindera-ipadic` 6.2.0 crate, and caches the result; later starts only load it
//! ([`load`]).
//!
//! Where the sources come from, in order:
//! 1. `KOTAE_IPADIC_SRC` (a directory of IPADIC `*.csv` and `*.def` files, EUC-JP or UTF-8);
//! 2. a previous extraction under the cache directory;
//! 3. `/usr/share/mecab/dic/ipadic` (the `mecab-ipadic` package installed system-wide);
//! 4. `apt-get download mecab-ipadic` + `dpkg-deb -x` into the cache directory (no root needed).
//!
//! Concurrent processes (parallel tests) serialize on a lock file; the built dictionary appears
//! atomically by directory rename.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use lindera::dictionary::{Dictionary, DictionaryBuilder, Metadata};
use lindera_dictionary::dictionary::connection_cost_matrix::ConnectionCostMatrix;
use lindera_dictionary::dictionary::prefix_dictionary::PrefixDictionary;
use lindera_dictionary::loader::character_definition::CharacterDefinitionLoader;
use lindera_dictionary::loader::metadata::MetadataLoader;
use lindera_dictionary::loader::unknown_dictionary::UnknownDictionaryLoader;

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

/// Loads the IPADIC dictionary from `cache`, building it first if it is not there yet. A
/// process loads a built dictionary once; later calls share its tables.
///
/// The tables every segmentation walks at random (the trie, the values it points to and the
/// connection costs, 14 MB) are copied into memory the kernel may back with 2 MiB pages instead
/// of being read through the file's 4 KiB pages: a message's lookups then miss the TLB far less.
/// The word details, read once per distinct word, stay mapped from the file.
pub fn load(cache: &Path) -> Result<Dictionary, IpadicError> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Dictionary>>> = OnceLock::new();
    let built = ensure_built(cache)?;
    let mut loaded = LOADED.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(dictionary) = loaded.get(&built) {
        return Ok(dictionary.clone());
    }
    let dictionary = load_built(&built)?;
    loaded.insert(built, dictionary.clone());
    Ok(dictionary)
}

fn load_built(built: &Path) -> Result<Dictionary, IpadicError> {
    let lindera = |e: lindera_dictionary::error::LinderaError| IpadicError::Lindera(e.to_string());
    // The format first: the other files are headerless arrays a stale dictionary would fill
    // with garbage.
    let metadata = MetadataLoader::load(built).map_err(lindera)?;
    metadata.validate_format_version().map_err(lindera)?;
    let read = |name: &str| {
        let path = built.join(name);
        fs::read(&path).map_err(io(&path))
    };
    let (trie, values_index, values, matrix) =
        (read("dict.trie")?, read("dict.valsidx")?, read("dict.vals")?, read("matrix.mtx")?);
    let [trie, values_index, values, matrix] = on_huge_pages([&trie, &values_index, &values, &matrix])?;
    let prefix_dictionary = PrefixDictionary::load(
        trie,
        values_index,
        values,
        map_file(&built.join("dict.wordsidx"))?,
        map_file(&built.join("dict.words"))?,
    )
    .map_err(lindera)?;
    Ok(Dictionary {
        prefix_dictionary: Arc::new(prefix_dictionary),
        connection_cost_matrix: Arc::new(ConnectionCostMatrix::load(matrix).map_err(lindera)?),
        character_definition: Arc::new(CharacterDefinitionLoader::load(built).map_err(lindera)?),
        unknown_dictionary: Arc::new(UnknownDictionaryLoader::load(built).map_err(lindera)?),
        metadata: Arc::new(metadata),
    })
}

/// A read-only mapping of `path`, kept for the life of the process.
fn map_file(path: &Path) -> Result<&'static [u8], IpadicError> {
    let file = fs::File::open(path).map_err(io(path))?;
    // SAFETY: the built dictionary's files are written once, into a directory renamed into
    // place, and never changed after; Lindera maps them the same way.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io(path))?;
    Ok(Box::leak(Box::new(map)))
}

/// Copies `parts` into one anonymous mapping starting on a 2 MiB boundary, advised for huge
/// pages (ignored where the kernel has none to give), read-only and kept for the life of the
/// process; each part starts on a cache line.
fn on_huge_pages<const N: usize>(parts: [&[u8]; N]) -> Result<[&'static [u8]; N], IpadicError> {
    const HUGE_PAGE: usize = 2 << 20;
    let anon = |e| IpadicError::Io { path: "anonymous memory".into(), source: e };
    let total: usize = parts.iter().map(|p| p.len().next_multiple_of(64)).sum();
    let mut map = memmap2::MmapMut::map_anon(total + HUGE_PAGE).map_err(anon)?;
    let start = (HUGE_PAGE - map.as_ptr() as usize % HUGE_PAGE) % HUGE_PAGE;
    let _ = map.advise(memmap2::Advice::HugePage);
    let mut spans = [(0, 0); N];
    let mut at = start;
    for (span, part) in spans.iter_mut().zip(parts) {
        map[at..at + part.len()].copy_from_slice(part);
        *span = (at, part.len());
        at += part.len().next_multiple_of(64);
    }
    let map: &'static memmap2::Mmap = Box::leak(Box::new(map.make_read_only().map_err(anon)?));
    Ok(spans.map(|(at, len)| &map[at..at + len]))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> PathBuf {
        crate::pipeline::PipelineConfig::default().tokenize.cache_dir
    }

    #[test]
    fn a_process_loads_a_dictionary_once() {
        let (a, b) = (load(&cache()).unwrap(), load(&cache()).unwrap());
        assert!(Arc::ptr_eq(&a.prefix_dictionary, &b.prefix_dictionary));
        assert!(Arc::ptr_eq(&a.connection_cost_matrix, &b.connection_cost_matrix));
    }

    #[test]
    fn the_copied_tables_segment_as_the_mapped_files_do() {
        use lindera::dictionary::load_dictionary;
        use lindera::mode::Mode;
        use lindera::segmenter::Segmenter;
        let built = ensure_built(&cache()).unwrap();
        let mapped = load_dictionary(&built.to_string_lossy()).unwrap();
        let copied = load_built(&built).unwrap();
        let lines = [
            "これって敏感肌でも使えますか",
            "Mの在庫まだある?",
            "後ろ見せて",
            "ポチった!黒M1で",
            "つぎのはいしんいつですか",
            "ｗｗｗ88888すごーい",
            "リネンシャツワンピースの着丈は何センチですか？",
        ];
        let segment = |d: &Dictionary, line: &str| -> Vec<(String, Vec<String>)> {
            let segmenter = Segmenter::new(Mode::Normal, d.clone(), None);
            segmenter
                .segment(std::borrow::Cow::Borrowed(line))
                .unwrap()
                .into_iter()
                .map(|mut t| (t.surface.to_string(), t.details().iter().map(|s| s.to_string()).collect()))
                .collect()
        };
        for line in lines {
            assert_eq!(segment(&copied, line), segment(&mapped, line), "{line}");
        }
    }

    #[test]
    fn parts_start_on_a_huge_page_and_on_cache_lines() {
        let (a, b) = (vec![1u8; 100], vec![2u8; 3]);
        let [x, y] = on_huge_pages([&a, &b]).unwrap();
        assert_eq!((x, y), (&a[..], &b[..]));
        assert_eq!(x.as_ptr() as usize % (2 << 20), 0);
        assert_eq!(y.as_ptr() as usize % 64, 0);
    }
}
