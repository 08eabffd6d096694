//! Text normalization with origin tracking.
//!
//! The original message is never modified. Normalization produces two views, each a string plus a
//! byte-level map back into the original:
//!
//! * the **surface** view (invisible characters removed, NFKC) is what the tokenizer reads;
//! * the **key** view (surface plus lowercase, kana folding, small-kana and long-vowel folding,
//!   repeat squashing and separator removal) is what keyword dictionaries match against.
//!
//! Dictionary entries go through the same [`Normalizer`], so `ﾊﾞｶ`, `バカ` and `ば か` meet.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::canonical_combining_class;

/// One declared normalization step of the key view, applied in the configured order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// ASCII and other cased letters to lowercase (`LINE` → `line`).
    Lowercase,
    /// Katakana to hiragana (`サイズ` → `さいず`).
    KanaFold,
    /// Small vowels to their full size (`かわいぃ` → `かわいい`).
    SmallKana,
    /// Wave dashes and half-width prolonged marks become `ー` (`すご〜い` → `すごーい`).
    LongVowel,
    /// Runs of one character are cut to two, `ー` runs to one (`ｗｗｗｗ` → `ww`).
    SquashRepeats,
    /// Whitespace and separator symbols are removed, so split spellings join (`L I N E` → `line`).
    JoinSplit,
}

/// Configuration of the normalize stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NormalizeConfig {
    /// Ordered steps that build the key view on top of the surface view (NFKC, invisibles removed).
    #[serde(default = "NormalizeConfig::default_steps")]
    pub key_steps: Vec<Step>,
}

impl NormalizeConfig {
    fn default_steps() -> Vec<Step> {
        // Separators go before squashing, so `〜 〜` and `ｗ ｗ ｗ` squash too (idempotence).
        vec![Step::Lowercase, Step::KanaFold, Step::SmallKana, Step::LongVowel, Step::JoinSplit, Step::SquashRepeats]
    }
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        Self { key_steps: Self::default_steps() }
    }
}

/// A normalized string with, for every byte, the byte range of the original text it came from.
#[derive(Debug, Default, Clone)]
pub struct Mapped {
    text: String,
    /// `origin[i]` is the original byte range of the character that byte `i` belongs to.
    origin: Vec<(u32, u32)>,
}

impl Mapped {
    /// The normalized text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Maps a byte range of the normalized text to a byte range of the original text.
    /// Both ends of the result lie on character boundaries of the original.
    pub fn original_span(&self, start: usize, end: usize) -> (usize, usize) {
        if self.origin.is_empty() || start >= end {
            let at = self.origin.get(start).map_or(0, |o| o.0 as usize);
            return (at, at);
        }
        let last = end.min(self.origin.len()) - 1;
        let s = self.origin[start.min(last)].0 as usize;
        let e = self.origin[last].1 as usize;
        (s, e.max(s))
    }

    /// Whether the original text had something between the normalized characters that end and
    /// start at byte `at` which the normalization dropped (a space, a symbol).
    pub fn dropped_before(&self, at: usize) -> bool {
        at > 0 && at < self.origin.len() && self.origin[at - 1].1 < self.origin[at].0
    }

    /// The byte range of the normalized text that came from the original range `start..end`
    /// (the characters wholly inside it), if any.
    pub fn span_of(&self, start: usize, end: usize) -> Option<(usize, usize)> {
        let first = self.origin.iter().position(|o| o.0 as usize >= start && o.1 as usize <= end)?;
        let last = self.origin.iter().rposition(|o| o.0 as usize >= start && o.1 as usize <= end)?;
        Some((first, last + 1))
    }

    fn clear(&mut self) {
        self.text.clear();
        self.origin.clear();
    }

    fn reserve(&mut self, bytes: usize) {
        self.text.reserve(bytes);
        self.origin.reserve(bytes);
    }

    fn push(&mut self, c: char, from: (u32, u32)) {
        self.text.push(c);
        self.origin.resize(self.origin.len() + c.len_utf8(), from);
    }

    /// Extends the original range of the last character to end at `end`.
    fn extend_last(&mut self, end: u32) {
        let n = self.text.chars().next_back().map_or(0, char::len_utf8);
        let len = self.origin.len();
        for o in &mut self.origin[len - n..] {
            o.1 = o.1.max(end);
        }
    }
}

/// Both normalized views of one message.
#[derive(Debug, Default, Clone)]
pub struct Normalized {
    /// NFKC with invisible characters removed: the tokenizer's input.
    pub surface: Mapped,
    /// The folded matching key: what dictionaries match against.
    pub key: Mapped,
}

/// The normalize stage. Cheap to clone; owns no per-message state except scratch buffers.
///
/// One pass over the text: each surface character is written to the surface view and streamed
/// through the key steps in their declared order, straight into the key view.
#[derive(Debug, Clone)]
pub struct Normalizer {
    steps: Vec<Step>,
    /// Per-step running state of the stateful steps (repeat runs, separators).
    state: Vec<StepState>,
    cluster: String,
}

#[derive(Debug, Clone, Copy, Default)]
struct StepState {
    prev: Option<char>,
    run: usize,
    after_separator: bool,
}

impl Normalizer {
    /// Builds the stage from its configuration.
    pub fn new(config: &NormalizeConfig) -> Self {
        let steps = config.key_steps.clone();
        Self { state: vec![StepState::default(); steps.len()], steps, cluster: String::new() }
    }

    /// Normalizes `text` into `out`, reusing its buffers.
    pub fn process(&mut self, text: &str, out: &mut Normalized) {
        out.surface.clear();
        out.key.clear();
        out.surface.reserve(text.len());
        out.key.reserve(text.len());
        self.state.iter_mut().for_each(|s| *s = StepState::default());
        let mut chars = text.char_indices().peekable();
        while let Some((start, c)) = chars.next() {
            let mut end = start + c.len_utf8();
            // Common case: a stable character that nothing attaches to.
            if is_nfkc_stable(c) && chars.peek().is_none_or(|&(_, m)| attaches_nothing(m)) {
                self.emit(c, (start as u32, end as u32), out);
                continue;
            }
            if is_invisible(c) {
                continue;
            }
            self.cluster.clear();
            self.cluster.push(c);
            while let Some(&(i, m)) = chars.peek() {
                if is_invisible(m) {
                    chars.next();
                    end = i + m.len_utf8();
                    continue;
                }
                let mark = match m {
                    // Spacing voiced marks act as combining marks after kana.
                    '\u{309B}' => '\u{3099}',
                    '\u{309C}' => '\u{309A}',
                    _ => m,
                };
                if is_mark(mark) {
                    self.cluster.push(mark);
                    chars.next();
                    end = i + m.len_utf8();
                } else {
                    break;
                }
            }
            let from = (start as u32, end as u32);
            if self.cluster.len() == c.len_utf8() && is_nfkc_stable(c) {
                self.emit(c, from, out);
            } else if self.cluster.nfkc().next() == Some(' ')
                && self.cluster.nfkc().any(|n| canonical_combining_class(n) != 0)
            {
                // Spacing diacritics (´, ゛ alone) would become a space plus a combining mark that
                // re-composes with whatever precedes it once the space is removed; keep them as is.
                let cluster = std::mem::take(&mut self.cluster);
                for c in cluster.chars() {
                    self.emit(c, from, out);
                }
                self.cluster = cluster;
            } else if self.cased_marks() {
                // A lowercased base may compose with its marks where the capital did not
                // (U+1D75C, a mathematical capital eta, with U+0342 becomes ῆ): the key takes the
                // composed form, so keying a key changes nothing.
                let cluster = std::mem::take(&mut self.cluster);
                for n in cluster.nfkc().filter(|n| !is_invisible(*n)) {
                    out.surface.push(n, from);
                }
                let lower: String = cluster.nfkc().flat_map(char::to_lowercase).collect();
                for n in lower.nfkc().filter(|n| !is_invisible(*n)) {
                    self.step(0, n, from, &mut out.key);
                }
                self.cluster = cluster;
            } else {
                let cluster = std::mem::take(&mut self.cluster);
                for n in cluster.nfkc().filter(|n| !is_invisible(*n)) {
                    self.emit(n, from, out);
                }
                self.cluster = cluster;
            }
        }
    }

    /// Whether the key lowercases and the cluster at hand is a cased letter with marks.
    fn cased_marks(&self) -> bool {
        self.steps.contains(&Step::Lowercase)
            && self.cluster.chars().nth(1).is_some()
            && self.cluster.nfkc().any(|n| has_case(n) && !n.to_lowercase().eq([n]))
    }

    /// Convenience for dictionary entries and tests: the key view as an owned string.
    pub fn key_of(&mut self, text: &str) -> String {
        let mut n = Normalized::default();
        self.process(text, &mut n);
        n.key.text
    }

    /// One surface character (from original bytes `from`): into the surface view, and through
    /// the key steps into the key view.
    fn emit(&mut self, c: char, from: (u32, u32), out: &mut Normalized) {
        out.surface.push(c, from);
        self.step(0, c, from, &mut out.key);
    }

    /// Applies the key steps from `first` on to one character and writes what is left of it.
    fn step(&mut self, first: usize, mut c: char, from: (u32, u32), key: &mut Mapped) {
        for i in first..self.steps.len() {
            match self.steps[i] {
                Step::Lowercase if c.is_ascii() => c = c.to_ascii_lowercase(),
                Step::Lowercase if has_case(c) => {
                    let mut lower = c.to_lowercase();
                    if lower.len() == 1 {
                        c = lower.next().unwrap_or(c);
                    } else {
                        for l in lower {
                            self.step(i + 1, l, from, key);
                        }
                        return;
                    }
                }
                Step::Lowercase => {}
                // Voiced marks left uncomposed (ぅ゛) are dropped: no precomposed form exists.
                Step::KanaFold if matches!(c, '\u{3099}' | '\u{309A}' | '\u{FF9E}' | '\u{FF9F}') => return,
                Step::KanaFold => c = kata_to_hira(c),
                Step::SmallKana => c = small_to_full(c),
                Step::LongVowel => {
                    if matches!(c, '〜' | '～' | '~' | 'ｰ' | '−' | '―' | '‐') {
                        c = 'ー';
                    }
                }
                Step::SquashRepeats => {
                    let s = &mut self.state[i];
                    if Some(c) == s.prev {
                        s.run += 1;
                    } else {
                        s.run = 1;
                        s.prev = Some(c);
                    }
                    if s.run > if c == 'ー' { 1 } else { 2 } {
                        // The kept character now stands for the whole run.
                        key.extend_last(from.1);
                        return;
                    }
                }
                Step::JoinSplit => {
                    // A mark whose base was a removed separator has no base any more: drop it
                    // too, or it would combine with (or reorder against) whatever comes before.
                    let s = &mut self.state[i];
                    if is_separator(c) {
                        s.after_separator = true;
                        return;
                    }
                    if s.after_separator && is_mark(c) {
                        return;
                    }
                    s.after_separator = false;
                }
            }
        }
        key.push(c, from);
    }
}

/// Whether a character may have a lowercase form: false for the CJK, kana and symbol blocks
/// that make up most Japanese chat, so they skip the case tables.
fn has_case(c: char) -> bool {
    !(0x2E80..0xA640).contains(&(c as u32))
}

/// Characters that render as nothing: zero-width spaces and joiners, direction marks, BOM,
/// variation selectors, soft hyphen.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// Whether `c` is surely neither invisible nor a mark that would join the character before it
/// (a quick range test for kana, kanji, ASCII and full-width forms; `false` means "look closer").
fn attaches_nothing(c: char) -> bool {
    let u = c as u32;
    (u < 0x300 && u != 0xAD)
        || (0x3041..=0x3096).contains(&u)
        || (0x30A0..=0x30FF).contains(&u)
        || (0x4E00..=0x9FFF).contains(&u)
        || (0xFF01..=0xFF5E).contains(&u)
}

/// Separators that evasive spellings put between characters (`L.I.N.E`, `し・ね`, `ら　い　ん`).
pub fn is_separator(c: char) -> bool {
    let u = c as u32;
    // Kana (but the middle dot) and kanji: the bulk of chat, none of them separators.
    if (0x3041..0xA000).contains(&u) && u != 0x30FB {
        return false;
    }
    c.is_whitespace()
        || matches!(
            c,
            '.' | '・'
                | '･'
                | '_'
                | '-'
                | '*'
                | '/'
                | '|'
                | ','
                | '、'
                | '。'
                | '\''
                | '"'
                | '`'
                | '^'
                | '+'
                | '='
                | '·'
                | '•'
        )
}

/// A character that joins the one before it: a combining mark, or one of the few characters of
/// class 0 whose decomposition begins with a combining mark (the half-width voiced marks, and
/// Tibetan vowel signs such as U+0F81, which is two signs that NFKC reorders against the marks
/// around them).
fn is_mark(c: char) -> bool {
    canonical_combining_class(c) != 0 || matches!(c, '\u{0F73}' | '\u{0F75}' | '\u{0F81}' | '\u{FF9E}' | '\u{FF9F}')
}

/// Characters whose NFKC form is themselves when they stand alone (the common fast path).
fn is_nfkc_stable(c: char) -> bool {
    let u = c as u32;
    (u < 0xA0)
        || (0x3041..=0x3096).contains(&u)
        || (0x30A1..=0x30FA).contains(&u)
        || u == 0x30FC
        || (0x4E00..=0x9FFF).contains(&u)
}

fn kata_to_hira(c: char) -> char {
    match c as u32 {
        u @ 0x30A1..=0x30F6 => char::from_u32(u - 0x60).unwrap_or(c),
        _ => c,
    }
}

fn small_to_full(c: char) -> char {
    match c {
        'ぁ' => 'あ',
        'ぃ' => 'い',
        'ぅ' => 'う',
        'ぇ' => 'え',
        'ぉ' => 'お',
        'ゎ' => 'わ',
        'ゕ' => 'か',
        'ゖ' => 'け',
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(text: &str) -> String {
        Normalizer::new(&NormalizeConfig::default()).key_of(text)
    }

    fn surface(text: &str) -> String {
        let mut n = Normalized::default();
        Normalizer::new(&NormalizeConfig::default()).process(text, &mut n);
        n.surface.text
    }

    macro_rules! t {
        ($name:ident, $f:ident, $input:expr, $expected:expr) => {
            #[test]
            fn $name() {
                assert_eq!($f($input), $expected);
            }
        };
    }

    t!(half_width_katakana_meets_full_width, key, "ﾊﾞｶ", key("バカ"));
    t!(katakana_folds_to_hiragana, key, "サイズ", "さいず");
    t!(full_width_latin_folds, key, "ＬＩＮＥ", "line");
    t!(spaced_latin_joins, key, "L I N E", "line");
    t!(ideographic_spaces_join, key, "ら　い　ん", "らいん");
    t!(spaced_kana_joins, key, "し ね", "しね");
    t!(dotted_letters_join, key, "h.t.t.p", "http");
    t!(laughter_squashes, key, "ｗｗｗｗｗｗ", "ww");
    t!(long_vowels_squash, key, "すごーーーい", "すごーい");
    t!(wave_dash_is_long_vowel, key, "かわいい〜〜", "かわいいー");
    t!(small_vowels_fold, key, "かわいぃ", "かわいい");
    t!(sokuon_is_kept, key, "ポチった", "ぽちった");
    t!(zero_width_is_removed, surface, "L\u{200B}INE", "LINE");
    t!(variation_selector_is_removed, surface, "❤\u{FE0F}", "❤");
    t!(half_width_voiced_mark_composes, surface, "ﾌﾞｽ", "ブス");
    t!(spacing_voiced_mark_composes, surface, "か゛", "が");
    t!(full_width_question_mark_folds, surface, "ありますか？", "ありますか?");
    t!(circled_digits_fold, surface, "①", "1");

    #[test]
    fn a_character_that_decomposes_into_marks_joins_the_marks_before_it() {
        // U+0F81 is U+0F71 U+0F80 (classes 129, 130); NFKC puts them before a class-230 mark.
        let once = key("\u{1E000}\u{F81}");
        assert_eq!(once, "\u{F71}\u{F80}\u{1E000}");
        assert_eq!(key(&once), once);
    }

    #[test]
    fn every_character_whose_decomposition_starts_with_a_mark_is_a_mark() {
        for c in (0..=0x10FFFF_u32).filter_map(char::from_u32) {
            let first = std::iter::once(c).nfkd().next();
            if first.is_some_and(|d| canonical_combining_class(d) != 0) {
                assert!(is_mark(c), "U+{:04X}", c as u32);
            }
        }
    }

    #[test]
    fn a_lowercased_base_takes_the_composed_form_with_its_marks() {
        // U+1D75C (a mathematical capital eta) is Η under NFKC; Η has no form with U+0342, η does.
        assert_eq!(surface("\u{1D75C}\u{342}"), "\u{397}\u{342}");
        let once = key("\u{1D75C}\u{342}");
        assert_eq!(once, "\u{1FC6}");
        assert_eq!(key(&once), once);
    }

    #[test]
    fn spans_point_into_the_original() {
        let original = "ＬＩＮＥ交換しよ";
        let mut n = Normalized::default();
        Normalizer::new(&NormalizeConfig::default()).process(original, &mut n);
        let at = n.key.as_str().find("line").unwrap();
        let (s, e) = n.key.original_span(at, at + 4);
        assert_eq!(&original[s..e], "ＬＩＮＥ");
    }

    #[test]
    fn squashed_run_maps_to_the_whole_run() {
        let original = "ｗｗｗｗ";
        let mut n = Normalized::default();
        Normalizer::new(&NormalizeConfig::default()).process(original, &mut n);
        assert_eq!(n.key.as_str(), "ww");
        assert_eq!(n.key.original_span(0, 2), (0, original.len()));
    }

    fn joining_characters() -> Vec<char> {
        let mut chars: Vec<char> = (0..=0x10FFFF_u32)
            .filter_map(char::from_u32)
            .filter(|&c| is_mark(c) || is_invisible(c) || std::iter::once(c).nfkc().ne([c]))
            .collect();
        chars.extend("aAカかﾊ가 .・　'".chars());
        chars
    }

    proptest! {
        #[test]
        fn key_is_idempotent(s in "\\PC{0,40}") {
            let once = key(&s);
            prop_assert_eq!(key(&once), once.clone());
        }

        /// Uniform code points seldom put two marks side by side: draw from the characters
        /// that join, decompose or vanish, with a few plain bases and separators among them.
        #[test]
        fn key_is_idempotent_on_marks_and_decompositions(
            cs in prop::collection::vec(prop::sample::select(joining_characters()), 0..12),
        ) {
            let s: String = cs.into_iter().collect();
            let once = key(&s);
            prop_assert_eq!(key(&once), once.clone());
        }

        #[test]
        fn key_is_idempotent_on_japanese(s in "[ぁ-ゖァ-ヺｦ-ﾟ一-龠ー〜ｗw !？?　・0-9０-９A-Za-zＡ-Ｚ\u{200B}\u{FE0F}゛゜]{0,30}") {
            let once = key(&s);
            prop_assert_eq!(key(&once), once.clone());
        }

        /// The single fused pass gives what applying the steps one after another would, in
        /// any declared order. (Without voiced marks: the reference re-normalizes between steps,
        /// which would re-compose a mark that a step left without its base.)
        #[test]
        fn fused_pass_equals_steps_one_by_one(
            s in "[ぁ-ゖァ-ヺｦ-ﾝ一-龠ー〜ｗw !？?　・0-9０-９A-Za-zＡ-Ｚ]{0,30}",
            order in Just(NormalizeConfig::default_steps()).prop_shuffle(),
        ) {
            let fused = Normalizer::new(&NormalizeConfig { key_steps: order.clone() }).key_of(&s);
            let mut text = surface(&s);
            for step in order {
                text = Normalizer::new(&NormalizeConfig { key_steps: vec![step] }).key_of(&text);
            }
            prop_assert_eq!(fused, text);
        }

        #[test]
        fn spans_stay_on_char_boundaries(s in "\\PC{0,40}", a in 0usize..64, b in 0usize..64) {
            let mut n = Normalized::default();
            Normalizer::new(&NormalizeConfig::default()).process(&s, &mut n);
            for view in [&n.surface, &n.key] {
                let len = view.as_str().len();
                let (lo, hi) = (a.min(b).min(len), a.max(b).min(len));
                let (os, oe) = view.original_span(lo, hi);
                prop_assert!(os <= oe && oe <= s.len());
                prop_assert!(s.is_char_boundary(os) && s.is_char_boundary(oe));
            }
        }
    }
}
