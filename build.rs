//! Embeds the default dictionaries and model (`dictionaries/ja`) in the binary, so `kotae` runs
//! from any directory with no flags (see `src/dictionary/builtin.rs`).

use std::fmt::Write;
use std::path::{Path, PathBuf};

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
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("builtin_dictionaries.rs");
    std::fs::write(out, code).expect("write builtin_dictionaries.rs");
}
