//! Feature extraction: the cues of one message (dictionary hits, structure, punctuation, the
//! last words) before they are named or weighed, and the quoting and gapped-letter checks that
//! decide which hits count.

use crate::dictionary::{Hit, ListKind};
use crate::label::{Label, LabelSet};
use crate::pipeline::normalize::Normalized;
use crate::pipeline::tokenize::{Conj, Pos, Sub, Token, Tokens};

use super::Classifier;
use super::ngram;
use super::structure::{
    find_count, find_handle, find_income, find_phone, find_pick, find_url, is_decoration, is_word_token,
};

/// A feature occurrence as extracted, before its name is spelled out.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cue<'a> {
    pub(super) key: Key<'a>,
    pub(super) rule: Option<u16>,
    pub(super) span: (u32, u32),
}

/// What names a feature. Names made of a prefix and a word are kept in parts: spelling them costs
/// a copy, and [`Classifier::classify`] finds the model ids of dictionary words without it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Key<'a> {
    /// A rule id or a fixed cue name.
    Name(&'a str),
    /// A fixed prefix followed by a variable part (`ja.tok.end_pos.` and a part of speech).
    Prefixed(&'static str, &'a str),
    /// A feature of one word: its kind's prefix followed by the word's base form. `word` is the
    /// dictionary word ([`Token::word`]), by which the classifier keeps the feature's model id.
    Word { kind: WordFeature, base: &'a str, word: Option<u32> },
    /// The last two words, `e2:<previous base>|<last base>`: too many pairs to keep by word.
    Pair(&'a str, &'a str),
}

impl<'a> Key<'a> {
    /// The feature name; spelled in `buf` unless it is a fixed one.
    pub(super) fn spell<'s>(self, buf: &'s mut String) -> &'s str
    where
        'a: 's,
    {
        let parts = match self {
            Key::Name(name) => return name,
            Key::Prefixed(prefix, rest) => [prefix, rest, "", ""],
            Key::Word { kind, base, .. } => [kind.prefix(), base, "", ""],
            Key::Pair(prev, last) => ["e2:", prev, "|", last],
        };
        buf.clear();
        parts.iter().for_each(|p| buf.push_str(p));
        buf
    }
}

/// The features named after one word's base form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WordFeature {
    /// `w:<base>`: every word of the message.
    Word,
    /// `e:<base>`: the last word.
    End,
    /// `ja.tok.final.<base>`: the last word when it is a particle (or の).
    Final,
}

impl WordFeature {
    pub(super) const COUNT: usize = 3;

    fn prefix(self) -> &'static str {
        match self {
            WordFeature::Word => "w:",
            WordFeature::End => "e:",
            WordFeature::Final => "ja.tok.final.",
        }
    }
}

impl Classifier {
    /// Whether a hit may count here: an entry written in hiragana (or a kanji entry's kana
    /// reading) must start where a word starts (わからないくらい holds no いくら), unless its entry
    /// is flagged `inword`.
    fn at_word_start(norm: &Normalized, tokens: &Tokens, hit: &Hit) -> bool {
        Self::in_words(norm, tokens, hit, false)
    }

    /// Like [`Classifier::at_word_start`], and with `whole`, such a hit must not run from
    /// hiragana into a word written in katakana that goes on past it (後からクーポン holds no
    /// からく, the reading of 辛く): kana spelling a word keeps to one script. Question frames
    /// ask for it; the label cues do not.
    pub(crate) fn in_words(norm: &Normalized, tokens: &Tokens, hit: &Hit, whole: bool) -> bool {
        if !hit.word_start {
            return true;
        }
        let surface = norm.surface.as_str();
        let (start, end) = norm.key.original_span(hit.start as usize, hit.end as usize);
        let mut starts_word = false;
        let mut before: Option<char> = None;
        for t in &tokens.list {
            let (s, e) = norm.surface.original_span(t.start as usize, t.end as usize);
            starts_word |= s == start;
            let text = &surface[t.start as usize..t.end as usize];
            if whole
                && s > start
                && s < end
                && e > end
                && before.is_some_and(|c| ('ぁ'..='ゖ').contains(&c))
                && text.chars().next().is_some_and(|c| ('ァ'..='ヺ').contains(&c))
            {
                return false;
            }
            before = text.chars().next_back();
        }
        starts_word
    }

    /// Extracts features of one message, calling `emit` for each, unspelled: [`Classifier::classify`]
    /// resolves per-word features by word, [`Classifier::features`] spells every name.
    /// Character n-grams are not among them. `letters` holds the key's letters
    /// ([`ngram::letters`]) and buffers for matching them.
    pub(super) fn cues<'a>(
        &'a self,
        text: &str,
        norm: &Normalized,
        tokens: &'a Tokens,
        hits: &[Hit],
        letters: &mut Letters,
        mut emit: impl FnMut(Cue<'a>),
    ) {
        let whole = (0, text.len() as u32);
        let rules = self.dictionaries.rules();
        let key = norm.key.as_str();
        let quotes =
            if key.contains(['「', '『', '“', '"', '《']) { quote_spans(key) } else { Default::default() };
        let quotes = &quotes[..];
        let mut quoted = None;
        let mut declared = LabelSet::default();
        let mut attribute = None;
        let mut hit = |h: &Hit, emit: &mut dyn FnMut(Cue<'a>)| {
            let r = &rules[h.rule as usize];
            if matches!(r.kind, ListKind::Synonym | ListKind::Allow) || !Self::at_word_start(norm, tokens, h) {
                return;
            }
            let (s, e) = norm.key.original_span(h.start as usize, h.end as usize);
            if self.wh_rule[h.rule as usize] && concessive(norm, tokens, s) {
                return;
            }
            // A term quoted, or named to be talked about (「ブス」とか言う人, 詐欺とか書く人), is
            // mentioned, not used: it counts as a quotation, not as its rule.
            if is_mentioned(key, quotes, h.start as usize, h.end as usize) {
                quoted.get_or_insert((s as u32, e as u32));
                return;
            }
            if let Some(l) = r.declared {
                declared.insert(l);
            }
            emit(Cue { key: Key::Name(&r.id), rule: Some(h.rule), span: (s as u32, e as u32) });
        };
        for h in hits {
            if self.attribute_rule[h.rule as usize] && attribute.is_none() {
                let (s, e) = norm.key.original_span(h.start as usize, h.end as usize);
                attribute = Some((s as u32, e as u32));
            }
        }
        for h in hits {
            hit(h, &mut emit);
        }
        // Symbols or emoji between the letters of a term (ブ〇ス, こ🔪ろ🔪す) hide it from the
        // key view: the letters alone are matched again, and what only they show counts too.
        if letters.has_gaps(key) {
            letters.join();
            let Letters { text: joined, starts, units, hits: extra, .. } = &mut *letters;
            self.dictionaries.find(joined, extra);
            for h in extra.iter() {
                // Unit indices (after the start mark) of the first and last letter of the match.
                let first = starts.partition_point(|&b| b < h.start) + 1;
                let last = starts.partition_point(|&b| b < h.end);
                let (Some(a), Some(b)) = (units.get(first), units.get(last)) else { continue };
                let gapped = units[first..=last].windows(2).any(|w| w[0].end != w[1].start);
                if gapped {
                    hit(&Hit { rule: h.rule, start: a.start, end: b.end, word_start: h.word_start }, &mut emit);
                }
            }
        }
        if let Some(span) = quoted {
            emit(Cue { key: Key::Name("ja.struct.quoted"), rule: None, span });
        }
        let surface = norm.surface.as_str();
        let original = |(s, e): (usize, usize)| {
            let (s, e) = norm.surface.original_span(s, e);
            (s as u32, e as u32)
        };
        // Order shapes: a count (黒M1つ, 2台), a pick by number (3番), a product attribute named
        // (colour, size); orders are often nothing else (カーキのLで！, 4番12号).
        // Most chat has no ASCII digit or letter: the finders that need one are skipped.
        let digit = surface.bytes().any(|b| b.is_ascii_digit());
        let latin = digit || surface.bytes().any(|b| b.is_ascii_alphabetic());
        let count = find_count(surface).map(original);
        let pick = if digit { find_pick(surface).map(original) } else { None };
        if let Some(span) = count {
            emit(Cue { key: Key::Name("ja.struct.count"), rule: None, span });
        }
        if let Some(span) = pick {
            emit(Cue { key: Key::Name("ja.struct.pick"), rule: None, span });
        }
        if let Some(span) = attribute {
            emit(Cue { key: Key::Name("ja.struct.attribute"), rule: None, span });
            if count.is_some() || pick.is_some() {
                emit(Cue { key: Key::Name("ja.struct.attribute_count"), rule: None, span: whole });
            }
        }
        // Buying and asking in one message (買った！ポイントいつ付く？): each label's cues pull
        // the other down on their own; their meeting is a feature of its own.
        let asks = declared.contains(Label::Question) || surface.contains(['?', '？']);
        if declared.contains(Label::PurchaseIntent) && asks {
            emit(Cue { key: Key::Name("ja.combo.buy_and_ask"), rule: None, span: whole });
        }
        let span_of = |t: &Token| {
            let (s, e) = norm.surface.original_span(t.start as usize, t.end as usize);
            (s as u32, e as u32)
        };
        // Structural cues.
        if self.to_viewer(surface, hits) {
            emit(Cue { key: Key::Name("ja.struct.mention"), rule: None, span: whole });
        }
        let chars = surface.chars().filter(|c| !c.is_whitespace()).count();
        let len = match chars {
            0..=3 => "ja.struct.len.1_3",
            4..=8 => "ja.struct.len.4_8",
            9..=20 => "ja.struct.len.9_20",
            _ => "ja.struct.len.21_",
        };
        emit(Cue { key: Key::Name(len), rule: None, span: whole });
        if let Some(span) = find_url(surface) {
            let (s, e) = norm.surface.original_span(span.0, span.1);
            emit(Cue { key: Key::Name("ja.struct.url"), rule: None, span: (s as u32, e as u32) });
        }
        if let Some(span) = digit.then(|| find_phone(surface)).flatten() {
            let (s, e) = norm.surface.original_span(span.0, span.1);
            emit(Cue { key: Key::Name("ja.struct.phone"), rule: None, span: (s as u32, e as u32) });
        }
        if let Some(span) = latin.then(|| find_handle(surface)).flatten() {
            let (s, e) = norm.surface.original_span(span.0, span.1);
            emit(Cue { key: Key::Name("ja.struct.handle"), rule: None, span: (s as u32, e as u32) });
        }
        if let Some(span) = digit.then(|| find_income(surface)).flatten() {
            let (s, e) = norm.surface.original_span(span.0, span.1);
            emit(Cue { key: Key::Name("ja.struct.income"), rule: None, span: (s as u32, e as u32) });
        }
        if digit {
            emit(Cue { key: Key::Name("ja.struct.digit"), rule: None, span: whole });
        }
        // Sentence-final punctuation.
        let tail = surface.trim_end_matches(|c: char| c.is_whitespace() || is_decoration(c));
        let (mut ends_q, mut ends_excl) = (false, false);
        for c in tail.chars().rev().take_while(|c| matches!(c, '?' | '!' | '？' | '！')) {
            ends_q |= c == '?';
            ends_excl |= c == '!';
        }
        if ends_q && ends_excl {
            emit(Cue { key: Key::Name("ja.tok.qmark_excl"), rule: None, span: whole });
        } else if ends_q {
            emit(Cue { key: Key::Name("ja.tok.qmark"), rule: None, span: whole });
        } else if ends_excl {
            emit(Cue { key: Key::Name("ja.tok.excl"), rule: None, span: whole });
        }
        if !ends_q && surface.contains('?') {
            emit(Cue { key: Key::Name("ja.tok.qmark_inner"), rule: None, span: whole });
        }
        // Token cues: the last words of the message carry most of its mood.
        let is_word = |t: &&Token| is_word_token(surface, t);
        let mut from_end = tokens.list.iter().rev().filter(is_word);
        let (last, prev) = (from_end.next(), from_end.next());
        if let Some(last) = last {
            let span = span_of(last);
            let base = tokens.base(last);
            let word = |kind| Key::Word { kind, base, word: last.word() };
            emit(Cue { key: Key::Prefixed("ja.tok.end_pos.", last.pos.name()), rule: None, span });
            if last.pos == Pos::Particle || base == "の" {
                emit(Cue { key: word(WordFeature::Final), rule: None, span });
            }
            let te = last.pos == Pos::Particle && last.sub == Sub::Conjunctive && (base == "て" || base == "で");
            if te && let Some(prev) = prev.filter(|p| p.pos == Pos::Verb) {
                emit(Cue { key: Key::Name("ja.tok.te_end"), rule: None, span: (span_of(prev).0, span.1) });
            }
            if last.pos == Pos::Verb && last.conj == Conj::Imperative {
                emit(Cue { key: Key::Name("ja.tok.imperative"), rule: None, span });
            }
            if let Some(prev) = prev {
                let nai = base == "ない" && (last.pos == Pos::AuxVerb || last.pos == Pos::Adjective);
                if nai && prev.pos == Pos::Adjective && ends_q {
                    emit(Cue { key: Key::Name("ja.tok.adj_nai_q"), rule: None, span: (span_of(prev).0, span.1) });
                }
                emit(Cue { key: Key::Pair(tokens.base(prev), base), rule: None, span: (span_of(prev).0, span.1) });
            }
            emit(Cue { key: word(WordFeature::End), rule: None, span });
        }
        // A wh-word among the last words, past sentence-final particles, asks (産地どこ, 保証何年,
        // 何歳から): chat leaves out the ending that would say so.
        let tail = tokens
            .list
            .iter()
            .rev()
            .filter(is_word)
            .skip_while(|t| t.pos == Pos::Particle && TRAILING.contains(&tokens.base(t)))
            .take(2);
        for t in tail {
            let (base, surface) = (tokens.base(t), &surface[t.start as usize..t.end as usize]);
            let start = norm.surface.original_span(t.start as usize, t.end as usize).0;
            if (starts_with_wh(base) || starts_with_wh(surface)) && !concessive(norm, tokens, start) {
                emit(Cue { key: Key::Name("ja.tok.wh_end"), rule: None, span: span_of(t) });
                break;
            }
        }
        for t in tokens.list.iter().filter(is_word) {
            let key = Key::Word { kind: WordFeature::Word, base: tokens.base(t), word: t.word() };
            emit(Cue { key, rule: None, span: span_of(t) });
        }
    }
}

/// Whether the interrogative word at byte `start` of the original text stands in a concessive
/// clause (何回洗っても, 何でも, いくら食べても): it then asks nothing. The clause is read from the
/// word to a symbol, a gap between words, a sentence-final particle or the message's end.
fn concessive(norm: &Normalized, tokens: &Tokens, start: usize) -> bool {
    let surface = norm.surface.as_str();
    let original_end = |t: &Token| norm.surface.original_span(t.start as usize, t.end as usize).1;
    let Some(first) = tokens.list.iter().position(|t| original_end(t) > start) else { return false };
    let mut prev: Option<&Token> = None;
    for t in &tokens.list[first..] {
        let gap = prev.is_some_and(|p| p.end != t.start);
        let symbol =
            t.pos == Pos::Symbol || !surface[t.start as usize..t.end as usize].chars().any(char::is_alphanumeric);
        if gap || symbol || (t.pos == Pos::Particle && matches!(t.sub, Sub::Final | Sub::AdverbialFinal)) {
            return false;
        }
        if t.pos == Pos::Particle {
            let base = tokens.base(t);
            let after_te = prev.is_some_and(|p| p.pos == Pos::Particle && matches!(tokens.base(p), "て" | "で"));
            if matches!(base, "でも" | "ても") || (base == "も" && after_te) {
                return true;
            }
        }
        prev = Some(t);
    }
    false
}

/// Particles that may end a question after its wh-word (保証何年かな, 何歳から).
const TRAILING: [&str; 14] =
    ["か", "の", "よ", "ね", "な", "は", "って", "かな", "から", "まで", "くらい", "ぐらい", "ほど", "ん"];

/// Words that ask, as base forms or surfaces begin.
const WH: [&str; 21] = [
    "何",
    "なに",
    "なん",
    "どこ",
    "どれ",
    "どの",
    "どう",
    "どっち",
    "どちら",
    "いつ",
    "いくら",
    "いくつ",
    "おいくら",
    "誰",
    "だれ",
    "なんぼ",
    "どんな",
    "なぜ",
    "何故",
    "どない",
    "どんくらい",
];

/// Whether a word begins with one of [`WH`]. Its first character rules out most words before
/// any comparison: every wh-word begins with one of these.
fn starts_with_wh(word: &str) -> bool {
    matches!(word.chars().next(), Some('何' | 'な' | 'ど' | 'い' | 'お' | '誰' | 'だ'))
        && WH.iter().any(|w| word.starts_with(w))
}

/// Quotation marks that open and close a quoted stretch.
const QUOTES: [(char, char); 5] = [('「', '」'), ('『', '』'), ('“', '”'), ('"', '"'), ('《', '》')];

/// Byte ranges of the key view inside quotation marks (an unclosed quote runs to the end).
fn quote_spans(key: &str) -> smallvec::SmallVec<[(usize, usize); 2]> {
    let mut spans = smallvec::SmallVec::new();
    let mut open: Option<(usize, char)> = None;
    for (i, c) in key.char_indices() {
        match open {
            Some((start, close)) if c == close => {
                spans.push((start, i));
                open = None;
            }
            None => {
                if let Some(&(_, close)) = QUOTES.iter().find(|(o, _)| *o == c) {
                    open = Some((i + c.len_utf8(), close));
                }
            }
            _ => {}
        }
    }
    if let Some((start, _)) = open {
        spans.push((start, key.len()));
    }
    spans
}

/// What follows a term that is being talked about rather than used, in the key view
/// (hiragana-folded): 詐欺とか言う人, ブスって書いてる, サクラじゃなくて.
const MENTION_TAILS: [&str; 17] = [
    "とかいう",
    "とか言",
    "とかゆう",
    "とか書",
    "とかかく",
    "とかかい",
    "とか聞",
    "っていう",
    "って言",
    "ってゆう",
    "って書",
    "ってかい",
    "ってかく",
    "って聞",
    "呼ばわり",
    "とかじゃな",
    "じゃなくて",
];

/// Whether the key-view match `start..end` is quoted or talked about.
fn is_mentioned(key: &str, quotes: &[(usize, usize)], start: usize, end: usize) -> bool {
    if quotes.iter().any(|&(a, b)| a <= start && end <= b) {
        return true;
    }
    let after = key.get(end..).unwrap_or("");
    let after = after.trim_start_matches(['」', '』', '”', '"']);
    MENTION_TAILS.iter().any(|t| after.starts_with(t))
}

/// The key's letters ([`ngram::letters`]) and buffers for matching them without the symbols
/// between them.
#[derive(Debug, Default)]
pub(super) struct Letters {
    pub(super) units: Vec<ngram::Unit>,
    /// The letters joined.
    text: String,
    /// Byte offset in `text` of each letter (the units without the marks).
    starts: Vec<u32>,
    hits: Vec<Hit>,
}

impl Letters {
    /// Reads the letters of `key`.
    pub(super) fn read(&mut self, key: &str) {
        ngram::letters(key, &mut self.units);
    }

    /// Whether something other than letters and sentence punctuation stands between two letters
    /// of `key` (an emoji, ◯, ✖: what evasions put inside words).
    fn has_gaps(&self, key: &str) -> bool {
        let letters = self.units.get(1..self.units.len().saturating_sub(1)).unwrap_or(&[]);
        letters.windows(2).any(|w| {
            w[0].end != w[1].start
                && key[w[0].end as usize..w[1].start as usize]
                    .chars()
                    .any(|c| !matches!(c, '!' | '?' | '！' | '？' | 'ー' | '」' | '「' | '…' | '‥' | '~'))
        })
    }

    /// Joins the letters into `text`.
    fn join(&mut self) {
        self.text.clear();
        self.starts.clear();
        for u in self.units.iter().filter(|u| !matches!(u.unit, ngram::START | ngram::END)) {
            self.starts.push(self.text.len() as u32);
            self.text.push(char::from_u32(u.unit).unwrap_or('\u{FFFD}'));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wh_word_passes_the_first_character_filter() {
        for w in WH {
            assert!(starts_with_wh(w), "{w}");
            assert!(starts_with_wh(&format!("{w}ですか")), "{w}");
        }
        assert!(!starts_with_wh("サイズ"));
        assert!(!starts_with_wh(""));
    }
}
