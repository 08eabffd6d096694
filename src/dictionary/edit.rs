//! Moderator edits of the dictionary files, as text: listing a file's sections and terms as
//! written, and adding or removing one term of one section. The console compiles the edited
//! sources with every other file before anything is written (see `server::moderator`).
//!
//! This is the one parser of an edit: what a moderator sends (`{"op", "list", "section",
//! "term", "flags"}`) is checked here, and the edited text is produced line by line so every
//! other line, comment and blank stays as it was.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::pipeline::normalize::{NormalizeConfig, Normalizer};

pub use super::source::list_name;
use super::source::{self, ENTRY_FLAGS, Line, content, header};

/// Longest term a moderator may add, in characters.
pub const MAX_TERM_CHARS: usize = 64;

/// Add or remove one term of one section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    /// `add` or `remove`.
    pub op: String,
    /// The list: a file name without `.txt` (`abuse`, `spam`, …).
    pub list: String,
    /// The section's name, as in its header (`insult` for `[insult]`).
    pub section: String,
    /// The term to add, or to remove (matched as written, else by its normalized key).
    /// Trimmed; at most [`MAX_TERM_CHARS`] characters, without `#`, `|` or line breaks.
    pub term: String,
    /// Entry flags for `add`: `bounded`, `end`, `start`, `whole`, `inword`.
    #[serde(default)]
    pub flags: Vec<String>,
    /// The stream whose last messages the dry run replays.
    #[serde(default)]
    pub stream: Option<String>,
    /// How many of them (default 200).
    #[serde(default)]
    pub last: Option<usize>,
}

/// Why an edit cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// The edit itself is wrong (empty or malformed term, unknown flag or op).
    Invalid(String),
    /// No such list, section or term.
    NotFound(String),
}

impl std::fmt::Display for EditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EditError::Invalid(m) | EditError::NotFound(m) => f.write_str(m),
        }
    }
}

/// A term as written in a dictionary file.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct TermLine {
    /// The term as written, before normalization.
    pub term: String,
    /// Its entry flags after `|` (`bounded`, `end`, `start`, `whole`, `inword`).
    pub flags: Vec<String>,
    /// 1-based line in the file.
    pub line: usize,
}

/// A section as written.
#[derive(Debug, Serialize)]
pub struct SectionView {
    /// The section's name, from its header.
    pub name: String,
    /// The rule id its matches carry in verdicts: `ja.<list>.<section>`.
    pub rule: String,
    /// The label after `=>` as written (`[line_id => spam]`), unchecked; `None` when the
    /// header declares none.
    pub declared: Option<String>,
    /// Section flags as written (`weak`, `shop`).
    pub flags: Vec<String>,
    /// 1-based line of the header.
    pub line: usize,
    /// Its terms in file order.
    pub terms: Vec<TermLine>,
}

/// A list (file) as written.
#[derive(Debug, Serialize)]
pub struct ListView {
    /// The list's name: the file name without `.txt` (what an [`Edit`] names).
    pub list: String,
    /// The file name alone, without its directory.
    pub file: String,
    /// Its sections in file order; terms before the first header are not shown.
    pub sections: Vec<SectionView>,
}

/// A file's sections and terms as written.
pub fn view(path: &Path, text: &str) -> ListView {
    let list = list_name(path);
    let mut sections: Vec<SectionView> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        match source::parse_line(raw) {
            Line::Header(h) => sections.push(SectionView {
                name: h.name.to_string(),
                rule: format!("ja.{list}.{}", h.name),
                declared: h.label.map(str::to_string),
                flags: h.flags.iter().map(|f| f.to_string()).collect(),
                line: i + 1,
                terms: Vec::new(),
            }),
            Line::Entry(e) => {
                if let Some(s) = sections.last_mut() {
                    let flags = e.flags.iter().map(|f| f.to_string()).collect();
                    s.terms.push(TermLine { term: e.term.to_string(), flags, line: i + 1 });
                }
            }
            Line::Blank | Line::BrokenHeader => {}
        }
    }
    ListView { file: path.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default(), list, sections }
}

/// Checks the term and flags of an edit.
pub fn check(edit: &Edit) -> Result<(), EditError> {
    let term = edit.term.trim();
    if term.is_empty() {
        return Err(EditError::Invalid("the term is empty".into()));
    }
    if term.chars().count() > MAX_TERM_CHARS {
        return Err(EditError::Invalid(format!("terms are at most {MAX_TERM_CHARS} characters")));
    }
    if term.contains(['#', '|', '\n', '\r']) || term.starts_with('[') || term.chars().any(char::is_control) {
        return Err(EditError::Invalid("a term cannot contain '#', '|', line breaks or start with '['".into()));
    }
    for f in &edit.flags {
        if !ENTRY_FLAGS.contains(&f.as_str()) {
            return Err(EditError::Invalid(format!("unknown flag '{f}' ({})", ENTRY_FLAGS.join(", "))));
        }
    }
    if !matches!(edit.op.as_str(), "add" | "remove") {
        return Err(EditError::Invalid(format!("unknown op '{}'; use add or remove", edit.op)));
    }
    Ok(())
}

/// The sources with `edit` applied, and the index of the edited file. Nothing else changes:
/// an added term goes after the section's last term, a removed one takes its line with it.
pub fn apply(
    mut sources: Vec<(PathBuf, String)>,
    edit: &Edit,
    normalize: &NormalizeConfig,
) -> Result<(Vec<(PathBuf, String)>, usize), EditError> {
    check(edit)?;
    let term = edit.term.trim();
    let Some(i) = sources.iter().position(|(p, _)| list_name(p) == edit.list) else {
        return Err(EditError::NotFound(format!("no list '{}'", edit.list)));
    };
    let lines: Vec<&str> = sources[i].1.lines().collect();
    let Some(start) = lines.iter().position(|l| header(l).is_some_and(|h| h.name == edit.section)) else {
        return Err(EditError::NotFound(format!("no section [{}] in {}.txt", edit.section, edit.list)));
    };
    let end = lines[start + 1..].iter().position(|l| header(l).is_some()).map_or(lines.len(), |k| start + 1 + k);
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    if edit.op == "add" {
        let at = (start + 1..end).rev().find(|&k| !content(lines[k]).is_empty()).map_or(start + 1, |k| k + 1);
        let mut line = term.to_string();
        for f in &edit.flags {
            line.push_str(" | ");
            line.push_str(f);
        }
        out.insert(at, line);
    } else {
        let mut normalizer = Normalizer::new(normalize);
        let key = normalizer.key_of(term);
        let term_of = |l: &str| match source::parse_line(l) {
            Line::Entry(e) => e.term.to_string(),
            _ => String::new(),
        };
        let found = (start + 1..end).find(|&k| term_of(lines[k]) == term).or_else(|| {
            (start + 1..end).find(|&k| !term_of(lines[k]).is_empty() && normalizer.key_of(&term_of(lines[k])) == key)
        });
        let Some(k) = found else {
            return Err(EditError::NotFound(format!("'{term}' is not in [{}] of {}.txt", edit.section, edit.list)));
        };
        out.remove(k);
    }
    let mut text = out.join("\n");
    text.push('\n');
    sources[i].1 = text;
    Ok((sources, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_list_sections_and_terms_with_flags() {
        let v = view(Path::new("d/abuse.txt"), "# c\n[die => abuse]\nしね | bounded\n\n[insult]\nバカ # note\n");
        assert_eq!(v.list, "abuse");
        assert_eq!(v.sections.len(), 2);
        assert_eq!(v.sections[0].declared.as_deref(), Some("abuse"));
        assert_eq!(v.sections[0].terms[0].flags, ["bounded"]);
        assert_eq!((v.sections[1].terms[0].term.as_str(), v.sections[1].terms[0].line), ("バカ", 6));
    }

    fn edit(op: &str, term: &str) -> Edit {
        Edit {
            op: op.into(),
            list: "abuse".into(),
            section: "insult".into(),
            term: term.into(),
            flags: Vec::new(),
            stream: None,
            last: None,
        }
    }

    #[test]
    fn an_edit_changes_one_line_and_keeps_the_rest() {
        let sources = vec![(PathBuf::from("d/abuse.txt"), "# c\n[insult]\nバカ # note\n\n[other]\nx\n".to_string())];
        let n = NormalizeConfig::default();
        let (added, i) = apply(sources.clone(), &edit("add", "アホ"), &n).unwrap();
        assert_eq!(added[i].1, "# c\n[insult]\nバカ # note\nアホ\n\n[other]\nx\n");
        let (removed, _) = apply(added, &edit("remove", "ｱﾎ"), &n).unwrap();
        assert_eq!(removed[0].1, sources[0].1, "removal matches the normalized term");
        assert!(matches!(apply(sources.clone(), &edit("remove", "ない"), &n), Err(EditError::NotFound(_))));
        assert!(matches!(apply(sources.clone(), &edit("add", "a#b"), &n), Err(EditError::Invalid(_))));
        assert!(matches!(apply(sources, &edit("explode", "a"), &n), Err(EditError::Invalid(_))));
    }

    #[test]
    fn every_section_of_the_default_lists_is_editable() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dictionaries/ja");
        let sources = source::read_sources(&dir, None).unwrap();
        let n = NormalizeConfig::default();
        let mut sections = 0;
        for (path, text) in &sources {
            for s in view(path, text).sections {
                let e = Edit { list: list_name(path), section: s.name.clone(), ..edit("add", "ぷらいすてすと") };
                assert!(apply(sources.clone(), &e, &n).is_ok(), "[{}] of {}", s.name, path.display());
                sections += 1;
            }
        }
        assert!(sections > 100, "{sections} sections");
    }
}
