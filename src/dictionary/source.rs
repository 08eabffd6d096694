//! The dictionary list format, parsed in one place: the loader ([`super::Dictionaries`]) and the
//! moderator console ([`super::edit`]) read every line through [`parse_line`], so a section flag
//! such as `[price | weak]` means the same to both.
//!
//! A line is blank (or only a comment after `#`), a section header `[name => label | flag …]`,
//! or an entry `term | flag …`. Flags are checked against [`SECTION_FLAGS`] and [`ENTRY_FLAGS`]
//! by [`Header::unknown_flags`] and [`EntryLine::unknown_flags`].
//!
//! Where the files come from is also here ([`read_sources`]): one directory, or a writable
//! directory whose files replace those of a directory of defaults beneath it.

use std::path::{Path, PathBuf};

use super::{ListKind, Problem};

/// Flags a section header may carry: `weak` (a generic clustering concept that gives way to a
/// more specific one), `shop` (a shop-wide concept) and `stream` (a concept of the stream
/// itself: shop-wide, its questions kept apart from the shop's others).
pub const SECTION_FLAGS: [&str; 3] = ["weak", "shop", "stream"];

/// Flags an entry may carry (see the module documentation of [`crate::dictionary`]).
pub const ENTRY_FLAGS: [&str; 6] = ["bounded", "tail", "end", "start", "whole", "inword"];

/// A section header as written: `[name => label | flag …]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// The section name, trimmed (`price`).
    pub name: &'a str,
    /// The label after `=>`, trimmed, unchecked.
    pub label: Option<&'a str>,
    /// The flags after `|`, trimmed, unchecked.
    pub flags: Vec<&'a str>,
}

impl Header<'_> {
    /// Flags that are not [`SECTION_FLAGS`].
    pub fn unknown_flags(&self) -> impl Iterator<Item = &str> {
        self.flags.iter().copied().filter(|f| !SECTION_FLAGS.contains(f))
    }

    /// Whether the header carries `flag`.
    pub fn has(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }
}

/// An entry as written: `term | flag …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryLine<'a> {
    /// The term, trimmed.
    pub term: &'a str,
    /// The flags after `|`, trimmed, unchecked.
    pub flags: Vec<&'a str>,
}

impl EntryLine<'_> {
    /// Flags that are not [`ENTRY_FLAGS`].
    pub fn unknown_flags(&self) -> impl Iterator<Item = &str> {
        self.flags.iter().copied().filter(|f| !ENTRY_FLAGS.contains(f))
    }
}

/// One line of a list file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    /// Empty, or a comment alone.
    Blank,
    /// A section header.
    Header(Header<'a>),
    /// A header that does not end with `]`.
    BrokenHeader,
    /// An entry of the current section.
    Entry(EntryLine<'a>),
}

/// A line without its comment, trimmed.
pub fn content(line: &str) -> &str {
    line.split_once('#').map_or(line, |(before, _)| before).trim()
}

fn split_flags(s: &str) -> (&str, Vec<&str>) {
    let mut parts = s.split('|');
    let head = parts.next().unwrap_or("");
    (head, parts.map(str::trim).collect())
}

/// Reads one line of a list file.
pub fn parse_line(raw: &str) -> Line<'_> {
    let line = content(raw);
    if line.is_empty() {
        return Line::Blank;
    }
    if let Some(rest) = line.strip_prefix('[') {
        let Some(inner) = rest.strip_suffix(']') else {
            return Line::BrokenHeader;
        };
        // Flags come last (`[x => spam | weak]`), so they are split off before the label.
        let (head, flags) = split_flags(inner);
        let (name, label) = match head.split_once("=>") {
            Some((n, l)) => (n.trim(), Some(l.trim())),
            None => (head.trim(), None),
        };
        return Line::Header(Header { name, label, flags });
    }
    let (term, flags) = split_flags(line);
    Line::Entry(EntryLine { term: term.trim(), flags })
}

/// The header of a line, if it is one.
pub fn header(raw: &str) -> Option<Header<'_>> {
    match parse_line(raw) {
        Line::Header(h) => Some(h),
        _ => None,
    }
}

/// The list name of a file: its stem (`abuse.txt` → `abuse`).
pub fn list_name(path: &Path) -> String {
    path.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string()
}

/// What a list means beyond being classifier features, by its name.
pub fn list_kind(list: &str) -> ListKind {
    match list {
        "allow" => ListKind::Allow,
        "synonyms" => ListKind::Synonym,
        "topics" => ListKind::Topic,
        _ => ListKind::Feature,
    }
}

/// The `*.txt` files of `dir`, sorted by name.
fn txt_files(dir: &Path) -> Result<Vec<PathBuf>, Problem> {
    let read = std::fs::read_dir(dir).map_err(|e| Problem {
        file: dir.into(),
        line: 0,
        message: format!("cannot read directory: {e}"),
    })?;
    let mut files: Vec<PathBuf> =
        read.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "txt") && p.is_file()).collect();
    files.sort();
    Ok(files)
}

fn read_text(path: &Path, problems: &mut Vec<Problem>) -> Option<String> {
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(e) => {
                problems.push(Problem { file: path.into(), line: 0, message: format!("not UTF-8 ({e})") });
                None
            }
        },
        Err(e) => {
            problems.push(Problem { file: path.into(), line: 0, message: format!("cannot read: {e}") });
            None
        }
    }
}

/// The list files as `(path, text)`, sorted by name: those of `dir`, or, with `defaults`, those
/// of `defaults` replaced by the files of the same name in `dir` (plus the lists only `dir`
/// has). Every path is named inside `dir`, where an edit of it is written; `dir` need not exist
/// when `defaults` is given. Every unreadable file is reported.
pub fn read_sources(dir: &Path, defaults: Option<&Path>) -> Result<Vec<(PathBuf, String)>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    if let Some(base) = defaults {
        match txt_files(base) {
            Ok(f) => files.extend(f.into_iter().map(|p| (file_name(&p), p))),
            Err(p) => problems.push(p),
        }
        if dir.is_dir() {
            match txt_files(dir) {
                Ok(f) => {
                    for p in f {
                        let name = file_name(&p);
                        files.retain(|(n, _)| *n != name);
                        files.push((name, p));
                    }
                }
                Err(p) => problems.push(p),
            }
        }
    } else {
        match txt_files(dir) {
            Ok(f) => files.extend(f.into_iter().map(|p| (file_name(&p), p))),
            Err(p) => problems.push(p),
        }
    }
    files.sort();
    let mut sources = Vec::new();
    for (name, path) in files {
        if let Some(text) = read_text(&path, &mut problems) {
            sources.push((dir.join(name), text));
        }
    }
    if sources.is_empty() && problems.is_empty() {
        problems.push(Problem { file: dir.into(), line: 0, message: "no *.txt dictionary files".into() });
    }
    if problems.is_empty() { Ok(sources) } else { Err(problems) }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_one_way() {
        assert_eq!(parse_line("  # only a comment"), Line::Blank);
        assert_eq!(
            parse_line("[price | weak] # generic"),
            Line::Header(Header { name: "price", label: None, flags: vec!["weak"] })
        );
        assert_eq!(
            parse_line("[line_id => spam|shop]"),
            Line::Header(Header { name: "line_id", label: Some("spam"), flags: vec!["shop"] })
        );
        assert_eq!(parse_line("[open"), Line::BrokenHeader);
        assert_eq!(
            parse_line("しね | bounded|end"),
            Line::Entry(EntryLine { term: "しね", flags: vec!["bounded", "end"] })
        );
        let h = header("[x | weak | loud]").unwrap();
        assert!(h.has("weak"));
        assert_eq!(h.unknown_flags().collect::<Vec<_>>(), ["loud"]);
    }

    #[test]
    fn a_writable_directory_overlays_the_defaults() {
        let base = tempfile::tempdir().unwrap();
        let edits = tempfile::tempdir().unwrap();
        std::fs::write(base.path().join("abuse.txt"), "[a]\nx\n").unwrap();
        std::fs::write(base.path().join("spam.txt"), "[s]\ny\n").unwrap();
        std::fs::write(edits.path().join("spam.txt"), "[s]\ny\nz\n").unwrap();
        let sources = read_sources(edits.path(), Some(base.path())).unwrap();
        let got: Vec<(PathBuf, &str)> = sources.iter().map(|(p, t)| (p.clone(), t.as_str())).collect();
        assert_eq!(
            got,
            [(edits.path().join("abuse.txt"), "[a]\nx\n"), (edits.path().join("spam.txt"), "[s]\ny\nz\n")],
            "paths are named where edits are written; the edited file wins"
        );
        let missing = edits.path().join("not-yet");
        assert_eq!(
            read_sources(&missing, Some(base.path())).unwrap().len(),
            2,
            "the writable directory may not exist yet"
        );
        assert!(read_sources(&missing, None).is_err());
    }
}
