//! A stream's product catalogue: which products a stream sells and the words viewers use for
//! them, so a question can be tied to the product it names.
//!
//! The catalogue is the contract's `{"products":[{"id","name","keywords":[…]}]}`. Its names and
//! keywords go through the same [`Normalizer`] key view as messages, so `ﾜﾝﾋﾟ`, `ワンピ` and
//! `わんぴ` are one keyword, and are compiled into one automaton. [`Catalog::compile`] checks the
//! whole object and reports every problem at once; the caller keeps the previous catalogue when
//! it fails.

use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::{Deserialize, Serialize};

use crate::pipeline::normalize::{NormalizeConfig, Normalizer};

/// Most products one catalogue may hold.
pub const MAX_PRODUCTS: usize = 500;
/// Most keywords per product.
pub const MAX_KEYWORDS: usize = 64;
/// Longest product id, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// Longest product name or keyword, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// One product as the contract writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductSpec {
    /// The platform's product id (`p1`, a SKU).
    pub id: String,
    /// The name as the shop lists it.
    pub name: String,
    /// Short words viewers use for it (ワンピ, リネン).
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// The catalogue object of `PUT /v1/streams/ID/catalog` and `kotae classify --catalog`.
/// Unknown fields (a schedule, prices) are ignored, so a platform's own product file can be sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogSpec {
    /// The products, in the shop's order (the order the report lists them in); ids must be unique.
    pub products: Vec<ProductSpec>,
}

/// Why a catalogue was refused: every problem, each naming its product.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in catalogue: {}", .0.len(), .0.join("; "))]
pub struct CatalogError(pub Vec<String>);

/// A product mention found in a message's key view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mention {
    /// Index of the product in [`Catalog::products`].
    pub product: u32,
    /// Byte range in the key view.
    pub start: u32,
    /// One past the mention's last byte in the key view.
    pub end: u32,
}

/// A compiled catalogue. Immutable; replaced whole.
#[derive(Debug, Default)]
pub struct Catalog {
    spec: CatalogSpec,
    /// Normalized patterns and, for each, the products it names (a keyword two products share
    /// names both).
    patterns: Vec<Vec<u32>>,
    automaton: Option<AhoCorasick>,
}

impl Catalog {
    /// An empty catalogue (questions are about the product on screen, or the shop).
    pub fn empty() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Checks and compiles a catalogue; every problem is reported.
    pub fn compile(spec: CatalogSpec, normalize: &NormalizeConfig) -> Result<Self, CatalogError> {
        let mut problems = Vec::new();
        if spec.products.len() > MAX_PRODUCTS {
            problems.push(format!("{} products, at most {MAX_PRODUCTS}", spec.products.len()));
        }
        let mut normalizer = Normalizer::new(normalize);
        let mut keys: Vec<String> = Vec::new();
        let mut patterns: Vec<Vec<u32>> = Vec::new();
        let mut seen_ids = std::collections::HashMap::new();
        for (i, p) in spec.products.iter().enumerate() {
            let at = format!("products[{i}]");
            if p.id.is_empty() || p.id.len() > MAX_ID_BYTES || p.id.chars().any(char::is_control) {
                problems.push(format!("{at}: id must be 1–{MAX_ID_BYTES} bytes without control characters"));
            } else if let Some(first) = seen_ids.insert(p.id.as_str(), i) {
                problems.push(format!("{at}: duplicate id '{}' (also products[{first}])", p.id));
            }
            if p.name.trim().is_empty() {
                problems.push(format!("{at} ({}): empty name", p.id));
            } else if p.name.chars().count() > MAX_NAME_CHARS || p.name.chars().any(char::is_control) {
                problems
                    .push(format!("{at} ({}): name over {MAX_NAME_CHARS} characters or with control characters", p.id));
            }
            if p.keywords.len() > MAX_KEYWORDS {
                problems.push(format!("{at} ({}): {} keywords, at most {MAX_KEYWORDS}", p.id, p.keywords.len()));
            }
            for (k, word) in std::iter::once(&p.name).chain(&p.keywords).enumerate() {
                if k > 0 && (word.chars().count() > MAX_NAME_CHARS || word.chars().any(char::is_control)) {
                    problems.push(format!("{at} ({}): keyword '{word}' is too long or has control characters", p.id));
                    continue;
                }
                let key = normalizer.key_of(word);
                // A one-character key names the product only when it is a kanji standing alone
                // (机, 棚: not inside 本棚); a single kana or letter would match inside any word.
                if key.chars().count() < 2 && !key.chars().all(is_kanji) {
                    if k > 0 {
                        problems
                            .push(format!("{at} ({}): keyword '{word}' is one kana or letter once normalized", p.id));
                    }
                    continue;
                }
                match keys.iter().position(|x| *x == key) {
                    Some(j) if !patterns[j].contains(&(i as u32)) => patterns[j].push(i as u32),
                    Some(_) => {}
                    None => {
                        keys.push(key);
                        patterns.push(vec![i as u32]);
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(CatalogError(problems));
        }
        let automaton = if keys.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&keys)
                    .map_err(|e| CatalogError(vec![format!("automaton: {e}")]))?,
            )
        };
        Ok(Self { spec, patterns, automaton })
    }

    /// The catalogue as given.
    pub fn spec(&self) -> &CatalogSpec {
        &self.spec
    }

    /// The products, in the given order.
    pub fn products(&self) -> &[ProductSpec] {
        &self.spec.products
    }

    /// Whether the catalogue holds no product.
    pub fn is_empty(&self) -> bool {
        self.spec.products.is_empty()
    }

    /// A product's index by id.
    pub fn index_of(&self, id: &str) -> Option<u32> {
        self.spec.products.iter().position(|p| p.id == id).map(|i| i as u32)
    }

    /// A product's name by id.
    pub fn name_of(&self, id: &str) -> Option<&str> {
        self.spec.products.iter().find(|p| p.id == id).map(|p| p.name.as_str())
    }

    /// The products a key view names, leftmost-longest, in text order. A keyword two products
    /// share yields a mention of each. Latin keywords (`uv`, `k18`) do not match inside longer
    /// Latin words or numbers.
    pub fn mentions(&self, key: &str, out: &mut Vec<Mention>) {
        out.clear();
        let Some(automaton) = &self.automaton else { return };
        for m in automaton.find_iter(key) {
            let (s, e) = (m.start(), m.end());
            let latin = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
            let first = key[s..e].chars().next();
            let last = key[s..e].chars().next_back();
            let (before, after) = (key[..s].chars().next_back(), key[e..].chars().next());
            if (latin(first) && latin(before)) || (latin(last) && latin(after)) {
                continue;
            }
            let lone_kanji = e - s == first.map_or(0, char::len_utf8) && first.is_some_and(is_kanji);
            if lone_kanji && (before.is_some_and(is_kanji) || after.is_some_and(is_kanji)) {
                continue;
            }
            for &p in &self.patterns[m.pattern().as_usize()] {
                out.push(Mention { product: p, start: s as u32, end: e as u32 });
            }
        }
    }
}

fn is_kanji(c: char) -> bool {
    matches!(c, '一'..='鿿' | '々')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(products: &[(&str, &str, &[&str])]) -> CatalogSpec {
        CatalogSpec {
            products: products
                .iter()
                .map(|(id, name, kw)| ProductSpec {
                    id: id.to_string(),
                    name: name.to_string(),
                    keywords: kw.iter().map(|k| k.to_string()).collect(),
                })
                .collect(),
        }
    }

    fn named<'a>(c: &'a Catalog, text: &str) -> Vec<&'a str> {
        let key = Normalizer::new(&NormalizeConfig::default()).key_of(text);
        let mut out = Vec::new();
        c.mentions(&key, &mut out);
        out.iter().map(|m| c.products()[m.product as usize].id.as_str()).collect()
    }

    #[test]
    fn keywords_match_through_the_normalizer() {
        let c = Catalog::compile(
            spec(&[
                ("p1", "リネンシャツワンピース", &["ワンピ", "リネン"]),
                ("p5", "レザー調トートバッグ", &["トート", "UV"]),
            ]),
            &NormalizeConfig::default(),
        )
        .unwrap();
        assert_eq!(named(&c, "ﾜﾝﾋﾟのお値段は？"), ["p1"]);
        assert_eq!(named(&c, "とーとばっぐ何色ある"), ["p5"]);
        assert_eq!(named(&c, "UVカットですか"), ["p5"]);
        assert!(named(&c, "UVAとは").is_empty(), "latin keywords stop at latin neighbours");
        assert_eq!(named(&c, "ワンピとトートどっちがおすすめ"), ["p1", "p5"]);
        assert!(named(&c, "送料いくら").is_empty());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let bad = spec(&[("p1", "", &[]), ("p1", "ok", &["x"]), ("", "名前", &[])]);
        let err = Catalog::compile(bad, &NormalizeConfig::default()).unwrap_err();
        assert_eq!(err.0.len(), 4, "{err}");
        assert!(err.0.iter().any(|p| p.contains("duplicate id 'p1'")), "{err}");
        assert!(err.0.iter().any(|p| p.contains("empty name")), "{err}");
        assert!(err.0.iter().any(|p| p.contains("one kana or letter")), "{err}");
    }

    #[test]
    fn a_keyword_two_products_share_names_both() {
        let c = Catalog::compile(
            spec(&[("a", "ニット", &["ニット"]), ("b", "ニット帽", &["ニット"])]),
            &NormalizeConfig::default(),
        )
        .unwrap();
        assert_eq!(named(&c, "ニットの素材は"), ["a", "b"]);
        assert_eq!(named(&c, "ニット帽の素材は"), ["b"], "the longest match wins");
    }

    #[test]
    fn a_one_kanji_keyword_names_the_product_only_standing_alone() {
        let c = Catalog::compile(spec(&[("rack", "スチールラック", &["棚"])]), &NormalizeConfig::default()).unwrap();
        assert_eq!(named(&c, "棚の耐荷重は"), ["rack"]);
        assert!(named(&c, "本棚に置ける？").is_empty());
    }
}
