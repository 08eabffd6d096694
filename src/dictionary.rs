//! Keyword dictionaries: plain, commented, reviewable files compiled into one automaton.
//!
//! A dictionary directory holds `*.txt` lists (see `dictionaries/README.md`). Each list is split
//! into `[section]`s; a section is a rule with the id `ja.<list>.<section>`, and every entry under
//! it is a term that fires the rule. Terms go through the same [`Normalizer`] key view as messages,
//! so `ﾗｲﾝ`, `ライン` and `ら い ん` are one entry. Entry flags follow a `|`:
//!
//! * `bounded` — the neighbours of the match must not be letters of the same script as its edge
//!   (stops `しね` inside `ですしね` and `line` inside `online`);
//! * `tail` — as `bounded`, on the match's right edge only: what follows must not go on in the
//!   same script (`.com` ends `example.com見て`, not a word of `comfort` or `welcome`, since the key
//!   view has no dot);
//! * `end` — the match must end the message (only symbols, emoji or laughter after it);
//! * `start` — the match must start the message;
//! * `whole` — the match must be the whole message, symbols aside;
//! * `inword` — the match may start inside a word. Without it, an entry written in hiragana
//!   must start where a word of the message starts (`いくら` is not in `わからないくらい`): the
//!   classifier checks this against the message's tokens ([`Hit::word_start`]). Endings meant to
//!   attach to any word (`る? | end`) carry the flag.
//!
//! A section header may name the label its rule supports, `[line_id => spam]`: such a rule
//! always counts toward that label with the prior [`DEFAULT_RULE_WEIGHT`], plus whatever residual
//! the model learned for it, so a moderator's new section has an effect at once. Entries of the `allow` list suppress
//! every other match they contain (`イエロー` hides `エロ`), but for the concepts of `synonyms` and
//! `topics` (`イエロー` still names yellow). The `synonyms` and `topics` lists
//! name concepts for clustering and urgency.
//!
//! A `| weak` section flag (`[price | weak]`) marks a generic clustering concept that gives way
//! to any more specific concept in the same question; a `| shop` flag (`[shipping | shop]`) a
//! shop-wide one: questions about it belong to the shop, whatever product they name.
//!
//! Loading reports every problem with its file and line; the caller keeps the previous
//! dictionaries when loading fails.

pub mod builtin;
pub mod edit;
pub mod source;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use daachorse::CharwiseDoubleArrayAhoCorasick;

use crate::label::Label;
use crate::pipeline::normalize::{Mapped, NormalizeConfig, Normalizer};
use source::Line;

/// Gives the kana reading of a dictionary term, when known (the tokenizer's dictionary).
pub type Readings<'a> = &'a mut dyn FnMut(&str) -> Option<String>;

fn is_kanji(c: char) -> bool {
    matches!(c, '一'..='鿿' | '々')
}

/// Prior weight toward its declared label that a rule always has; the model adds a learned residual.
pub const DEFAULT_RULE_WEIGHT: f32 = 4.0;

/// What a list means to the pipeline beyond being classifier features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Ordinary feature list.
    Feature,
    /// Matches of this list hide the matches of other lists inside them.
    Allow,
    /// Concept names for question clustering.
    Synonym,
    /// Purchase-blocking topics for urgency (also clustering concepts).
    Topic,
}

/// One rule: a section of a list.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `ja.<list>.<section>` (shared: verdict reasons carry it without copying).
    pub id: std::sync::Arc<str>,
    /// The section name alone (the concept name for synonyms and topics).
    pub section: String,
    /// What its list is to the pipeline, from the list's name (`allow`, `synonyms`, `topics`,
    /// else a feature list).
    pub kind: ListKind,
    /// Label the header declares (`[x => spam]`).
    pub declared: Option<Label>,
    /// A generic concept (`[price | weak]`): for clustering it gives way to any more specific
    /// concept in the same question (送料いくら is about shipping, not price).
    pub weak: bool,
    /// A shop-wide concept (`[shipping | shop]`): a question about it belongs to the shop, not to
    /// the product it names or the one on screen (送料, 支払い, クーポン, 配送日).
    pub shop: bool,
    /// A concept of the stream itself (`[streamaudio | stream]`: its sound, picture, schedule,
    /// what it shows today): shop-wide too, but a question about it never shares an item with
    /// the shop's other questions (音小さい？ is not answered with the payment methods).
    pub stream: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    bounded: bool,
    tail: bool,
    end: bool,
    start: bool,
    whole: bool,
    inword: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    rule: u16,
    flags: Flags,
    /// Written in hiragana and not `inword`: must start where a word starts.
    word_start: bool,
}

/// A match of a dictionary entry in a message's key view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Index into [`Dictionaries::rules`].
    pub rule: u16,
    /// Byte range in the key view.
    pub start: u32,
    /// End of that range (exclusive).
    pub end: u32,
    /// The entry is written in hiragana and not flagged `inword`: it counts only where a word of
    /// the message starts, which the tokens (not the key view) tell.
    pub word_start: bool,
}

/// One problem found while loading, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The list file, or the dictionary directory for a problem of the whole set.
    pub file: PathBuf,
    /// 1-based line in `file`; 0 when the problem is not on one line.
    pub line: usize,
    /// What is wrong, lowercase (`section [insult] appears twice`).
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// Dictionary loading failed; every problem found is listed.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in dictionaries:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct DictionaryError(pub Vec<Problem>);

/// The list of a rule id (`ja.abuse.insult` → `abuse`).
fn list_of(rule: &str) -> &str {
    let rest = rule.split_once('.').map_or(rule, |(_, r)| r);
    rest.split_once('.').map_or(rest, |(l, _)| l)
}

/// Lists that would lose most of their entries going from `before` to `after`, described
/// (`abuse.txt: 120 → 3 entries`). A list that disappears loses all of them.
pub fn shrunk_lists(
    before: &std::collections::BTreeMap<String, usize>,
    after: &std::collections::BTreeMap<String, usize>,
) -> Vec<String> {
    before
        .iter()
        .filter_map(|(list, &n)| {
            let m = after.get(list).copied().unwrap_or(0);
            (n > 0 && m * 2 < n).then(|| format!("{list}.txt: {n} → {m} entries"))
        })
        .collect()
}

/// The end of a [`Dictionaries::same_term`] chain.
const NO_ENTRY: u32 = u32::MAX;

/// Compiled keyword dictionaries. Immutable; swapped whole on reload.
pub struct Dictionaries {
    rules: Vec<Rule>,
    entries: Vec<Entry>,
    /// Normalized terms, parallel to `entries` (for listing and dry runs).
    terms: Vec<String>,
    /// Each distinct term once, valued with its first entry; [`Dictionaries::same_term`] chains
    /// the entries (of other rules) that share it, in file order.
    automaton: CharwiseDoubleArrayAhoCorasick<u32>,
    same_term: Vec<u32>,
    source: PathBuf,
}

impl fmt::Debug for Dictionaries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dictionaries")
            .field("source", &self.source)
            .field("rules", &self.rules.len())
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl Dictionaries {
    /// Loads every `*.txt` file of `dir` (sorted by name).
    pub fn load(dir: &Path, normalize: &NormalizeConfig) -> Result<Self, DictionaryError> {
        Self::load_with(dir, normalize, None)
    }

    /// Like [`Dictionaries::load`], adding the kana reading of every concept and topic entry
    /// written in kanji (see [`Dictionaries::compile_with`]).
    pub fn load_with(
        dir: &Path,
        normalize: &NormalizeConfig,
        readings: Option<Readings<'_>>,
    ) -> Result<Self, DictionaryError> {
        Self::load_layered(dir, None, normalize, readings)
    }

    /// Like [`Dictionaries::load_with`]; with `defaults`, the lists of `defaults` with those of
    /// `dir` in their place (see [`source::read_sources`]).
    pub fn load_layered(
        dir: &Path,
        defaults: Option<&Path>,
        normalize: &NormalizeConfig,
        readings: Option<Readings<'_>>,
    ) -> Result<Self, DictionaryError> {
        let sources = source::read_sources(dir, defaults).map_err(DictionaryError)?;
        Self::compile_with(dir, &sources, normalize, readings)
    }

    /// Entries per list (file stem), as compiled.
    pub fn list_sizes(&self) -> std::collections::BTreeMap<String, usize> {
        let mut sizes = std::collections::BTreeMap::new();
        for rule in &self.rules {
            sizes.entry(list_of(&rule.id).to_string()).or_insert(0);
        }
        for e in &self.entries {
            if let Some(rule) = self.rules.get(usize::from(e.rule)) {
                *sizes.entry(list_of(&rule.id).to_string()).or_insert(0) += 1;
            }
        }
        sizes
    }

    /// Compiles dictionaries from in-memory `(path, text)` sources (used for dry runs of edits).
    pub fn compile(
        dir: &Path,
        sources: &[(PathBuf, String)],
        normalize: &NormalizeConfig,
    ) -> Result<Self, DictionaryError> {
        Self::compile_with(dir, sources, normalize, None)
    }

    /// Like [`Dictionaries::compile`]; with `readings`, every `synonyms` and `topics` entry
    /// written with kanji also matches its kana reading of three kana or more (送料 also
    /// matches そうりょう, 後払い あとばらい), as viewers type in kana and in romaji.
    pub fn compile_with(
        dir: &Path,
        sources: &[(PathBuf, String)],
        normalize: &NormalizeConfig,
        mut readings: Option<Readings<'_>>,
    ) -> Result<Self, DictionaryError> {
        let mut normalizer = Normalizer::new(normalize);
        let mut rules: Vec<Rule> = Vec::new();
        let mut rule_index: HashMap<String, u16> = HashMap::new();
        let mut entries: Vec<Entry> = Vec::new();
        let mut terms = Vec::new();
        let mut seen: HashMap<(u16, String), (PathBuf, usize)> = HashMap::new();
        // Readings added for kanji entries, by index in `entries`.
        let mut generated: HashMap<(u16, String), usize> = HashMap::new();
        let mut problems = Vec::new();

        for (path, text) in sources {
            let list = source::list_name(path);
            let kind = source::list_kind(&list);
            let mut current: Option<u16> = None;
            for (n, raw) in text.lines().enumerate() {
                let line_no = n + 1;
                let problem = |message: String| Problem { file: path.clone(), line: line_no, message };
                let entry = match source::parse_line(raw) {
                    Line::Blank => continue,
                    Line::BrokenHeader => {
                        problems.push(problem("section header must end with ']'".into()));
                        continue;
                    }
                    Line::Header(header) => {
                        let unknown: Vec<&str> = header.unknown_flags().collect();
                        if !unknown.is_empty() {
                            for other in unknown {
                                problems.push(problem(format!(
                                    "unknown section flag '{other}' ({})",
                                    source::SECTION_FLAGS.join(", ")
                                )));
                            }
                            continue;
                        }
                        let (name, declared) = match header.label {
                            Some(label) => match label.parse::<Label>() {
                                Ok(l) if l != Label::Other => (header.name, Some(l)),
                                _ => {
                                    problems.push(problem(format!(
                                        "unknown label '{label}' (question, purchase_intent, spam, abuse)"
                                    )));
                                    continue;
                                }
                            },
                            None => (header.name, None),
                        };
                        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                            problems
                                .push(problem(format!("section name '{name}' must be ASCII letters, digits or '_'")));
                            continue;
                        }
                        let id = format!("ja.{list}.{name}");
                        if rule_index.contains_key(&id) {
                            problems.push(problem(format!("section [{name}] appears twice")));
                            current = None;
                            continue;
                        }
                        let idx = rules.len() as u16;
                        let (weak, stream) = (header.has("weak"), header.has("stream"));
                        let shop = stream || header.has("shop");
                        rules.push(Rule {
                            id: id.as_str().into(),
                            section: name.to_string(),
                            kind,
                            declared,
                            weak,
                            shop,
                            stream,
                        });
                        rule_index.insert(id, idx);
                        current = Some(idx);
                        continue;
                    }
                    Line::Entry(entry) => entry,
                };
                let Some(rule) = current else {
                    problems.push(problem("entry before any [section] header".into()));
                    continue;
                };
                let term = entry.term;
                let unknown: Vec<&str> = entry.unknown_flags().collect();
                if !unknown.is_empty() {
                    for other in unknown {
                        problems.push(problem(format!("unknown flag '{other}' ({})", source::ENTRY_FLAGS.join(", "))));
                    }
                    continue;
                }
                let flags = Flags {
                    bounded: entry.flags.contains(&"bounded"),
                    tail: entry.flags.contains(&"tail"),
                    end: entry.flags.contains(&"end"),
                    start: entry.flags.contains(&"start"),
                    whole: entry.flags.contains(&"whole"),
                    inword: entry.flags.contains(&"inword"),
                };
                let key = normalizer.key_of(term);
                if key.is_empty() {
                    problems.push(problem(format!("entry '{term}' normalizes to nothing")));
                    continue;
                }
                // A written entry that a reading generated before is that entry, with its flags.
                if let Some(i) = generated.remove(&(rule, key.clone())) {
                    entries[i].flags = flags;
                    entries[i].word_start =
                        !flags.inword && term.chars().next().is_some_and(|c| ('ぁ'..='ゖ').contains(&c));
                    seen.insert((rule, key.clone()), (path.clone(), line_no));
                    continue;
                }
                if let Some((file, line)) = seen.get(&(rule, key.clone())) {
                    problems
                        .push(problem(format!("duplicate of {}:{line} (both normalize to '{key}')", file.display())));
                    continue;
                }
                seen.insert((rule, key.clone()), (path.clone(), line_no));
                let word_start = !flags.inword && term.chars().next().is_some_and(|c| ('ぁ'..='ゖ').contains(&c));
                entries.push(Entry { rule, flags, word_start });
                terms.push(key);
                let concept = matches!(kind, ListKind::Synonym | ListKind::Topic);
                if let Some(reading) = readings.as_mut().filter(|_| concept && term.chars().any(is_kanji))
                    && let Some(kana) = reading(term).map(|r| normalizer.key_of(&r))
                    && kana.chars().count() >= 3
                    && !seen.contains_key(&(rule, kana.clone()))
                    && !generated.contains_key(&(rule, kana.clone()))
                {
                    generated.insert((rule, kana.clone()), entries.len());
                    // A reading is hiragana: like a written hiragana entry, it starts a word.
                    entries.push(Entry { rule, flags, word_start: !flags.inword });
                    terms.push(kana);
                }
            }
        }
        if rules.len() > u16::MAX as usize {
            problems.push(Problem { file: dir.into(), line: 0, message: "too many sections".into() });
        }
        if !problems.is_empty() {
            return Err(DictionaryError(problems));
        }
        // Each distinct term with its first entry; each entry linked to the next with its term.
        let mut same_term = vec![NO_ENTRY; terms.len()];
        let mut last: HashMap<&str, u32> = HashMap::with_capacity(terms.len());
        let mut firsts: Vec<(&str, u32)> = Vec::with_capacity(terms.len());
        for (i, t) in terms.iter().enumerate() {
            let i = i as u32;
            match last.insert(t, i) {
                Some(prev) => same_term[prev as usize] = i,
                None => firsts.push((t, i)),
            }
        }
        let automaton = CharwiseDoubleArrayAhoCorasick::with_values(firsts).map_err(|e| {
            DictionaryError(vec![Problem { file: dir.into(), line: 0, message: format!("automaton: {e}") }])
        })?;
        Ok(Self { rules, entries, terms, automaton, same_term, source: dir.into() })
    }

    /// All rules, indexed by [`Hit::rule`].
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Number of entries (terms).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The directory these were loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Every `(rule id, normalized term)` pair, in file order.
    pub fn terms(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().zip(&self.terms).map(|(e, t)| (&*self.rules[e.rule as usize].id, t.as_str()))
    }

    /// Finds the hits in a key view, applying flags and allow-list suppression. `out` is reused.
    /// Word edges are the key view's own: use [`Dictionaries::find_mapped`] for a message, whose
    /// key view has dropped the spaces between its words.
    pub fn find(&self, key: &str, out: &mut Vec<Hit>) {
        self.find_with(key, |_| false, out);
    }

    /// As [`Dictionaries::find`] on a message's key view, where a space or symbol the view
    /// dropped also ends a word: `ugly` is bounded in `you are so ugly lol` (key view
    /// `youaresouglylol`), not in `uglyyy`.
    pub fn find_mapped(&self, key: &Mapped, out: &mut Vec<Hit>) {
        self.find_with(key.as_str(), |at| key.dropped_before(at), out);
    }

    /// Calls `each` with every occurrence of every entry's term in `key`, flags not yet applied,
    /// as (start, end, entry): by end, then longest first, and a term's entries in file order.
    fn each_match(&self, key: &str, mut each: impl FnMut(usize, usize, u32)) {
        for m in self.automaton.find_overlapping_iter(key) {
            let mut at = m.value();
            while at != NO_ENTRY {
                each(m.start(), m.end(), at);
                at = self.same_term[at as usize];
            }
        }
    }

    fn find_with(&self, key: &str, dropped_before: impl Fn(usize) -> bool, out: &mut Vec<Hit>) {
        out.clear();
        let content = content_bounds(key);
        let mut allow: Option<(u32, u32)> = None;
        self.each_match(key, |s, e, at| {
            let entry = &self.entries[at as usize];
            if !flags_hold(entry.flags, key, s, e, content, &dropped_before) {
                return;
            }
            let hit = Hit { rule: entry.rule, start: s as u32, end: e as u32, word_start: entry.word_start };
            if self.rules[entry.rule as usize].kind == ListKind::Allow {
                allow = Some(match allow {
                    Some((a, b)) if (s as u32) <= b => (a, b.max(e as u32)),
                    _ => (s as u32, e as u32),
                });
            }
            out.push(hit);
        });
        if allow.is_some() {
            let spans: Vec<(u32, u32)> = out
                .iter()
                .filter(|h| self.rules[h.rule as usize].kind == ListKind::Allow)
                .map(|h| (h.start, h.end))
                .collect();
            // Concepts stay: the allowed word names them (イエロー is yellow, whatever エロ it holds).
            out.retain(|h| {
                matches!(self.rules[h.rule as usize].kind, ListKind::Allow | ListKind::Synonym | ListKind::Topic)
                    || !spans.iter().any(|&(a, b)| a <= h.start && h.end <= b)
            });
        }
    }
}

/// The byte range of a key view without leading and trailing symbols, emoji and laughter.
fn content_bounds(key: &str) -> (usize, usize) {
    let trailing = |c: char| !c.is_alphanumeric() || c == 'w' || c == '笑' || c == '草' || c == 'ー';
    let start = key.char_indices().find(|&(_, c)| c.is_alphanumeric()).map_or(key.len(), |(i, _)| i);
    let mut end = key.len();
    for (i, c) in key.char_indices().rev() {
        if trailing(c) {
            end = i;
        } else {
            break;
        }
    }
    (start, end.max(start))
}

#[derive(PartialEq)]
enum Script {
    Latin,
    Kana,
    Kanji,
    Other,
}

fn script(c: char) -> Script {
    match c {
        'a'..='z' | 'A'..='Z' | '0'..='9' => Script::Latin,
        'ぁ'..='ゖ' | 'ァ'..='ヺ' | 'ー' => Script::Kana,
        '一'..='鿿' | '々' => Script::Kanji,
        _ => Script::Other,
    }
}

fn flags_hold(
    flags: Flags,
    key: &str,
    s: usize,
    e: usize,
    (cs, ce): (usize, usize),
    dropped_before: &impl Fn(usize) -> bool,
) -> bool {
    if flags.bounded || flags.tail {
        let clash = |edge: Option<char>, n: Option<char>| match (edge, n) {
            (Some(a), Some(b)) => {
                let sa = script(a);
                sa != Script::Other && sa == script(b)
            }
            _ => false,
        };
        let (last, after) = (key[s..e].chars().next_back(), key[e..].chars().next());
        // Something the key view dropped (a space) between the match and its neighbour is an edge.
        let (edge_after, edge_before) = (dropped_before(e), dropped_before(s));
        if (!edge_after && clash(last, after))
            || (flags.bounded && !edge_before && clash(key[s..e].chars().next(), key[..s].chars().next_back()))
        {
            return false;
        }
    }
    if (flags.end || flags.whole) && e < ce {
        return false;
    }
    if (flags.start || flags.whole) && s > cs {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(text: &str) -> Result<Dictionaries, DictionaryError> {
        Dictionaries::compile(
            Path::new("d"),
            &[(PathBuf::from("d/abuse.txt"), text.to_string())],
            &NormalizeConfig::default(),
        )
    }

    fn rules_hit(d: &Dictionaries, text: &str) -> Vec<String> {
        let key = Normalizer::new(&NormalizeConfig::default()).key_of(text);
        let mut hits = Vec::new();
        d.find(&key, &mut hits);
        hits.iter().map(|h| d.rules()[h.rule as usize].id.to_string()).collect()
    }

    #[test]
    fn width_and_kana_variants_meet() {
        let d = compile("[insult => abuse]\nバカ\n").unwrap();
        for text in ["ﾊﾞｶ", "ばか", "バ カ", "ﾊﾞ・ｶ"] {
            assert_eq!(rules_hit(&d, text), ["ja.abuse.insult"], "{text}");
        }
    }

    #[test]
    fn bounded_entries_respect_script_neighbours() {
        let d = compile("[die]\nしね | bounded\n").unwrap();
        assert_eq!(rules_hit(&d, "し ね"), ["ja.abuse.die"]);
        assert_eq!(rules_hit(&d, "お前しね"), ["ja.abuse.die"]);
        assert!(rules_hit(&d, "安いですしね").is_empty());
    }

    #[test]
    fn a_stream_section_is_the_shops_and_the_streams() {
        let d = compile("[streamaudio | stream]\n音小さい\n[shipping | shop]\n送料\n[price]\n値段\n").unwrap();
        let flags = |name: &str| {
            let r = d.rules().iter().find(|r| r.section == name).unwrap();
            (r.shop, r.stream)
        };
        assert_eq!(flags("streamaudio"), (true, true));
        assert_eq!(flags("shipping"), (true, false));
        assert_eq!(flags("price"), (false, false));
        let err = compile("[streamaudio | streem]\n音小さい\n").unwrap_err();
        assert!(err.0[0].message.contains("unknown section flag 'streem' (weak, shop, stream)"), "{err:?}");
    }

    #[test]
    fn tail_entries_must_end_a_word_of_their_script() {
        let d = compile("[url]\n.com | tail\n").unwrap();
        assert_eq!(rules_hit(&d, "example.com見て"), ["ja.abuse.url"]);
        assert_eq!(rules_hit(&d, "プロフの example . com"), ["ja.abuse.url"]);
        assert!(rules_hit(&d, "what's the comfort temp?").is_empty());
        assert!(rules_hit(&d, "welcome!").is_empty());
        assert!(rules_hit(&d, "can you come closer").is_empty());
    }

    #[test]
    fn a_space_the_key_view_drops_is_a_word_edge() {
        let d = compile("[insult]\nugly | bounded\n[url]\n.com | tail\n").unwrap();
        let hits = |text: &str| {
            let mut norm = crate::pipeline::normalize::Normalized::default();
            Normalizer::new(&NormalizeConfig::default()).process(text, &mut norm);
            let mut out = Vec::new();
            d.find_mapped(&norm.key, &mut out);
            out.iter().map(|h| d.rules()[h.rule as usize].id.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(hits("you are so ugly lol"), ["ja.abuse.insult"]);
        assert_eq!(hits("it's on example.com now"), ["ja.abuse.url"]);
        assert!(hits("uglyyy").is_empty());
        assert!(hits("what's the comfort temp?").is_empty());
    }

    #[test]
    fn end_flag_allows_trailing_symbols() {
        let d = compile("[q]\nある | end\n").unwrap();
        assert_eq!(rules_hit(&d, "Mまだある？ｗｗ"), ["ja.abuse.q"]);
        assert!(rules_hit(&d, "あるけど高い").is_empty());
    }

    #[test]
    fn hiragana_entries_must_start_a_word_unless_inword() {
        let d = compile("[q]\nいくら\nる? | end | inword\nブス\n").unwrap();
        let key = Normalizer::new(&NormalizeConfig::default()).key_of("いくら？ブス する？");
        let mut hits = Vec::new();
        d.find(&key, &mut hits);
        let starts: Vec<bool> = hits.iter().map(|h| h.word_start).collect();
        assert_eq!(starts, [true, false, false], "hiragana as written, not inword; katakana is free");
        assert!(compile("[q]\nる | inword | end\n").is_ok());
    }

    #[test]
    fn allow_entries_hide_contained_matches() {
        let sources = [
            (PathBuf::from("d/abuse.txt"), "[ero]\nエロ\n".to_string()),
            (PathBuf::from("d/allow.txt"), "[colour]\nイエロー\n".to_string()),
        ];
        let d = Dictionaries::compile(Path::new("d"), &sources, &NormalizeConfig::default()).unwrap();
        assert_eq!(rules_hit(&d, "イエローある？"), ["ja.allow.colour"]);
        assert_eq!(rules_hit(&d, "エロい"), ["ja.abuse.ero"]);
        // A concept inside an allowed word is what the word names: it stays.
        let sources = [
            (PathBuf::from("d/abuse.txt"), "[ero]\nエロ\n".to_string()),
            (PathBuf::from("d/allow.txt"), "[colour]\nイエロー\n".to_string()),
            (PathBuf::from("d/synonyms.txt"), "[color_yellow]\nイエロー\n".to_string()),
        ];
        let d = Dictionaries::compile(Path::new("d"), &sources, &NormalizeConfig::default()).unwrap();
        let mut hits = rules_hit(&d, "イエローS取り置きできますか");
        hits.sort();
        assert_eq!(hits, ["ja.allow.colour", "ja.synonyms.color_yellow"]);
    }

    #[test]
    fn the_shipped_lists_match_as_a_plain_overlapping_search_would() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dictionaries/ja");
        let d = Dictionaries::load(&dir, &NormalizeConfig::default()).unwrap();
        assert!(d.same_term.iter().any(|&n| n != NO_ENTRY), "some term is in more than one section");
        let reference = aho_corasick::AhoCorasick::new(&d.terms).unwrap();
        let mut normalizer = Normalizer::new(&NormalizeConfig::default());
        let lines =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/labelled/dev.jsonl")).unwrap();
        let texts = lines
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].as_str().unwrap().to_string());
        // The messages, and every term between words, so that each entry is found at least once.
        let keys: Vec<String> =
            texts.map(|t| normalizer.key_of(&t)).chain(d.terms.iter().map(|t| format!("あ{t}x"))).collect();
        let mut found = 0;
        for key in &keys {
            let mut ours = Vec::new();
            d.each_match(key, |s, e, at| ours.push((s, e, at)));
            let plain: Vec<(usize, usize, u32)> = reference
                .find_overlapping_iter(key.as_str())
                .map(|m| (m.start(), m.end(), m.pattern().as_u32()))
                .collect();
            assert_eq!(ours, plain, "{key}");
            found += ours.len();
        }
        assert!(found > d.terms.len(), "{found} matches");
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let err = compile("orphan\n[ok]\nバカ\nﾊﾞｶ\n・・・\nx | loud\n[bad name]\n[z => nope]\n").unwrap_err();
        let lines: Vec<usize> = err.0.iter().map(|p| p.line).collect();
        assert_eq!(lines, [1, 4, 5, 6, 7, 8], "{err}");
        assert!(err.to_string().contains("d/abuse.txt:4: duplicate of d/abuse.txt:3"), "{err}");
    }
}
