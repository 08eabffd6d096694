//! Dictionary files: the parser and compiler every list goes through (sections, declared labels,
//! flags, normalization of terms, duplicates), over up to three files split at NUL bytes.
#![no_main]

use std::path::{Path, PathBuf};

use kotae::dictionary::Dictionaries;
use kotae::pipeline::normalize::NormalizeConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let names = ["abuse.txt", "allow.txt", "synonyms.txt"];
    let sources: Vec<(PathBuf, String)> =
        text.split('\0').zip(names).map(|(t, n)| (PathBuf::from("fuzz").join(n), t.to_string())).collect();
    match Dictionaries::compile(Path::new("fuzz"), &sources, &NormalizeConfig::default()) {
        Ok(d) => {
            let sizes = d.list_sizes();
            assert_eq!(sizes.values().sum::<usize>(), d.len(), "every entry belongs to one list");
            let mut hits = Vec::new();
            for (_, t) in &sources {
                d.find(t, &mut hits);
            }
        }
        Err(e) => assert!(!e.0.is_empty(), "a refusal names at least one problem"),
    }
});
