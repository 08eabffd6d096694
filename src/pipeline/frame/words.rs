//! The word lists and helpers a frame is built with: stop words, show verbs, units of an amount
//! asked, the kind of ask from rules and tokens, character bigrams, and romaji read as kana.

use smallvec::SmallVec;

use super::Ask;
use crate::pipeline::tokenize::{Pos, Token, Tokens};

/// Whether a content word says nothing about what a question is about.
///
/// A `match` rather than a list: each arm compares with a constant of known length, which
/// compiles to a few integer comparisons instead of a `memcmp` call per entry.
pub(super) fn is_stop_word(word: &str) -> bool {
    matches!(
        word,
        "する"
            | "ある"
            | "いる"
            | "なる"
            | "できる"
            | "れる"
            | "られる"
            | "いう"
            | "思う"
            | "くれる"
            | "みる"
            | "もらう"
            | "いただく"
            | "くださる"
            | "大丈夫"
            | "これ"
            | "それ"
            | "あれ"
            | "どれ"
            | "何"
            | "なに"
            | "ない"
            | "よい"
            | "いい"
            | "感じ"
            | "方"
            | "こと"
            | "もの"
            | "の"
            | "ん"
            | "さん"
            | "今"
            | "まだ"
            | "教える"
            | "見せる"
            | "ちゃん"
            | "店長"
            | "ござる"
            | "です"
            | "ます"
            | "いける"
            | "いく"
            | "ok"
            | "OK"
            | "オッケー"
            | "やつ"
            | "ほう"
            | "どう"
            | "どこ"
            | "いつ"
            | "いくら"
            | "おいくら"
            | "どの"
            | "どんな"
            | "くらい"
            | "ぐらい"
            | "ほしい"
            | "欲しい"
            | "わかる"
            | "分かる"
            | "知る"
            | "聞く"
            | "お願い"
            | "願う"
            | "すみません"
    )
}

/// Whether a verb's て-form request asks the host to show or do something on screen.
pub(super) fn is_show_verb(word: &str) -> bool {
    matches!(
        word,
        "見せる"
            | "着る"
            | "つける"
            | "付ける"
            | "塗る"
            | "使う"
            | "開ける"
            | "持つ"
            | "履く"
            | "はく"
            | "当てる"
            | "合わせる"
            | "回る"
            | "映す"
            | "寄る"
            | "点ける"
            | "座る"
            | "広げる"
            | "透かす"
            | "比べる"
            | "並べる"
            | "乗る"
            | "動かす"
            | "入れる"
            | "置く"
            | "やる"
            | "回す"
            | "見る"
            | "羽織る"
            | "巻く"
            | "押す"
            | "切る"
            | "焼く"
            | "試す"
            | "かける"
            | "振る"
            | "伸ばす"
            | "閉める"
            | "畳む"
    )
}

/// The unit of an amount asked (`何センチ` → `cm`), by canonical name.
pub(super) fn unit_asked(tokens: &Tokens, surface: &str) -> Option<&'static str> {
    let word = |t: &crate::pipeline::tokenize::Token| &surface[t.start as usize..t.end as usize];
    for (i, t) in tokens.list.iter().enumerate() {
        if !matches!(word(t), "何" | "なん" | "なに") {
            continue;
        }
        // The counter may be split from 何 or follow it in the same token run (何cm): the next
        // two words, read as one, lowercased (without building the string).
        let next = Lowered::head(tokens.list[i + 1..].iter().take(2).flat_map(|t| word(t).chars()));
        for (prefixes, unit) in UNITS {
            if prefixes.iter().any(|p| next.starts_with(p)) {
                return Some(unit);
            }
        }
    }
    None
}

/// The first characters of a text, lowercased, for comparing with unit spellings without
/// lowercasing (and allocating) the whole text.
pub(super) struct Lowered(SmallVec<[char; LOWERED]>);

/// Characters kept by [`Lowered`]: more than the longest unit spelling (ミリリットル, 6).
pub(super) const LOWERED: usize = 12;

impl Lowered {
    /// The head of `text`, lowercased as `str::to_lowercase` would (but for the final sigma,
    /// which it spells by context: no unit spelling has Greek letters).
    pub(super) fn head(text: impl Iterator<Item = char>) -> Self {
        Self(text.flat_map(char::to_lowercase).take(LOWERED).collect())
    }

    /// Whether the lowercased text starts with `prefix` (one of at most [`LOWERED`] characters).
    pub(super) fn starts_with(&self, prefix: &str) -> bool {
        let mut head = self.0.iter();
        prefix.chars().all(|p| head.next() == Some(&p))
    }
}

/// Counters after 何 and the amount they ask for; longer spellings first where they overlap.
/// Units of one dimension ask for one amount (何キロ and 何グラム both ask the weight; 何センチ
/// and 何ミリ the length), so they name one value: otherwise 何キロ？ could never join a card
/// holding 重さ何gですか.
pub(super) const UNITS: &[(&[&str], &str)] = &[
    (&["センチ", "cm", "せんち"], "length"),
    (&["ミリリットル", "ml", "cc"], "volume"),
    (&["ミリ", "mm"], "length"),
    (&["メートル"], "length"),
    (&["キロ", "kg"], "weight"),
    (&["グラム", "g"], "weight"),
    (&["リットル", "l"], "volume"),
    (&["人", "名"], "people"),
    (&["歳", "才", "さい", "代"], "age"),
    (&["ヶ月", "か月", "カ月", "ヵ月"], "months"),
    (&["年"], "years"),
    (&["日", "曜"], "days"),
    (&["時間"], "hours"),
    (&["分"], "minutes"),
    (&["時"], "clock"),
    (&["回"], "times"),
    (&["色", "カラー"], "colors"),
    (&["号"], "ring_size"),
    (&["ワット", "w"], "watts"),
    (&["円", "えん"], "yen"),
    (&["%", "パーセント", "％"], "percent"),
    (&["個", "枚", "本", "足", "着", "点", "袋", "箱", "粒", "錠", "杯", "切れ", "食"], "pieces"),
    (&["段", "階"], "levels"),
    (&["畳"], "tatami"),
    (&["インチ"], "length"),
    (&["デシベル", "db"], "db"),
];

/// Units after a number that measure the asker or the thing (not name a product or a size).
pub(super) const MEASURES: &[&str] = &[
    "length", "weight", "volume", "age", "months", "years", "days", "hours", "minutes", "yen", "percent", "people",
    "watts", "db", "tatami",
];

/// The ask a question-cue rule implies.
pub(super) fn ask_of_rule(id: &str) -> Option<Ask> {
    Some(match id {
        "ja.question.exists" => Ask::Exists,
        "ja.question.can" => Ask::Can,
        _ => return None,
    })
}

/// The ask the words imply: interrogatives, and a request verb in て-form.
pub(super) fn ask_of_tokens(tokens: &Tokens, surface: &str, keep: impl Fn(&Token) -> bool) -> Ask {
    let mut ask = Ask::Unknown;
    for (i, t) in tokens.list.iter().enumerate() {
        if !keep(t) {
            continue;
        }
        let s = &surface[t.start as usize..t.end as usize];
        let base = tokens.base(t);
        let next = tokens.list.get(i + 1).map(|n| &surface[n.start as usize..n.end as usize]);
        let found = match base {
            "いくら" | "おいくら" | "いくつ" | "なんぼ" | "どのくらい" | "どれくらい" | "どれぐらい" | "どのぐらい" => {
                Ask::Amount
            }
            "いつ" | "いつ頃" | "いつごろ" => Ask::When,
            "どれ" | "どっち" | "どちら" | "どの" => Ask::Which,
            "どこ" => Ask::Where,
            "方法" | "やり方" | "仕方" | "どうやって" => Ask::How,
            "何" | "なん" | "なに" => match next {
                Some(n) if n.starts_with('色') => Ask::Which,
                Some(n) if n.starts_with('日') || n.starts_with('時') || n.starts_with("曜") => Ask::When,
                Some(n) if n.chars().next().is_some_and(|c| c.is_alphanumeric()) => Ask::Amount,
                _ => Ask::Unknown,
            },
            _ if s == "どう" && next.is_some_and(|n| n.starts_with('や')) => Ask::How,
            _ if t.pos == Pos::Verb && is_show_verb(base) => {
                let te = next.is_some_and(|n| n.starts_with('て') || n.starts_with('で'));
                if te { Ask::Show } else { Ask::Unknown }
            }
            _ => Ask::Unknown,
        };
        if found != Ask::Unknown && ask == Ask::Unknown {
            ask = found;
        }
    }
    ask
}

/// Character bigrams of a word, katakana folded to hiragana and ASCII lowercased; a one-kanji
/// word is its own gram.
pub(super) fn push_grams(word: &str, mut push: impl FnMut(u64)) {
    gram_pairs(word, |a, b| push(gram_hash(a, b)));
}

/// The character pairs [`push_grams`] hashes: folded, letters and digits only; a lone kanji is
/// paired with a space.
fn gram_pairs(word: &str, mut pair: impl FnMut(char, char)) {
    let fold = |c: char| match c as u32 {
        u @ 0x30A1..=0x30F6 => char::from_u32(u - 0x60).unwrap_or(c),
        _ => c.to_ascii_lowercase(),
    };
    // Pairs as the characters come (no buffer of them): the previous one and how many so far.
    let (mut prev, mut count) = (' ', 0usize);
    for c in word.chars().map(fold).filter(|c| c.is_alphanumeric()) {
        if count > 0 {
            pair(prev, c);
        }
        prev = c;
        count += 1;
    }
    if count == 1 && ('一'..='鿿').contains(&prev) {
        pair(prev, ' ');
    }
}

/// The hash of a character pair, as frames hold it.
pub fn gram_hash(a: char, b: char) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write_u32(a as u32);
    h.write_u32(b as u32);
    h.write_u8(0x67);
    h.finish()
}

/// Hash of a word with katakana folded to hiragana and ASCII lowercased, without allocating.
pub fn fold_hash(word: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    for c in word.chars() {
        let c = match c as u32 {
            u @ 0x30A1..=0x30F6 => char::from_u32(u - 0x60).unwrap_or(c),
            _ => c.to_ascii_lowercase(),
        };
        h.write_u32(c as u32);
    }
    h.finish()
}

/// Latin words of chat that read as English or as codes, never as romaji (`line` would read
/// as りね, `size` as しぜ): kept as written.
pub(super) const NOT_ROMAJI: &[&str] = &[
    "line", "size", "ok", "dm", "url", "www", "http", "https", "com", "jp", "net", "sns", "app", "web", "pay",
    "paypay", "free", "sale", "set", "type", "plus", "pro", "max", "mini", "new", "one", "time", "live", "the", "see",
    "home", "came", "game", "rate", "note",
];

/// Latin words that are English and romaji alike (`no` の, `go` 後, `made` まで): they say
/// nothing of which the line is, and read as kana when the rest of the line is romaji.
pub(super) const EITHER: &[&str] = &["no", "to", "so", "do", "go", "me", "are", "take", "made", "same"];

/// The text with its romaji words in hiragana, when it reads as romaji Japanese (`souryou
/// ikura?` → `そうりょう いくら？`): a Latin word of two letters or more that converts wholly to
/// kana and is not also English, with another such word or one that reads either way (`no`,
/// `go`), or alone when it is four letters or more (`ikura?`); and three in four of its Latin
/// words read as romaji. Single letters (sizes S, M, L) and English words stay.
pub fn romaji_to_kana(text: &str) -> Option<String> {
    use wana_kana::ConvertJapanese;
    // No Latin letter, no romaji word (most lines): nothing to convert, no buffer.
    if !text.bytes().any(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let (mut words, mut clean, mut either, mut longest) = (0, 0, 0, 0);
    let mut out = String::with_capacity(text.len() * 2);
    let mut rest = text;
    while !rest.is_empty() {
        let latin = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        if latin == 0 {
            let c = rest.chars().next()?;
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let word = &rest[..latin];
        rest = &rest[latin..];
        if word.len() < 2 {
            out.push_str(word);
            continue;
        }
        let lower = word.to_ascii_lowercase();
        words += 1;
        let kana = match lower.as_str() {
            "wa" => Some("は".to_string()),
            "wo" => Some("を".to_string()),
            w if NOT_ROMAJI.contains(&w) => None,
            w => Some(w.to_hiragana()).filter(|k| !k.chars().any(|c| c.is_ascii_alphabetic())),
        };
        match kana {
            Some(k) => {
                if EITHER.contains(&lower.as_str()) {
                    either += 1;
                } else {
                    clean += 1;
                    longest = longest.max(word.len());
                }
                out.push_str(&k);
            }
            None => out.push_str(word),
        }
    }
    let enough = clean >= 2 || (clean == 1 && (either >= 1 || (words == 1 && longest >= 4)));
    (enough && (clean + either) * 4 >= words * 3).then_some(out)
}
