//! Moderator dictionary edits: the JSON body of a dry run or apply, checked and applied to a
//! list's text (the part after the first NUL byte), then compiled as the console does.
#![no_main]

use std::path::{Path, PathBuf};

use kotae::dictionary::Dictionaries;
use kotae::dictionary::edit::{Edit, apply, view};
use kotae::pipeline::normalize::NormalizeConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (body, list) = text.split_once('\0').unwrap_or((text, "[insult => abuse]\nバカ\nアホ | bounded\n"));
    let Ok(edit) = serde_json::from_str::<Edit>(body) else { return };
    let path = PathBuf::from("fuzz/abuse.txt");
    let _ = view(&path, list);
    let normalize = NormalizeConfig::default();
    let before = vec![(path, list.to_string())];
    if let Ok((after, i)) = apply(before.clone(), &edit, &normalize) {
        let (old, new) = (before[i].1.lines().count(), after[i].1.lines().count());
        match edit.op.as_str() {
            "add" => assert_eq!(new, old + 1, "an add is one more line"),
            _ => assert_eq!(new + 1, old, "a removal is one line less"),
        }
        let _ = Dictionaries::compile(Path::new("fuzz"), &after, &normalize);
    }
});
