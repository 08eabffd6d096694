//! Character n-grams of the matching key, fastText-style: features that still carry signal
//! for wordings no dictionary lists (compounds, misspellings, insults built from everyday
//! words, evasions with emoji between the letters).
//!
//! The n-grams are taken over the key view's letters only (kana, kanji, Latin letters and
//! digits: symbols, emoji and punctuation are skipped, so `ぶ💢す` reads `ぶす`), with a start
//! mark `^` and an end mark `$` around the message (the long vowel mark `ー` is no letter here). Each is looked up by a 64-bit hash of its
//! characters, computed incrementally, so classifying never spells one out; the model file
//! lists them by text (`c:^ぶす`), and loading hashes each row the same way.

use std::hash::Hasher;

use rustc_hash::FxHasher;

/// The unit standing for the start of the message (beyond the range of `char`).
pub const START: u32 = 0x11_0000;
/// The unit standing for the end of the message.
pub const END: u32 = 0x11_0001;

/// Prefix of n-gram feature names in the model file.
pub const PREFIX: &str = "c:";

/// One unit of the letters of a key: a character (or [`START`]/[`END`]) and its byte range in
/// the key view.
#[derive(Debug, Clone, Copy)]
pub struct Unit {
    /// The character as a `u32`, or [`START`] / [`END`].
    pub unit: u32,
    /// Start of the character in the key view, in bytes (the marks cover nothing: both ends at 0 or
    /// at the key's length).
    pub start: u32,
    /// End of the character in the key view, in bytes, exclusive.
    pub end: u32,
}

/// Whether a key character takes part in n-grams. The long vowel mark does not: it stretches
/// (かわいいー) or separates (ー L ー I ー N ー E ー) more often than it spells.
fn is_letter(c: char) -> bool {
    match c {
        'a'..='z' | 'A'..='Z' | '0'..='9' | 'ぁ'..='ゖ' | 'ァ'..='ヺ' | '一'..='鿿' => true,
        'ー' | '\0'..='\u{7f}' => false,
        _ => c.is_alphanumeric(),
    }
}

/// The letters of `key` between a start and an end mark, into `out`.
pub fn letters(key: &str, out: &mut Vec<Unit>) {
    out.clear();
    out.push(Unit { unit: START, start: 0, end: 0 });
    for (i, c) in key.char_indices() {
        if is_letter(c) {
            out.push(Unit { unit: c as u32, start: i as u32, end: (i + c.len_utf8()) as u32 });
        }
    }
    let len = key.len() as u32;
    out.push(Unit { unit: END, start: len, end: len });
}

/// Calls `f(hash, units)` for every n-gram of `units` with `min..=max` units that has at least
/// one letter in it (a mark alone, or `^$` of an empty message, is no n-gram).
pub fn each(units: &[Unit], min: usize, max: usize, mut f: impl FnMut(u64, &[Unit])) {
    if min == 0 || max < min {
        return;
    }
    for i in 0..units.len() {
        let mut h = FxHasher::default();
        for n in 1..=max.min(units.len() - i) {
            h.write_u32(units[i + n - 1].unit);
            if n < min {
                continue;
            }
            let gram = &units[i..i + n];
            if n == 1 && matches!(gram[0].unit, START | END) || n == 2 && gram[0].unit == START && gram[1].unit == END {
                continue;
            }
            f(h.finish(), gram);
        }
    }
}

/// The key-view byte range an n-gram covers (the marks cover nothing).
pub fn span(gram: &[Unit]) -> (u32, u32) {
    let mut letters = gram.iter().filter(|u| !matches!(u.unit, START | END));
    match (letters.next(), letters.next_back()) {
        (Some(a), Some(b)) => (a.start, b.end),
        (Some(a), None) => (a.start, a.end),
        _ => (gram[0].start, gram[0].start),
    }
}

/// The feature name of an n-gram: `c:` and its characters, `^` and `$` for the marks.
pub fn name(gram: &[Unit], out: &mut String) {
    out.clear();
    out.push_str(PREFIX);
    for u in gram {
        match u.unit {
            START => out.push('^'),
            END => out.push('$'),
            c => out.push(char::from_u32(c).unwrap_or('\u{FFFD}')),
        }
    }
}

/// The hash and length of an n-gram named in a model file (`c:^ぶす`), if the name is one.
pub fn parse(name: &str) -> Option<(u64, usize)> {
    let body = name.strip_prefix(PREFIX)?;
    let mut h = FxHasher::default();
    let mut len = 0;
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        let unit = match c {
            '^' if len == 0 => START,
            '$' if chars.peek().is_none() => END,
            c if is_letter(c) => c as u32,
            _ => return None,
        };
        h.write_u32(unit);
        len += 1;
    }
    (len > 0).then(|| (h.finish(), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grams(key: &str, min: usize, max: usize) -> Vec<String> {
        let mut units = Vec::new();
        letters(key, &mut units);
        let mut out = Vec::new();
        each(&units, min, max, |_, g| {
            let mut s = String::new();
            name(g, &mut s);
            out.push(s);
        });
        out
    }

    #[test]
    fn grams_skip_symbols_and_carry_the_marks() {
        assert_eq!(grams("ぶ💢す", 2, 3), ["c:^ぶ", "c:^ぶす", "c:ぶす", "c:ぶす$", "c:す$"]);
        assert_eq!(grams("あ", 1, 2), ["c:^あ", "c:あ", "c:あ$"]);
        assert!(grams("!!", 1, 3).is_empty(), "no letters, no n-grams");
    }

    #[test]
    fn names_hash_like_the_text_they_came_from() {
        let mut units = Vec::new();
        letters("こ ろ す", &mut units);
        let mut seen = Vec::new();
        each(&units, 1, 4, |h, g| {
            let mut s = String::new();
            name(g, &mut s);
            seen.push((h, s, g.len()));
        });
        assert!(!seen.is_empty());
        for (h, s, n) in seen {
            assert_eq!(parse(&s), Some((h, n)), "{s}");
        }
        assert_eq!(parse("c:a^b"), None, "a mark inside is no n-gram name");
        assert_eq!(parse("w:ころす"), None);
    }

    #[test]
    fn spans_cover_the_letters() {
        let mut units = Vec::new();
        letters("ぶ💢す", &mut units);
        assert_eq!(span(&units[0..2]), (0, "ぶ".len() as u32));
        assert_eq!(span(&units[1..4]), (0, "ぶ💢す".len() as u32));
        assert_eq!(span(&units[2..4]), ("ぶ💢".len() as u32, "ぶ💢す".len() as u32));
    }
}
