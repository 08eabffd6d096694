//! Japanese segmentation with Lindera and the IPADIC dictionary.
//!
//! The dictionary and segmenter are built once ([`TokenizerShared::new`]) and shared; each worker
//! thread owns one [`Tokenizer`] (a Lindera `SegmentWorker` plus scratch buffers) and reuses it for
//! every message. Part-of-speech fields are read without allocating, straight from the
//! dictionary's bytes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use lindera::dictionary::{Dictionary, load_user_dictionary};
use lindera::mode::Mode;
use lindera::segmenter::Segmenter;
use lindera::worker::SegmentWorker;
use serde::{Deserialize, Serialize};

use crate::ipadic;

/// Configuration of the tokenize stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenizeConfig {
    /// Cache directory for the built IPADIC dictionary (built there on first use, ≈2 s, 46 MB)
    /// and the built-in dictionaries. `KOTAE_CACHE` in the environment wins over this setting.
    #[serde(default = "TokenizeConfig::default_cache")]
    pub cache_dir: PathBuf,
    /// Optional Lindera user dictionary (13-column IPADIC CSV) for chat slang such as ポチる.
    #[serde(default)]
    pub user_dictionary: Option<PathBuf>,
}

impl TokenizeConfig {
    /// `$KOTAE_CACHE`, else `$XDG_CACHE_HOME/kotae`, else `~/.cache/kotae` (`.kotae` when there
    /// is no home directory).
    pub fn default_cache() -> PathBuf {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        var("KOTAE_CACHE")
            .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("kotae")))
            .or_else(|| var("HOME").map(|h| h.join(".cache/kotae")))
            .unwrap_or_else(|| PathBuf::from(".kotae"))
    }
}

impl Default for TokenizeConfig {
    fn default() -> Self {
        Self { cache_dir: Self::default_cache(), user_dictionary: None }
    }
}

/// Start-up failure of the tokenize stage.
#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    /// The IPADIC system dictionary could not be found, built or loaded.
    #[error(transparent)]
    Ipadic(#[from] ipadic::IpadicError),
    /// The configured user dictionary is missing or Lindera refused it.
    #[error("user dictionary {path}: {reason}")]
    UserDictionary {
        /// The user dictionary's path (`tokenize.user_dictionary`).
        path: PathBuf,
        /// Why it was refused (`file not found`, or Lindera's message).
        reason: String,
    },
}

/// Coarse part of speech (IPADIC 品詞).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pos {
    /// 名詞 (在庫, サイズ, M)
    Noun,
    /// 動詞 (ある, 買う)
    Verb,
    /// 形容詞 (可愛い, 高い)
    Adjective,
    /// 副詞 (もう, ちょっと)
    Adverb,
    /// 助詞 (か, は, を, けど)
    Particle,
    /// 助動詞 (です, ます, たい)
    AuxVerb,
    /// 記号 (？, ！, punctuation)
    Symbol,
    /// 感動詞 (はい, ええ)
    Interjection,
    /// 連体詞 (この, あの)
    Adnominal,
    /// 接続詞 (でも, じゃあ)
    Conjunction,
    /// 接頭詞 (お, ご, 再)
    Prefix,
    /// フィラー (えーと, あの)
    Filler,
    /// anything else (その他)
    Other,
}

impl Pos {
    fn parse(s: &str) -> Self {
        match s {
            "名詞" => Pos::Noun,
            "動詞" => Pos::Verb,
            "形容詞" => Pos::Adjective,
            "副詞" => Pos::Adverb,
            "助詞" => Pos::Particle,
            "助動詞" => Pos::AuxVerb,
            "記号" => Pos::Symbol,
            "感動詞" => Pos::Interjection,
            "連体詞" => Pos::Adnominal,
            "接続詞" => Pos::Conjunction,
            "接頭詞" => Pos::Prefix,
            "フィラー" => Pos::Filler,
            _ => Pos::Other,
        }
    }

    /// Short stable name used in feature ids.
    pub fn name(self) -> &'static str {
        match self {
            Pos::Noun => "noun",
            Pos::Verb => "verb",
            Pos::Adjective => "adj",
            Pos::Adverb => "adv",
            Pos::Particle => "prt",
            Pos::AuxVerb => "aux",
            Pos::Symbol => "sym",
            Pos::Interjection => "intj",
            Pos::Adnominal => "adn",
            Pos::Conjunction => "conj",
            Pos::Prefix => "pre",
            Pos::Filler => "fill",
            Pos::Other => "other",
        }
    }

    /// Whether a token of this part of speech carries content (used for clustering keys).
    pub fn is_content(self) -> bool {
        matches!(self, Pos::Noun | Pos::Verb | Pos::Adjective | Pos::Adverb)
    }
}

/// IPADIC subcategories (品詞細分類1) that the classifier reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sub {
    /// 終助詞 (か, ね, よ, の as sentence-final)
    Final,
    /// 副助詞／並立助詞／終助詞 (か)
    AdverbialFinal,
    /// 接続助詞 (て, けど, し)
    Conjunctive,
    /// 格助詞
    Case,
    /// 係助詞 (は, も)
    Binding,
    /// 代名詞
    Pronoun,
    /// 非自立 (dependent words: ください's くださる is 動詞,非自立? no — みる, ない, の)
    Dependent,
    /// 数 (numbers)
    Number,
    /// サ変接続 (unknown symbols, 在庫, 購入)
    Sahen,
    /// 固有名詞
    Proper,
    /// 接尾 (counters and suffixes: 番, 号, さん)
    Suffix,
    /// 副詞可能 (nouns of time and degree that act as adverbs: さっき, 今日, 全部)
    Adverbial,
    /// anything else
    Other,
}

impl Sub {
    fn parse(s: &str) -> Self {
        match s {
            "終助詞" => Sub::Final,
            "副助詞／並立助詞／終助詞" => Sub::AdverbialFinal,
            "接続助詞" => Sub::Conjunctive,
            "格助詞" => Sub::Case,
            "係助詞" => Sub::Binding,
            "代名詞" => Sub::Pronoun,
            "非自立" => Sub::Dependent,
            "数" => Sub::Number,
            "サ変接続" => Sub::Sahen,
            "固有名詞" => Sub::Proper,
            "接尾" => Sub::Suffix,
            "副詞可能" => Sub::Adverbial,
            _ => Sub::Other,
        }
    }
}

/// Conjugation form (活用形) of verbs, adjectives and auxiliaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Conj {
    /// 基本形
    Base,
    /// 連用形 (and 連用タ接続, 連用テ接続)
    Continuative,
    /// 命令形
    Imperative,
    /// 未然形
    Irrealis,
    /// 仮定形
    Conditional,
    /// 体言接続 and others, or none
    Other,
}

impl Conj {
    fn parse(s: &str) -> Self {
        match s {
            "基本形" => Conj::Base,
            "命令ｅ" | "命令ｉ" | "命令ｒｏ" | "命令ｙｏ" => Conj::Imperative,
            s if s.starts_with("連用") => Conj::Continuative,
            s if s.starts_with("未然") => Conj::Irrealis,
            s if s.starts_with("仮定") => Conj::Conditional,
            _ => Conj::Other,
        }
    }
}

/// One token: a byte range of the surface view plus the dictionary fields the classifier reads.
#[derive(Debug, Clone, Copy)]
pub struct Token {
    /// Byte range in the normalized surface view.
    pub start: u32,
    /// End of the byte range, exclusive.
    pub end: u32,
    /// Coarse part of speech (品詞).
    pub pos: Pos,
    /// First subcategory (品詞細分類1) for those the classifier reads; [`Sub::Other`] otherwise.
    pub sub: Sub,
    /// Conjugation form (活用形) of verbs, adjectives and auxiliaries; [`Conj::Other`] for other
    /// words.
    pub conj: Conj,
    /// Byte range of the base form (原形) in [`Tokens::arena`]; the surface when unknown.
    base: (u32, u32),
    /// Whether the word was not in the dictionary.
    pub unknown: bool,
    /// Index of the dictionary word in its vocabulary ([`Tokens::vocabulary`]); [`NO_WORD`] when
    /// the base form is not fixed by the word alone.
    word: u32,
}

/// [`Token::word`] of tokens that are not one dictionary word with one base form.
const NO_WORD: u32 = u32::MAX;

impl Token {
    /// A dense index of the dictionary word behind this token, the same for every token of that
    /// word in the same vocabulary ([`Tokens::vocabulary`]), so that whatever is derived from the
    /// word's base form can be kept by index instead of looked up by name every time. `None` for
    /// unknown words: they share dictionary ids by character class and their base form is their
    /// own surface.
    pub fn word(&self) -> Option<u32> {
        (self.word != NO_WORD).then_some(self.word)
    }
}

/// The tokens of one message; buffers are reused across messages.
#[derive(Debug, Default, Clone)]
pub struct Tokens {
    /// The message's tokens, in text order; their ranges do not overlap.
    pub list: Vec<Token>,
    arena: String,
    vocabulary: u64,
}

impl Tokens {
    /// The base form (原形) of a token.
    pub fn base(&self, t: &Token) -> &str {
        &self.arena[t.base.0 as usize..t.base.1 as usize]
    }

    /// Which numbering the [`Token::word`] indices follow: unique to one tokenizer between two
    /// clears of its word cache, never reused in the process, never 0. Equal vocabularies mean
    /// equal indices name the same words.
    pub fn vocabulary(&self) -> u64 {
        self.vocabulary
    }

    fn clear(&mut self) {
        self.list.clear();
        self.arena.clear();
    }
}

/// The dictionary and segmenter, built once at start-up and shared by every worker.
#[derive(Clone)]
pub struct TokenizerShared {
    segmenter: Segmenter,
    /// The same segmenter, grouping unknown characters into words of at most two: for runs of
    /// hiragana the first one made a single unknown word of ([`Tokenizer::process`]).
    capped: Segmenter,
}

impl TokenizerShared {
    /// Loads (building on first use) the IPADIC dictionary and the optional user dictionary.
    pub fn new(config: &TokenizeConfig) -> Result<Self, TokenizeError> {
        let dictionary: Dictionary = ipadic::load(&config.cache_dir)?;
        let user = match &config.user_dictionary {
            Some(path) => Some(load_user(path, &dictionary)?),
            None => None,
        };
        let segmenter = Segmenter::new(Mode::Normal, dictionary, user);
        let capped = segmenter.clone().max_grouping_len(Some(1));
        Ok(Self { segmenter, capped })
    }

    /// A per-thread tokenizer.
    pub fn tokenizer(&self) -> Tokenizer {
        Tokenizer {
            worker: self.segmenter.new_worker(),
            capped: self.capped.new_worker(),
            hiragana: Vec::new(),
            known: rustc_hash::FxHashMap::default(),
            words: 0,
            vocabulary: next_vocabulary(),
        }
    }
}

fn load_user(path: &Path, dictionary: &Dictionary) -> Result<lindera::dictionary::UserDictionary, TokenizeError> {
    let err = |reason: String| TokenizeError::UserDictionary { path: path.into(), reason };
    if !path.exists() {
        return Err(err("file not found".into()));
    }
    load_user_dictionary(&path.to_string_lossy(), &dictionary.metadata).map_err(|e| err(e.to_string()))
}

/// The tokenize stage of one worker thread.
pub struct Tokenizer {
    worker: SegmentWorker,
    /// For hiragana runs the first segmentation left as one unknown word.
    capped: SegmentWorker,
    /// Scratch: whether each token of the first segmentation is all hiragana.
    hiragana: Vec<bool>,
    /// Dictionary fields already read, by word: chat reuses a small vocabulary, and reading a
    /// word's fields means splitting and UTF-8-checking its detail record every time.
    known: rustc_hash::FxHashMap<(u8, u32), Known>,
    /// Word indices given out so far ([`Token::word`]).
    words: u32,
    /// The numbering of those indices ([`Tokens::vocabulary`]); a new one whenever `known` is
    /// cleared and the indices start over.
    vocabulary: u64,
}

/// What the classifier reads of a dictionary word (base form `None`: the surface).
#[derive(Clone)]
struct Known {
    pos: Pos,
    sub: Sub,
    conj: Conj,
    base: Option<Box<str>>,
    /// [`Token::word`]: only words whose base form the dictionary gives have one.
    word: u32,
}

/// A vocabulary id never handed out before in this process.
fn next_vocabulary() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Upper bound on cached words per worker; past it the cache starts over.
const KNOWN_CAP: usize = 100_000;

impl Tokenizer {
    /// The reading (読み, katakana) of a word or phrase, when the dictionary knows every word
    /// of it (for dictionary entries: 送料 → ソウリョウ). Not for the per-message path.
    pub fn reading(&mut self, text: &str) -> Option<String> {
        let tokens = self.worker.segment(text).ok()?;
        let mut out = String::new();
        for tok in &tokens {
            if tok.word_id.is_unknown() || !tok.word_id.is_system() {
                return None;
            }
            let reading = tok.dictionary.word_details_iter(tok.word_id.id() as usize).nth(7)?;
            if reading == "*" || reading.is_empty() {
                return None;
            }
            out.push_str(reading);
        }
        (!out.is_empty()).then_some(out)
    }

    /// Segments the surface view `text` into `out`.
    ///
    /// Chat typed without kana-kanji conversion (つぎのはいしんいつですか) defeats IPADIC's unknown
    /// words: where no dictionary word starts, the whole rest of the hiragana run becomes one
    /// unknown noun, which hides every word in it (いつ, ですか). Such a run is segmented again
    /// with unknown words of at most two characters, so the dictionary's words in it are found.
    pub fn process(&mut self, text: &str, out: &mut Tokens) {
        out.clear();
        if text.is_empty() {
            return;
        }
        if self.known.len() > KNOWN_CAP {
            self.known.clear();
            self.words = 0;
            self.vocabulary = next_vocabulary();
        }
        out.vocabulary = self.vocabulary;
        // Lindera fails only on inputs past its sentence limit, which the size limit excludes;
        // a failure leaves the message without tokens rather than failing it.
        let Ok(tokens) = self.worker.segment(text) else {
            return;
        };
        let mut long = false;
        for tok in &tokens {
            long |= tok.word_id.is_unknown()
                && tok.surface.len() >= LONG_HIRAGANA_BYTES
                && tok.surface.chars().all(is_hiragana);
            push_token(&mut self.known, &mut self.words, tok, 0, out);
        }
        drop(tokens);
        if long {
            self.hiragana.clear();
            self.hiragana
                .extend(out.list.iter().map(|t| text[t.start as usize..t.end as usize].chars().all(is_hiragana)));
            let runs = hiragana_runs(&out.list, &self.hiragana);
            self.resegment(text, &runs, out);
        }
    }

    /// Replaces the tokens inside each of `runs` (byte ranges of `text`, in order) by the capped
    /// segmenter's tokens of that run.
    fn resegment(&mut self, text: &str, runs: &[(usize, usize)], out: &mut Tokens) {
        let first = std::mem::take(&mut out.list);
        let mut list = Vec::with_capacity(first.len() + 8);
        let mut next = 0;
        for &(from, to) in runs {
            list.extend(first.iter().filter(|t| t.start as usize >= next && (t.end as usize) <= from));
            out.list = Vec::new();
            match self.capped.segment(&text[from..to]) {
                Ok(tokens) => {
                    for tok in &tokens {
                        push_token(&mut self.known, &mut self.words, tok, from, out);
                    }
                }
                Err(_) => out.list.extend(first.iter().filter(|t| t.start as usize >= from && t.end as usize <= to)),
            }
            list.append(&mut out.list);
            next = to;
        }
        list.extend(first.iter().filter(|t| t.start as usize >= next));
        out.list = list;
    }
}

/// An unknown all-hiragana word this long or longer (four characters of three bytes) hides
/// the words in it, and its run is segmented again.
const LONG_HIRAGANA_BYTES: usize = 12;

fn is_hiragana(c: char) -> bool {
    matches!(c, '\u{3041}'..='\u{3096}' | 'ー' | 'ゝ' | 'ゞ')
}

/// The byte ranges to segment again: around each unknown word of four or more hiragana, the
/// run of adjoining all-hiragana tokens, so the new segmentation does not depend on where the
/// first one cut (つ｜ぎのはいしん… from つぎのはいしん…). `hiragana[i]`: token `i` is all hiragana.
fn hiragana_runs(list: &[Token], hiragana: &[bool]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < list.len() {
        if !hiragana[i] {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut long = false;
        while j < list.len() && hiragana[j] && (j == i || list[j].start == list[j - 1].end) {
            long |= list[j].unknown && (list[j].end - list[j].start) as usize >= LONG_HIRAGANA_BYTES;
            j += 1;
        }
        if long {
            runs.push((list[i].start as usize, list[j - 1].end as usize));
        }
        i = j;
    }
    runs
}

/// Reads a Lindera token's dictionary fields (once per word, then from `known`) and appends it
/// to `out`, its offsets moved by `offset` bytes.
fn push_token(
    known: &mut rustc_hash::FxHashMap<(u8, u32), Known>,
    words: &mut u32,
    tok: &lindera::token::Token<'_>,
    offset: usize,
    out: &mut Tokens,
) {
    let id = tok.word_id.id();
    // Keyed by lexicon (system, user, unknown) and id. Unknown words share ids by character
    // class, so their base form is always their own surface.
    let lexicon = if tok.word_id.is_unknown() { 2 } else { u8::from(!tok.word_id.is_system()) };
    let known = known.entry((lexicon, id)).or_insert_with(|| {
        let id = id as usize;
        let mut fields = if tok.word_id.is_unknown() {
            tok.dictionary.unknown_word_details_iter(id)
        } else if tok.word_id.is_system() {
            tok.dictionary.word_details_iter(id)
        } else if let Some(user) = tok.user_dictionary {
            user.word_details_iter(id)
        } else {
            tok.dictionary.unknown_word_details_iter(id)
        };
        let pos = Pos::parse(fields.next().unwrap_or(""));
        let sub = Sub::parse(fields.next().unwrap_or(""));
        let conj = Conj::parse(fields.nth(3).unwrap_or(""));
        let base: Option<Box<str>> = match fields.next() {
            Some(b) if b != "*" && !b.is_empty() && !tok.word_id.is_unknown() => Some(b.into()),
            _ => None,
        };
        let mut word = NO_WORD;
        if base.is_some() {
            word = *words;
            *words += 1;
        }
        Known { pos, sub, conj, base, word }
    });
    let from = out.arena.len() as u32;
    out.arena.push_str(known.base.as_deref().unwrap_or(tok.surface.as_ref()));
    out.list.push(Token {
        start: (tok.byte_start + offset) as u32,
        end: (tok.byte_end + offset) as u32,
        pos: known.pos,
        sub: known.sub,
        conj: known.conj,
        base: (from, out.arena.len() as u32),
        unknown: tok.word_id.is_unknown(),
        word: known.word,
    });
}
