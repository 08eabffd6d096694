//! A question's frame: what it asks about, and what kind of ask it is.
//!
//! A host answers "the same question" once: the same thing asked about (a concept from the
//! `synonyms` and `topics` dictionaries such as `stock`, `length` or `shipping`; failing that,
//! the question's own nouns) of the same subject (a product, or the shop: decided later, with the
//! stream's catalogue) with the same exclusive values (size M, colour black, a number) and the
//! same kind of ask (show me, how much, when, which, can it, is there). The frame holds each of
//! these as sorted hashes, plus the character bigrams of the words no concept covers, so that
//! an unseen compound (耐荷重, 毛羽落ち) still meets its variants. [`super::identity`] decides
//! whether two frames are one question; explanations carry the names ([`FrameNames`]).

use crate::dictionary::{Hit, ListKind};
use crate::pipeline::classify::Classifier;
use crate::pipeline::dedupe::hash_str;
use crate::pipeline::normalize::Normalized;
use crate::pipeline::tokenize::{Pos, Sub, Tokens};
use smallvec::SmallVec;

mod focus;
mod words;
pub use focus::Asides;
use words::*;
pub use words::{fold_hash, gram_hash, romaji_to_kana};

use super::attribute::Attribute;

/// The slot family of the amounts units measure (`unit_length`, `unit_age`): several may stand
/// in one question, so [`super::identity::slots_conflict`] compares them as a set.
pub static UNIT_FAMILY: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| hash_str("unit"));

/// The kind of ask, from the question's cue words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ask {
    /// No cue says which.
    #[default]
    Unknown,
    /// Show or do something (見せて, 着てみて, 座ってみて).
    Show,
    /// An amount: price, size, length, how many (いくら, 何cm, どのくらい).
    Amount,
    /// A date or time (いつ, 何日, 何時).
    When,
    /// A choice among options (どれ, どっち, 何色).
    Which,
    /// A place (どこ).
    Where,
    /// How to do something (どうやって, 方法).
    How,
    /// Whether something exists or is left (ある？, 残ってる).
    Exists,
    /// Whether something can be done or is fine (できる？, 使える？, 大丈夫？).
    Can,
}

impl Ask {
    /// A stable small number (packed with the frame).
    pub fn code(self) -> u64 {
        self as u64
    }

    /// The ask of a packed code.
    pub fn from_code(code: u64) -> Self {
        match code {
            1 => Ask::Show,
            2 => Ask::Amount,
            3 => Ask::When,
            4 => Ask::Which,
            5 => Ask::Where,
            6 => Ask::How,
            7 => Ask::Exists,
            8 => Ask::Can,
            _ => Ask::Unknown,
        }
    }

    /// The name shown in explanations.
    pub fn name(self) -> &'static str {
        match self {
            Ask::Unknown => "unknown",
            Ask::Show => "show",
            Ask::Amount => "amount",
            Ask::When => "when",
            Ask::Which => "which",
            Ask::Where => "where",
            Ask::How => "how",
            Ask::Exists => "exists",
            Ask::Can => "can",
        }
    }
}

/// What a question is about, for question identity. Every list is sorted and unique.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    /// Fine concepts (`synonyms` sections that are neither slots nor weak).
    pub concepts: Vec<u64>,
    /// Generic concepts (`| weak`: price, payment, fit) that say little when a fine one is there.
    pub weak: Vec<u64>,
    /// Coarse topics (`topics` sections).
    pub topics: Vec<u64>,
    /// Exclusive values `[family, value]`: two values of one family are never one question.
    pub slots: Vec<[u64; 2]>,
    /// Nouns no concept covers: they name what is asked about.
    pub nouns: Vec<u64>,
    /// Verbs and adjectives no concept covers: mostly phrasing.
    pub preds: Vec<u64>,
    /// Character bigrams of the words no concept covers (katakana folded to hiragana).
    pub grams: Vec<u64>,
    /// The kind of ask, from the question's cue words; [`Ask::Unknown`] when none says.
    pub ask: Ask,
    /// Every concept named is shop-wide (送料, 支払い): the question belongs to the shop.
    pub shop: bool,
    /// Every shop-wide concept named is the stream's own (音, 画面, 次の配信): the question
    /// belongs to the shop but is kept apart from its other questions.
    pub stream: bool,
    /// Each noun's hash with its byte range in the key view, so that the stream's state can
    /// leave out the words that only name the product (its catalogue keywords).
    pub noun_at: Vec<(u64, [u32; 2])>,
    /// Sentences of the message beside its question (「…見返したい」), as byte ranges of the key
    /// view: a product they name is not what the question is about.
    pub asides: Vec<[u32; 2]>,
    /// What it asks about, as the attribute model reads the rest of the frame.
    pub attribute: Attribute,
    /// Its concepts and words the identity model knows associations of (sorted): a pair of
    /// frames looks up only these.
    pub assoc: Vec<u64>,
    /// Its learned vector ([`super::similarity`]), signed bytes eight to a word; empty without
    /// a similarity model.
    pub vector: Vec<u64>,
}

impl Frame {
    /// Empties the frame, keeping its buffers.
    pub fn clear(&mut self) {
        for v in
            [&mut self.concepts, &mut self.weak, &mut self.topics, &mut self.nouns, &mut self.preds, &mut self.grams]
        {
            v.clear();
        }
        self.slots.clear();
        self.noun_at.clear();
        self.asides.clear();
        self.ask = Ask::Unknown;
        self.shop = false;
        self.stream = false;
        self.attribute = Attribute::default();
        self.assoc.clear();
        self.vector.clear();
    }

    /// Makes this frame a copy of `other`, keeping its own buffers where they are large enough
    /// (a new frame's lists are each allocated once, at their size).
    pub fn copy_from(&mut self, other: &Frame) {
        // Every field named, so that a new one cannot be left out.
        let Frame {
            concepts,
            weak,
            topics,
            slots,
            nouns,
            preds,
            grams,
            ask,
            shop,
            stream,
            noun_at,
            asides,
            attribute,
            assoc,
            vector,
        } = other;
        self.concepts.clone_from(concepts);
        self.weak.clone_from(weak);
        self.topics.clone_from(topics);
        self.slots.clone_from(slots);
        self.nouns.clone_from(nouns);
        self.preds.clone_from(preds);
        self.grams.clone_from(grams);
        self.ask = *ask;
        self.shop = *shop;
        self.stream = *stream;
        self.noun_at.clone_from(noun_at);
        self.asides.clone_from(asides);
        self.attribute = *attribute;
        self.assoc.clone_from(assoc);
        self.vector.clone_from(vector);
    }

    /// Leaves out what the key-view range `start..end` says (a product's name or keyword):
    /// its nouns and its character bigrams. The scope already says which product is meant.
    pub fn forget_span(&mut self, key: &str, start: usize, end: usize) {
        let inside = |&[s, e]: &[u32; 2]| start <= s as usize && e as usize <= end;
        // A noun goes when a word inside the span was it and no word outside was. Nouns and
        // grams are few: lists scanned in place, no set built (this runs per catalogue mention).
        let at = &self.noun_at;
        self.nouns.retain(|h| {
            let gone = at.iter().any(|(g, span)| g == h && inside(span));
            !gone || at.iter().any(|(g, span)| g == h && !inside(span))
        });
        self.noun_at.retain(|(_, span)| !inside(span));
        let (concepts, weak, nouns, preds) = (&self.concepts, &self.weak, &self.nouns, &self.preds);
        self.assoc.retain(|h| [concepts, weak, nouns, preds].iter().any(|l| l.binary_search(h).is_ok()));
        if let Some(words) = key.get(start..end) {
            let mut grams: SmallVec<[u64; 16]> = SmallVec::new();
            push_grams(words, |g| grams.push(g));
            self.grams.retain(|g| !grams.contains(g));
        }
    }

    /// The frame as borrowed parts.
    pub fn view(&self) -> FrameView<'_> {
        FrameView {
            concepts: &self.concepts,
            weak: &self.weak,
            topics: &self.topics,
            slots: &self.slots,
            nouns: &self.nouns,
            preds: &self.preds,
            grams: &self.grams,
            ask: self.ask,
            attribute: self.attribute,
            assoc: &self.assoc,
            vector: &self.vector,
        }
    }
}

/// A [`Frame`]'s parts, borrowed from it or from a cluster's packed members.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameView<'a> {
    /// As [`Frame::concepts`].
    pub concepts: &'a [u64],
    /// As [`Frame::weak`].
    pub weak: &'a [u64],
    /// As [`Frame::topics`].
    pub topics: &'a [u64],
    /// As [`Frame::slots`].
    pub slots: &'a [[u64; 2]],
    /// As [`Frame::nouns`].
    pub nouns: &'a [u64],
    /// As [`Frame::preds`].
    pub preds: &'a [u64],
    /// As [`Frame::grams`].
    pub grams: &'a [u64],
    /// As [`Frame::ask`].
    pub ask: Ask,
    /// As [`Frame::attribute`].
    pub attribute: Attribute,
    /// As [`Frame::assoc`].
    pub assoc: &'a [u64],
    /// As [`Frame::vector`].
    pub vector: &'a [u64],
}

/// The names behind a frame's hashes, for people.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct FrameNames {
    /// Fine concepts: their `synonyms` section names (`stock`).
    pub concepts: Vec<String>,
    /// Generic concepts (`| weak` sections).
    pub weak: Vec<String>,
    /// Coarse topics: their `topics` section names (`shipping`).
    pub topics: Vec<String>,
    /// Exclusive values: the slot section (`size_m`), or `num_9`, `unit_length` for numbers and the amounts units measure.
    pub slots: Vec<String>,
    /// Nouns no concept covers, as base forms.
    pub nouns: Vec<String>,
    /// Verbs and adjectives no concept covers, as base forms.
    pub preds: Vec<String>,
    /// Words of the asker's context (a region, a day), left out of identity.
    pub context: Vec<String>,
    /// The kind of ask ([`Ask::name`]).
    pub ask: &'static str,
    /// As [`Frame::shop`]: every concept named is shop-wide.
    pub shop: bool,
    /// As [`Frame::stream`]: every shop-wide concept named is the stream's own.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// The character n-grams of the whole message's matching key (for training the attribute
    /// model: [`super::attribute::ngrams`]).
    #[serde(skip)]
    pub ngrams: Vec<String>,
    /// What it asks about ([`Frame::attribute`]), when an attribute model is loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute: Option<(String, f32)>,
    /// The model's second reading, with its probability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute_second: Option<(String, f32)>,
}

/// Fills `frame` from a question's analysis; with `names`, also what each hash stands for.
/// The asker's asides ([`focus`]) are left out, unless nothing but them names anything.
pub fn build(
    classifier: &Classifier,
    norm: &Normalized,
    tokens: &Tokens,
    hits: &[Hit],
    frame: &mut Frame,
    mut names: Option<&mut FrameNames>,
) {
    let mut asides = Asides::default();
    focus::find(norm, tokens, hits, classifier.dictionaries.rules(), &mut asides);
    fill(classifier, norm, tokens, hits, &asides, frame, names.as_deref_mut());
    let named = |f: &Frame| !(f.concepts.is_empty() && f.weak.is_empty() && f.topics.is_empty() && f.nouns.is_empty());
    if !asides.original.is_empty() && !named(frame) {
        asides.clear();
        if let Some(n) = names.as_deref_mut() {
            *n = FrameNames::default();
        }
        fill(classifier, norm, tokens, hits, &asides, frame, names);
    }
    frame.asides.extend_from_slice(&asides.sentences);
}

fn fill(
    classifier: &Classifier,
    norm: &Normalized,
    tokens: &Tokens,
    hits: &[Hit],
    asides: &Asides,
    frame: &mut Frame,
    mut names: Option<&mut FrameNames>,
) {
    frame.clear();
    let rules = classifier.dictionaries.rules();
    // Words inside a fine concept are that concept; words inside a coarse topic still count.
    // A synonym match inside a longer one is part of it (税込価格 is tax, not price).
    let synonym = |h: &Hit| rules[h.rule as usize].kind == ListKind::Synonym;
    let mut covered: SmallVec<[(usize, usize); 8]> = SmallVec::new();
    let mut asks_existence = false;
    // Shop-wide when every fine concept named is (送料いくら？: shipping, price being weak), or,
    // naming none, every topic is; not Mの在庫と送料は？.
    let (mut shop_fine, mut product_fine, mut shop_topics, mut product_topics) = (0, 0, 0, 0);
    let mut stream_fine = 0;
    let note = |names: &mut Option<&mut FrameNames>, f: &dyn Fn(&mut FrameNames)| {
        if let Some(n) = names.as_deref_mut() {
            f(n);
        }
    };
    for h in hits {
        if !Classifier::in_words(norm, tokens, h, true) {
            continue;
        }
        let r = &rules[h.rule as usize];
        // A synonym inside a longer one is part of it (次いつ in 次いつやる), and a word of the
        // asker's context (東京, 明日) says nothing of whose question it is.
        let inside_longer = synonym(h)
            && hits
                .iter()
                .any(|o| synonym(o) && o.start <= h.start && h.end <= o.end && (o.end - o.start) > (h.end - h.start));
        let context = r.kind == ListKind::Synonym && classifier.is_context(h.rule);
        // In an aside only the values named count (Mなら…, 黒の…).
        let slot = r.kind == ListKind::Synonym && classifier.slot_family(h.rule).is_some();
        if !slot
            && !asides.original.is_empty()
            && asides.covers(norm.key.original_span(h.start as usize, h.end as usize))
        {
            continue;
        }
        if !r.weak && !inside_longer && !context {
            match (r.kind, r.shop) {
                (ListKind::Synonym, true) => {
                    shop_fine += 1;
                    stream_fine += usize::from(r.stream);
                }
                (ListKind::Synonym, false) if classifier.slot_family(h.rule).is_none() => product_fine += 1,
                (ListKind::Topic, true) => shop_topics += 1,
                (ListKind::Topic, false) => product_topics += 1,
                _ => {}
            }
        }
        match r.kind {
            ListKind::Synonym => {
                if inside_longer {
                    continue;
                }
                covered.push(norm.key.original_span(h.start as usize, h.end as usize));
                if context {
                    note(&mut names, &|n| n.context.push(r.section.clone()));
                    continue;
                }
                match classifier.slot_family(h.rule) {
                    Some(family) => {
                        frame.slots.push([family, hash_str(&r.section)]);
                        note(&mut names, &|n| n.slots.push(r.section.clone()));
                    }
                    None if r.weak => {
                        frame.weak.push(hash_str(&r.section));
                        note(&mut names, &|n| n.weak.push(r.section.clone()));
                    }
                    None if classifier.concept_group(h.rule).is_some() => {
                        let group = r.section.split('_').next().unwrap_or(&r.section);
                        frame.concepts.push(hash_str(group));
                        note(&mut names, &|n| n.concepts.push(group.to_string()));
                    }
                    None => {
                        frame.concepts.push(hash_str(&r.section));
                        note(&mut names, &|n| n.concepts.push(r.section.clone()));
                    }
                }
            }
            ListKind::Topic => {
                frame.topics.push(hash_str(&r.section));
                note(&mut names, &|n| n.topics.push(r.section.clone()));
            }
            _ => {
                if let Some(ask) = ask_of_rule(&r.id) {
                    if ask == Ask::Exists {
                        asks_existence = true;
                    }
                    // Specific asks (how much, when) win over generic ones (can it, is there).
                    if frame.ask == Ask::Unknown || matches!(frame.ask, Ask::Exists | Ask::Can) {
                        frame.ask = ask;
                    }
                }
            }
        }
    }
    frame.shop = if shop_fine + product_fine > 0 {
        shop_fine > 0 && product_fine == 0
    } else {
        shop_topics > 0 && product_topics == 0
    };
    frame.stream = frame.shop && shop_fine > 0 && stream_fine == shop_fine;
    // Numbers that name something (1番, size 140, model 720) are exclusive values. A number
    // with a unit of measure is the asker's context (身長98cm, 3歳の子): it says which amount
    // is meant (a unit slot), not which thing. Several numbers compare (110と120どっち).
    let surface = norm.surface.as_str();
    let num = hash_str("num");
    // The numbers that name something: how many, and the first (one alone is a slot).
    let (mut names_of, mut first_name) = (0usize, "");
    let mut rest = surface;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        let tail = &rest[start..];
        // A decimal (24.5) is one number.
        let mut len = tail.find(|c: char| !c.is_ascii_digit()).unwrap_or(tail.len());
        if tail[len..].starts_with('.') && tail[len + 1..].starts_with(|c: char| c.is_ascii_digit()) {
            len += 1 + tail[len + 1..].find(|c: char| !c.is_ascii_digit()).unwrap_or(tail.len() - len - 1);
        }
        let (digits, after) = tail.split_at(len);
        rest = after;
        let after = Lowered::head(after.trim_start_matches([' ', '.', ',']).chars());
        match UNITS
            .iter()
            .find(|(prefixes, unit)| MEASURES.contains(unit) && prefixes.iter().any(|p| after.starts_with(p)))
        {
            Some((_, unit)) => {
                frame.slots.push([*UNIT_FAMILY, hash_str(unit)]);
                note(&mut names, &|n| n.slots.push(format!("unit_{unit}")));
            }
            None => {
                if names_of == 0 {
                    first_name = digits;
                }
                names_of += 1;
            }
        }
    }
    if names_of == 1 {
        let digits = first_name;
        frame.slots.push([num, hash_str(digits)]);
        note(&mut names, &|n| n.slots.push(format!("num_{digits}")));
    }
    // 「Mある？」「黒まだある？」 name no concept but ask about stock of a product attribute.
    // (フードはありますか asks whether the thing has a feature, not about stock.)
    let attribute_only =
        !frame.slots.is_empty() && frame.slots.iter().all(|&[family, _]| classifier.is_attribute_family(family));
    if asks_existence && frame.concepts.is_empty() && attribute_only {
        frame.concepts.push(hash_str("stock"));
        note(&mut names, &|n| n.concepts.push("stock".into()));
    }
    // 何cm / 何人 / 何歳: the unit says what amount is asked, an exclusive value.
    if let Some(unit) = unit_asked(tokens, surface) {
        frame.slots.push([*UNIT_FAMILY, hash_str(unit)]);
        note(&mut names, &|n| n.slots.push(format!("unit_{unit}")));
    }
    let ask = ask_of_tokens(tokens, surface, |t| {
        asides.original.is_empty() || !asides.covers(norm.surface.original_span(t.start as usize, t.end as usize))
    });
    if ask != Ask::Unknown && (frame.ask == Ask::Unknown || matches!(frame.ask, Ask::Exists | Ask::Can)) {
        frame.ask = ask;
    }
    for t in &tokens.list {
        let base = tokens.base(t);
        let content = t.pos.is_content() || t.unknown;
        if !content
            || matches!(t.sub, Sub::Number | Sub::Pronoun | Sub::Dependent | Sub::Suffix | Sub::Adverbial)
            || t.pos == Pos::Adverb
        {
            continue;
        }
        if is_stop_word(base) {
            continue;
        }
        let span = norm.surface.original_span(t.start as usize, t.end as usize);
        if covered.iter().any(|&(s, e)| span.0 < e && s < span.1) || asides.covers(span) {
            continue;
        }
        // Grams and spans in the key view, where catalogue keywords are matched too.
        let at = norm.key.span_of(span.0, span.1);
        let word = at.map_or(&surface[t.start as usize..t.end as usize], |(s, e)| &norm.key.as_str()[s..e]);
        push_grams(word, |g| frame.grams.push(g));
        let short = base.chars().count() < 2 && !base.chars().all(|c| ('一'..='鿿').contains(&c));
        if short {
            continue;
        }
        if t.pos == Pos::Noun || t.unknown {
            frame.nouns.push(fold_hash(base));
            if let Some((s, e)) = at {
                frame.noun_at.push((fold_hash(base), [s as u32, e as u32]));
            }
            note(&mut names, &|n| n.nouns.push(base.to_string()));
        } else {
            frame.preds.push(fold_hash(base));
            note(&mut names, &|n| n.preds.push(base.to_string()));
        }
    }
    finish(frame);
    if let Some(n) = names {
        n.ask = frame.ask.name();
        n.shop = frame.shop;
        n.stream = frame.stream;
        for v in [&mut n.concepts, &mut n.weak, &mut n.topics, &mut n.slots, &mut n.nouns, &mut n.preds] {
            v.sort();
            v.dedup();
        }
    }
}

/// Sorts and deduplicates every list.
pub fn finish(frame: &mut Frame) {
    for v in
        [&mut frame.concepts, &mut frame.weak, &mut frame.topics, &mut frame.nouns, &mut frame.preds, &mut frame.grams]
    {
        v.sort_unstable();
        v.dedup();
    }
    frame.slots.sort_unstable();
    frame.slots.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_spellings_are_compared_on_the_lowercased_head() {
        for (prefixes, _) in UNITS {
            for p in *prefixes {
                assert!(p.chars().count() <= LOWERED && p.to_lowercase() == *p, "{p}");
            }
        }
        let head = Lowered::head("CMくらい".chars());
        assert!(head.starts_with("cm") && head.starts_with("cmくら") && !head.starts_with("mm"));
        assert!(!Lowered::head("c".chars()).starts_with("cm"));
    }

    #[test]
    fn grams_are_the_pairs_of_folded_characters() {
        let grams = |w: &str| {
            let mut out = Vec::new();
            push_grams(w, |g| out.push(g));
            out
        };
        assert_eq!(grams("ワンピ"), vec![gram_hash('わ', 'ん'), gram_hash('ん', 'ぴ')]);
        assert_eq!(grams("Mサイズ!"), grams("mさいず"));
        assert_eq!(grams("袖"), vec![gram_hash('袖', ' ')]);
        assert_eq!(grams("あ"), Vec::<u64>::new());
        assert_eq!(grams("・"), Vec::<u64>::new());
    }

    #[test]
    fn romaji_chat_reads_as_kana_and_english_does_not() {
        assert_eq!(romaji_to_kana("souryou ikura?").as_deref(), Some("そうりょう いくら?"));
        assert_eq!(romaji_to_kana("M wa mada arimasu ka?").as_deref(), Some("M は まだ あります か?"));
        assert_eq!(romaji_to_kana("How much is it?"), None);
        assert_eq!(romaji_to_kana("LINE de renraku shite").as_deref(), Some("LINE で れんらく して"), "LINE stays");
        assert_eq!(romaji_to_kana("line size ok"), None, "English and codes are not romaji");
        assert_eq!(romaji_to_kana("送料いくら"), None);
        assert_eq!(romaji_to_kana("ikura?").as_deref(), Some("いくら?"), "one long romaji word");
        assert_eq!(romaji_to_kana("waribiki go ikura?").as_deref(), Some("わりびき ご いくら?"));
        assert_eq!(romaji_to_kana("tsugi no live itsu desu ka").as_deref(), Some("つぎ の live いつ です か"));
        assert_eq!(romaji_to_kana("go to the sale"), None, "words that read either way are not enough");
        assert_eq!(romaji_to_kana("ok?"), None);
    }
}
