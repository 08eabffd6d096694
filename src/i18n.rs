//! The message catalogue: every text a person reads on kotae's pages, in the "why" of a
//! question, in answered notes, in error messages shown by the pages and in `kotae report`, in
//! Japanese and English (`server.locale`, default `ja`).
//!
//! One table, [`CATALOGUE`], keyed by dotted names (`why.asked`, `host.answered`, `err.…`). A
//! text may hold numbered placeholders (`{0}`, `{1}`) that both languages use alike. The pages
//! get their locale's table as JSON ([`page_json`]) and their static text filled in on the server
//! ([`fill_page`]), so a page has no text of its own to translate.
//!
//! Error messages keep their English text in the API's `error` field (clients and logs match on
//! it); the `err.` entries hold those English texts as patterns, and [`localize_error`] turns one
//! into the locale's words for the `message` field the pages show.

use std::collections::HashMap;
use std::fmt::{Display, Write as _};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// The language of the texts people read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Locale {
    /// Japanese (the default: the people on screen are Japanese live sellers).
    #[default]
    Ja,
    /// English.
    En,
}

impl Locale {
    /// The BCP 47 tag pages declare (`<html lang>`).
    pub fn tag(self) -> &'static str {
        match self {
            Locale::Ja => "ja",
            Locale::En => "en",
        }
    }
}

impl std::str::FromStr for Locale {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ja" => Ok(Locale::Ja),
            "en" => Ok(Locale::En),
            other => Err(format!("unknown locale '{other}' (ja, en)")),
        }
    }
}

mod catalogue;

pub use catalogue::CATALOGUE;

static TABLE: LazyLock<HashMap<&'static str, (&'static str, &'static str)>> =
    LazyLock::new(|| CATALOGUE.iter().map(|&(k, ja, en)| (k, (ja, en))).collect());

/// A text of the catalogue; an unknown key comes back as itself (a test checks every key the
/// code and pages use exists).
pub fn text(locale: Locale, key: &str) -> &str {
    match TABLE.get(key) {
        Some(&(ja, en)) => match locale {
            Locale::Ja => ja,
            Locale::En => en,
        },
        None => key,
    }
}

/// Writes `template` with `{n}` replaced by `args[n]`.
fn fill(out: &mut String, template: &str, args: &[&dyn Display]) {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let n = after.as_bytes().first().filter(|b| b.is_ascii_digit()).map(|b| usize::from(b - b'0'));
        match (n, after.as_bytes().get(1)) {
            (Some(n), Some(b'}')) if n < args.len() => {
                let _ = write!(out, "{}", args[n]);
                rest = &after[2..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

/// A catalogue text with its placeholders filled.
pub fn format(locale: Locale, key: &str, args: &[&dyn Display]) -> String {
    let mut out = String::new();
    fill(&mut out, text(locale, key), args);
    out
}

/// How a topic (a `topics.txt` section) is shown; unknown topics show their name.
pub fn topic(locale: Locale, topic: &str) -> String {
    let key = format!("topic.{topic}");
    match TABLE.get(key.as_str()) {
        Some(_) => text(locale, &key).to_string(),
        None => topic.to_string(),
    }
}

/// Splits an English pattern into its literal pieces and placeholder numbers:
/// `"no list '{0}'"` → `["no list '", "'"]`, `[0]`.
fn pieces(pattern: &str) -> (Vec<&str>, Vec<usize>) {
    let mut lits = Vec::new();
    let mut slots = Vec::new();
    let mut rest = pattern;
    loop {
        let at = rest.char_indices().find(|&(i, c)| {
            c == '{'
                && rest.as_bytes().get(i + 1).is_some_and(u8::is_ascii_digit)
                && rest.as_bytes().get(i + 2) == Some(&b'}')
        });
        match at {
            Some((i, _)) => {
                lits.push(&rest[..i]);
                slots.push(usize::from(rest.as_bytes()[i + 1] - b'0'));
                rest = &rest[i + 3..];
            }
            None => {
                lits.push(rest);
                return (lits, slots);
            }
        }
    }
}

/// Matches `text` against an English pattern: the captured text of each placeholder.
fn capture<'t>(pattern: &str, text: &'t str) -> Option<Vec<(usize, &'t str)>> {
    let (lits, slots) = pieces(pattern);
    let mut rest = text.strip_prefix(lits[0])?;
    if slots.is_empty() {
        return rest.is_empty().then(Vec::new);
    }
    let mut out = Vec::with_capacity(slots.len());
    for (k, &slot) in slots.iter().enumerate() {
        let lit = lits[k + 1];
        let last = k + 1 == slots.len();
        let end = if last {
            if !rest.ends_with(lit) || rest.len() < lit.len() {
                return None;
            }
            rest.len() - lit.len()
        } else if lit.is_empty() {
            return None;
        } else {
            rest.find(lit)?
        };
        out.push((slot, &rest[..end]));
        rest = &rest[end + lit.len()..];
    }
    Some(out)
}

/// An English error message of the server in the locale's words: the `err.` entry whose
/// English pattern it matches, with the captured parts localized in turn (a `refused: …` holds a
/// dictionary problem). A message no entry matches stays as it is.
pub fn localize_error(locale: Locale, english: &str) -> String {
    localize_depth(locale, english, 0)
}

fn localize_depth(locale: Locale, english: &str, depth: u8) -> String {
    if locale == Locale::En || depth > 2 {
        return english.to_string();
    }
    for &(_, ja, en) in CATALOGUE.iter().filter(|(k, _, _)| k.starts_with("err.")) {
        let Some(captured) = capture(en, english) else { continue };
        let mut args: Vec<String> = vec![String::new(); captured.iter().map(|(s, _)| s + 1).max().unwrap_or(0)];
        for (slot, part) in captured {
            args[slot] = localize_depth(locale, part, depth + 1);
        }
        let refs: Vec<&dyn Display> = args.iter().map(|a| a as &dyn Display).collect();
        let mut out = String::new();
        fill(&mut out, ja, &refs);
        return out;
    }
    english.to_string()
}

/// The locale's whole table as one JSON object (`{"why.asked": "×{0}人", …}`), for the pages.
pub fn page_json(locale: Locale) -> String {
    let map: serde_json::Map<String, serde_json::Value> =
        CATALOGUE.iter().map(|&(k, _, _)| (k.to_string(), text(locale, k).into())).collect();
    // `</` cannot end the script element it is embedded in.
    serde_json::Value::Object(map).to_string().replace("</", "<\\/")
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Fills a page: `{{key}}` becomes the locale's text (HTML-escaped), `{{lang}}` the locale tag
/// and `{{catalogue}}` the locale's table as JSON (for the page's script).
pub fn fill_page(locale: Locale, page: &str) -> String {
    let mut out = String::with_capacity(page.len() + 16_384);
    let mut rest = page;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        match &after[..close] {
            "lang" => out.push_str(locale.tag()),
            "catalogue" => out.push_str(&page_json(locale)),
            key => out.push_str(&html_escape(text(locale, key))),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_both_languages_use_the_same_placeholders() {
        let mut seen = std::collections::HashSet::new();
        for &(k, ja, en) in CATALOGUE {
            assert!(seen.insert(k), "duplicate key {k}");
            assert!(!ja.is_empty() && !en.is_empty(), "{k} is empty");
            let slots = |s: &str| {
                let mut v = pieces(s).1;
                v.sort_unstable();
                v.dedup();
                v
            };
            assert_eq!(slots(ja), slots(en), "{k}: placeholders differ");
        }
    }

    #[test]
    fn placeholders_are_filled_and_unknown_keys_show_themselves() {
        assert_eq!(format(Locale::Ja, "why.asked", &[&7]), "×7人");
        assert_eq!(format(Locale::En, "why.asked", &[&7]), "×7 asked");
        assert_eq!(text(Locale::Ja, "no.such.key"), "no.such.key");
        assert_eq!(topic(Locale::Ja, "size"), "サイズ");
        assert_eq!(topic(Locale::Ja, "brand_new_topic"), "brand_new_topic");
    }

    #[test]
    fn english_errors_are_shown_in_japanese_with_their_details() {
        let ja = |s: &str| localize_error(Locale::Ja, s);
        assert_eq!(ja("no such question"), "その質問は見つかりません（もう消えたかもしれません）");
        assert_eq!(ja("no list 'spamm'"), "「spamm」というリストはありません");
        assert_eq!(
            ja("refused: spam.txt:12: entry '・・・' normalizes to nothing"),
            "受け付けませんでした: spam.txt:12: 「・・・」は正規化すると何も残りません"
        );
        assert_eq!(
            ja("spam.txt:40: duplicate of spam.txt:3 (both normalize to 'line')"),
            "spam.txt:40: spam.txt:3 と重複しています（どちらも「line」になります）"
        );
        assert_eq!(ja("something new went wrong"), "something new went wrong", "unknown messages stay");
        assert_eq!(localize_error(Locale::En, "no such question"), "no such question");
    }

    #[test]
    fn pages_get_escaped_texts_and_the_table() {
        let page = fill_page(Locale::Ja, "<html lang=\"{{lang}}\"><b>{{host.h1}}</b><script>{{catalogue}}</script>");
        assert!(page.starts_with("<html lang=\"ja\"><b>kotae 質問</b>"), "{page}");
        assert!(page.contains("\"why.asked\":\"×{0}人\""));
        assert!(!page_json(Locale::Ja).contains("</"));
        assert_eq!(html_escape("<a href='x'>&</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;");
    }

    /// Every `{{key}}` and `t("key")` of the pages and every key the code formats exists.
    #[test]
    fn every_key_the_pages_use_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut missing = Vec::new();
        for page in ["host.html", "faq.html", "overview.html", "moderator.html"] {
            let text = std::fs::read_to_string(root.join("web").join(page)).expect("page");
            for (open, close) in [("{{", "}}"), ("t(\"", "\""), ("tf(\"", "\"")] {
                let mut rest = text.as_str();
                while let Some(i) = rest.find(open) {
                    // `t("` only as a call of its own, not the end of `createElement("`.
                    let own = open.starts_with('{')
                        || !rest[..i].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
                    let after = &rest[i + open.len()..];
                    let Some(j) = after.find(close) else { break };
                    let key = &after[..j];
                    if own && !["lang", "catalogue"].contains(&key) && !TABLE.contains_key(key) {
                        missing.push(format!("{page}: {key}"));
                    }
                    rest = &after[j..];
                }
            }
        }
        assert!(missing.is_empty(), "keys missing from the catalogue: {missing:?}");
    }
}
