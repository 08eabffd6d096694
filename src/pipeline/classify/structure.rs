//! Structural cues: floods, URLs, phone numbers, ID-like handles, decoration.

use crate::pipeline::tokenize::{Pos, Token};

/// Emoji, kaomoji parts and other decoration that says nothing about mood.
pub(super) fn is_decoration(c: char) -> bool {
    let u = c as u32;
    (0x1F000..=0x1FAFF).contains(&u)
        || (0x2600..=0x27BF).contains(&u)
        || (0x2190..=0x21FF).contains(&u)
        || (0x2B00..=0x2BFF).contains(&u)
        || matches!(
            c,
            '♪' | '♡'
                | '♥'
                | '☆'
                | '★'
                | '〜'
                | '~'
                | 'ー'
                | '…'
                | '‥'
                | '。'
                | '.'
                | '、'
                | ','
                | '・'
                | '｡'
                | '^'
                | '*'
                | '('
                | ')'
                | '（'
                | '）'
                | '´'
                | '`'
                | '＾'
                | '_'
                | 'w'
                | 'W'
                | '笑'
                | '草'
                | '!'
                | '！'
        )
}

fn is_decoration_token(surface: &str, t: &Token) -> bool {
    let s = &surface[t.start as usize..t.end as usize];
    s.chars().all(|c| is_decoration(c) || c.is_whitespace())
}

/// Whether a token is a word that can carry a message's mood: not a symbol, not decoration.
pub(super) fn is_word_token(surface: &str, t: &Token) -> bool {
    t.pos != Pos::Symbol && !is_decoration_token(surface, t)
}

/// Longest unit of a flood, in characters (ランドセル repeated is one).
const FLOOD_UNIT: usize = 8;

/// A unit of 1–8 characters repeated 8+ times in a row (applause `8888` excepted; laughter
/// `ｗ`/`草`/`笑` needs 15).
pub fn is_flood(surface: &str) -> bool {
    is_flood_with(surface, &mut Vec::new())
}

/// [`is_flood`] with a reusable buffer.
pub(super) fn is_flood_with(surface: &str, chars: &mut Vec<char>) -> bool {
    if surface.len() < 8 {
        return false;
    }
    chars.clear();
    chars.extend(surface.chars().filter(|c| !c.is_whitespace()));
    if chars.len() < 8 {
        return false;
    }
    // A unit of `u` characters repeated `r` times is a stretch where chars[i] == chars[i + u]
    // holds for (r - 1) × u positions in a row: one linear scan per unit length.
    // A flood of units of `unit` characters is at least 8 × `unit` long.
    for unit in 1..=FLOOD_UNIT.min(chars.len() / 8) {
        let mut run = 0usize;
        for i in 0..chars.len().saturating_sub(unit) {
            if chars[i] == chars[i + unit] {
                run += 1;
            } else {
                run = 0;
                continue;
            }
            // Even the loosest threshold (8 repeats) is not reached yet.
            if run + unit < 8 * unit {
                continue;
            }
            let start = i + 1 - run;
            let u = &chars[start..start + unit];
            // A unit that is itself a shorter unit repeated is that unit's run.
            if (1..unit).any(|d| unit % d == 0 && u.chunks(d).all(|c| c == &u[..d])) {
                continue;
            }
            let applause = u.iter().all(|c| matches!(c, '8' | '８' | '👏' | '!' | '！'));
            let laugh = u.iter().all(|c| matches!(c, 'w' | 'W' | 'ｗ' | 'Ｗ' | '草' | '笑'));
            let need = if laugh { 15 } else { 8 };
            if !applause && run + unit >= need * unit {
                return true;
            }
        }
    }
    false
}

/// Domains spelled out so that no link is recognized: `example。com`, `ドットcom`, `(dot)jp`.
const SPELLED_DOTS: [&str; 14] = [
    "。com",
    "。jp",
    "。net",
    "。co",
    "。こむ",
    "ドットcom",
    "ドットjp",
    "ドットこむ",
    "どっとcom",
    "どっとこむ",
    "(dot)",
    "[dot]",
    " dot com",
    "dotcom",
];

/// Whether `s` starts with `pat`, ASCII letters compared without case.
fn starts_with_nocase(s: &str, pat: &str) -> bool {
    s.len() >= pat.len() && s.as_bytes()[..pat.len()].eq_ignore_ascii_case(pat.as_bytes())
}

pub(super) fn find_url(s: &str) -> Option<(usize, usize)> {
    // Spelled domains: one pass, looking closer only where one of them could start, and only in
    // text that has what every one of them has (。, ドット, どっと or dot).
    // One pass over the bytes says which patterns can be there: '.' or '/' for links, and for
    // spelled ones 。 (E3 80 82), ッ (E3 83 83), っ (E3 81 A3) or a 'd'.
    let b = s.as_bytes();
    let (mut linked, mut spelled) = (false, false);
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'.' | b'/' => linked = true,
            b'd' | b'D' => spelled = true,
            0xE3 => {
                spelled |= matches!(b.get(i + 1..i + 3), Some([0x80, 0x82] | [0x83, 0x83] | [0x81, 0xA3]));
            }
            _ => {}
        }
    }
    for (i, c) in s.char_indices().filter(|_| spelled) {
        if !matches!(c, '。' | 'ド' | 'ど' | '(' | '[' | ' ' | 'd' | 'D') {
            continue;
        }
        let rest = &s[i..];
        if let Some(pat) = SPELLED_DOTS.iter().find(|p| starts_with_nocase(rest, p)) {
            let start = s[..i].rfind(char::is_whitespace).map_or(0, |p| p + 1);
            return Some((start, i + pat.len()));
        }
    }
    // Every pattern below has a '.' or a '/'; most chat has neither.
    if !linked {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    for pat in ["http://", "https://", "www.", "bit.ly", "t.co/", "lin.ee", "line.me"] {
        if let Some(i) = lower.find(pat) {
            let end = lower[i..].find(|c: char| c.is_whitespace() || !c.is_ascii()).map_or(lower.len(), |e| i + e);
            return Some((i, end));
        }
    }
    for tld in [".com", ".jp", ".net", ".ly", ".xyz", ".info", ".io", ".me"] {
        if let Some(i) = lower.find(tld) {
            let start =
                lower[..i].rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.')).map_or(0, |p| p + 1);
            if i > start + 1 {
                return Some((start, i + tld.len()));
            }
        }
    }
    None
}

pub(super) fn find_phone(s: &str) -> Option<(usize, usize)> {
    // Ten or more digits with at most dashes (of any width and kind), spaces or a leading +
    // between them (090-1234-5678, 080ー9876ー5432, +81 90 …).
    let joins = |c: char| matches!(c, '-' | ' ' | 'ー' | '−' | '‐' | '―' | '–' | '+' | '(' | ')');
    let mut chars = s.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !c.is_ascii_digit() {
            continue;
        }
        let (mut digits, mut end) = (1, start + 1);
        while let Some(&(i, c)) = chars.peek() {
            if c.is_ascii_digit() {
                digits += 1;
                end = i + 1;
            } else if !joins(c) {
                break;
            }
            chars.next();
        }
        if digits >= 10 {
            return Some((start, end));
        }
    }
    None
}

/// Income as money schemes state it: 月10万, 日給3万, 50万稼. The byte range.
pub(super) fn find_income(s: &str) -> Option<(usize, usize)> {
    let i = s.find('万')?;
    let digits = s[..i].trim_end_matches(|c: char| c.is_ascii_digit());
    if digits.len() == i {
        return None;
    }
    let before = digits.trim_end_matches(['収', '給']).chars().next_back();
    let after = &s[i + '万'.len_utf8()..];
    let after = after.strip_prefix('円').unwrap_or(after);
    let earns = matches!(before, Some('月' | '日' | '週' | '年')) || after.starts_with(['稼', '以', 'も', '↑']);
    earns.then(|| (digits.len().saturating_sub(3), i + '万'.len_utf8()))
}

pub(super) fn find_handle(s: &str) -> Option<(usize, usize)> {
    // An ID-looking latin token: letters and digits (or _) mixed, 5+ characters (abc123, kira_ac).
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphanumeric() || b[i] == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            let tok = &s[start..i];
            let has_alpha = tok.bytes().any(|c| c.is_ascii_alphabetic());
            let has_other = tok.bytes().any(|c| c.is_ascii_digit() || c == b'_');
            if tok.len() >= 5 && has_alpha && has_other {
                return Some((start, i));
            }
        } else {
            i += 1;
        }
    }
    None
}

/// Counters that follow a number in an order (2個, 1台, 3点, 10キロ), longest first where one
/// starts another.
const COUNTERS: [&str; 38] = [
    "セット",
    "パック",
    "ケース",
    "キロ",
    "kg",
    "set",
    "pcs",
    "人分",
    "人前",
    "切れ",
    "つ",
    "個",
    "こ",
    "コ",
    "台",
    "点",
    "本",
    "枚",
    "箱",
    "袋",
    "杯",
    "尾",
    "足",
    "着",
    "脚",
    "組",
    "缶",
    "瓶",
    "口",
    "食",
    "玉",
    "束",
    "匹",
    "羽",
    "冊",
    "粒",
    "品",
    "g",
];

/// Kanji and kana numbers that stand for a count.
const WORD_COUNTS: [&str; 12] =
    ["ひとつ", "ふたつ", "みっつ", "よっつ", "いつつ", "一つ", "二つ", "三つ", "四つ", "五つ", "いっこ", "にこ"];

/// The kana or kanji count starting at the start of `s`, if one does ([`WORD_COUNTS`]).
fn word_count(c: char, s: &str) -> Option<&'static str> {
    let candidates: &[&'static str] = match c {
        'ひ' => &WORD_COUNTS[0..1],
        'ふ' => &WORD_COUNTS[1..2],
        'み' => &WORD_COUNTS[2..3],
        'よ' => &WORD_COUNTS[3..4],
        'い' => &[WORD_COUNTS[4], WORD_COUNTS[10]],
        '一' | '二' | '三' | '四' | '五' => &WORD_COUNTS[5..10],
        'に' => &WORD_COUNTS[11..12],
        _ => return None,
    };
    candidates.iter().copied().find(|w| s.starts_with(w))
}

/// A count as orders say it: a number and a counter (2個, 1台, ３点, 十本), a kana or kanji count
/// (ひとつ, 二つ), `各1`/`×2`, or a bare number ending a short message (日焼け止め 2). The byte
/// range of the first.
pub(super) fn find_count(s: &str) -> Option<(usize, usize)> {
    let mut chars = s.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let mut end = start + c.len_utf8();
        let kanji = match c {
            '0'..='9' => {
                while let Some(&(i, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
                    end = i + d.len_utf8();
                    chars.next();
                }
                None
            }
            '一' | '二' | '三' | '四' | '五' | '六' | '七' | '八' | '九' | '十' => {
                if let Some(w) = word_count(c, &s[start..]) {
                    return Some((start, start + w.len()));
                }
                Some(c)
            }
            'ひ' | 'ふ' | 'み' | 'よ' | 'い' | 'に' => {
                if let Some(w) = word_count(c, &s[start..]) {
                    return Some((start, start + w.len()));
                }
                continue;
            }
            _ => continue,
        };
        let rest = &s[end..];
        let before = s[..start].chars().next_back();
        if let Some(c) = COUNTERS.iter().find(|c| rest.starts_with(**c)) {
            // Not a size or model number run into a counter-like letter (5kg is a count, M5g is not).
            if kanji.is_none() || c.chars().next().is_some_and(|c| !c.is_ascii()) {
                return Some((start, end + c.len()));
            }
        }
        if let Some(mark @ ('各' | '×' | 'x' | '*')) = before.filter(|_| kanji.is_none()) {
            return Some((start - mark.len_utf8(), end));
        }
        let tail = rest.trim_end_matches(|c: char| c.is_whitespace() || is_decoration(c));
        if kanji.is_none() && tail.is_empty() && before.is_some_and(char::is_whitespace) && s.len() <= 72 {
            return Some((start, end));
        }
    }
    None
}

/// A pick by number: 3番, No.7, ＃5. The byte range.
pub(super) fn find_pick(s: &str) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    for (p, &c) in b.iter().enumerate() {
        if !matches!(c, b'#' | b'n' | b'N') {
            continue;
        }
        let Some(prefix) = ["no.", "no ", "#"].into_iter().find(|x| starts_with_nocase(&s[p..], x)) else { continue };
        let digits = &s[p + prefix.len()..];
        if digits.starts_with(|c: char| c.is_ascii_digit()) {
            let end = digits.find(|c: char| !c.is_ascii_digit()).map_or(s.len(), |e| p + prefix.len() + e);
            return Some((p, end));
        }
    }
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if s[i..].starts_with('番') {
                return Some((start, i + '番'.len_utf8()));
            }
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floods_are_units_repeated_eight_times() {
        assert!(is_flood("ああああああああああ"));
        assert!(is_flood("荒らし荒らし荒らし荒らし荒らし荒らし荒らし荒らし"));
        assert!(is_flood("🎁🎁🎁🎁🎁🎁🎁🎁🎁🎁"));
        assert!(!is_flood("88888888888"));
        assert!(!is_flood("ｗｗｗｗｗｗｗｗｗｗ"));
        assert!(is_flood("ｗｗｗｗｗｗｗｗｗｗｗｗｗｗｗｗｗｗｗｗ"));
        assert!(!is_flood("かわいいいいい"));
        assert!(!is_flood("これって敏感肌でも使えますか"));
        assert!(is_flood("ランドセルランドセルランドセルランドセルランドセルランドセルランドセルランドセル"));
        assert!(!is_flood("かわいいかわいいかわいい"));
    }

    #[test]
    fn counts_and_picks_are_found_as_orders_say_them() {
        for (text, count) in [
            ("黒M2個で", Some("2個")),
            ("長靴16センチ 黄色 1足", Some("1足")),
            ("ほたて 2キロ ちゅうもん", Some("2キロ")),
            ("ミントの90と100 各1", Some("各1")),
            ("日焼け止め 2", Some("2")),
            ("ひとつください", Some("ひとつ")),
            ("二つ目も", Some("二つ")),
            ("12号ある？", None),
            ("Mサイズの着丈何センチ", None),
            ("2025年モデル", None),
        ] {
            assert_eq!(find_count(text).map(|(a, b)| &text[a..b]), count, "{text}");
        }
        assert_eq!(find_pick("3番を1つ"), Some((0, 4)));
        assert!(find_pick("No.7 2点で").is_some());
        assert!(find_pick("1番乗り").is_some(), "a pick by shape; the model weighs it");
        assert!(find_pick("12号").is_none());
    }

    #[test]
    fn urls_phones_and_handles_are_found() {
        assert!(find_url("詳しくは bit.ly/abc へ").is_some());
        assert!(find_url("example.com見て").is_some());
        assert!(find_url("これ可愛い").is_none());
        assert!(find_phone("090-1234-5678まで").is_some());
        assert!(find_phone("3番2点").is_none());
        assert!(find_phone("０８０ー９８７６ー５４３２ まで").is_none(), "full width is NFKC's to fold");
        assert!(find_phone("080ー9876ー5432 まで").is_some());
        assert!(find_phone("+81 90 0000 7755").is_some());
        assert!(find_url("えくざんぷる。こむ に").is_some());
        assert!(find_url("example。com").is_some());
        assert_eq!(find_income("在宅で月10万").map(|(a, b)| b - a > 0), Some(true));
        assert!(find_income("50万稼げた").is_some());
        assert!(find_income("定価12万→9万").is_none());
        assert!(find_handle("ID→ abc123").is_some());
        assert!(find_handle("Mサイズ").is_none());
    }
}
