//! Embeds the default dictionaries and model (`dictionaries/ja`) in the binary, so `kotae` runs
//! from any directory with no flags (see `src/dictionary/builtin.rs`).

use std::fmt::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    for entry in read.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let dir = root.join("dictionaries/ja");
    // A directory here: Cargo reruns this script when anything under it changes.
    println!("cargo:rerun-if-changed=dictionaries/ja");
    let mut all = Vec::new();
    files(&dir, &mut all);
    all.sort();
    let mut code = String::from("/// The default dictionary files: (path inside `dictionaries/ja`, contents).\n");
    code.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for path in &all {
        let Ok(rel) = path.strip_prefix(&dir) else { continue };
        let rel = rel.to_string_lossy().replace('\\', "/");
        let _ = writeln!(code, "    ({rel:?}, include_bytes!({:?})),", path.display().to_string());
    }
    code.push_str("];\n");
    // The version of the built-in files (the name of their cache directory), hashed here once
    // rather than at every start: the files are megabytes.
    let mut h = Sha256::new();
    for path in &all {
        let Ok(rel) = path.strip_prefix(&dir) else { continue };
        let rel = rel.to_string_lossy().replace('\\', "/");
        let bytes = std::fs::read(path).expect("read a dictionary file");
        h.update((rel.len() as u64).to_le_bytes());
        h.update(rel.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    let version: String = h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    let _ =
        writeln!(code, "/// A short hash of every file's name and contents.\npub static VERSION: &str = {version:?};");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("builtin_dictionaries.rs");
    std::fs::write(out, code).expect("write builtin_dictionaries.rs");
}
