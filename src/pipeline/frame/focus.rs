//! Which parts of a question say what it asks, and which are the asker's asides.
//!
//! A chat question often carries more than its ask: a second sentence about the asker
//! (「これ暖かいですか？北海道なんですけど」, 「アーカイブ残りますか？あとでパンツのとこ見返したい」) or a
//! condition before it (「着てみて合わなかったら返品できますか」, 「今日頼んだら明日発送ですか」) or a reason
//! (「娘が好きそうなので、ほかの色も見せて」). What
//! those parts name (北海道, パンツ, 着てみて) is not what the host answers, so a frame leaves
//! their concepts, topics, words and kind of ask out. The values they name (M, 黒, 98cm) still
//! count: they say which thing is meant wherever they stand.

use smallvec::SmallVec;

use crate::dictionary::{Hit, Rule};
use crate::label::Label;
use crate::pipeline::normalize::Normalized;
use crate::pipeline::tokenize::{Conj, Pos, Sub, Token, Tokens};

/// Conjunctive particles after which a clause is the asker's reason, not the ask (娘が好きそう
/// なので…, 高いから…). A concession (Mなんですけど…) often names the very thing asked, so it stays.
const REASON: &[&str] = &["ので", "から"];

/// Where the asides of a question are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Asides {
    /// Byte ranges of the original text that are asides (sentences without a question in a
    /// message that has one, and the conditions before a question's main clause).
    pub original: Vec<(usize, usize)>,
    /// The sentences among them, as byte ranges of the key view: what they name does not say
    /// which product the question is about.
    pub sentences: Vec<[u32; 2]>,
}

impl Asides {
    /// Whether the original byte range `start..end` lies wholly inside an aside.
    pub fn covers(&self, (start, end): (usize, usize)) -> bool {
        self.original.iter().any(|&(s, e)| s <= start && end <= e)
    }

    /// Forgets every aside.
    pub fn clear(&mut self) {
        self.original.clear();
        self.sentences.clear();
    }
}

fn ends_sentence(s: &str) -> bool {
    matches!(s, "?" | "!" | "。" | "．" | "？" | "！")
}

/// Finds the asides of a question from its tokens (in the surface view) and rule hits (in the
/// key view).
pub fn find(norm: &Normalized, tokens: &Tokens, hits: &[Hit], rules: &[Rule], out: &mut Asides) {
    out.clear();
    let surface = norm.surface.as_str();
    let list = &tokens.list;
    if list.is_empty() {
        return;
    }
    // Sentences as token ranges: they end at ？！。 (several in a row end one) or where the text
    // has a space or a line break.
    let ends_at = |i: usize| list.get(i).is_some_and(|t| ends_sentence(&surface[t.start as usize..t.end as usize]));
    let mut sentences: SmallVec<[(usize, usize); 4]> = SmallVec::new();
    let mut first = 0;
    for (i, t) in list.iter().enumerate() {
        let gap = list.get(i + 1).is_some_and(|n| {
            surface.get(t.end as usize..n.start as usize).is_some_and(|g| g.chars().any(char::is_whitespace))
        });
        let last = i + 1 == list.len();
        let run_goes_on = ends_at(i) && ends_at(i + 1);
        if last || ((ends_at(i) || gap) && !run_goes_on) {
            sentences.push((first, i + 1));
            first = i + 1;
        }
    }
    // A word that names something (not ？ or ｗ read as an unknown noun).
    let names = |t: &Token| {
        (t.pos.is_content() || t.unknown)
            && surface[t.start as usize..t.end as usize].chars().any(char::is_alphanumeric)
    };
    let span = |a: usize, b: usize| norm.surface.original_span(list[a].start as usize, list[b - 1].end as usize);
    // Where question cues are; a message of one sentence (most) does not need to know.
    let cue_spans: SmallVec<[(usize, usize); 4]> = if sentences.len() > 1 {
        hits.iter()
            .filter(|h| {
                let r = &rules[h.rule as usize];
                r.declared == Some(Label::Question) || r.id.split('.').nth(1) == Some("question")
            })
            .map(|h| norm.key.original_span(h.start as usize, h.end as usize))
            .collect()
    } else {
        SmallVec::new()
    };
    let asks = |&(a, b): &(usize, usize)| {
        let (s, e) = span(a, b);
        let mark = list[a..b].iter().any(|t| matches!(&surface[t.start as usize..t.end as usize], "?" | "？"));
        mark || cue_spans.iter().any(|&(cs, ce)| s <= cs && ce <= e)
    };
    // A sentence with a verb or adjective says something of its own; a fragment (「ワンピ」 「M」)
    // belongs to the question beside it.
    let predicate = |&(a, b): &(usize, usize)| {
        list[a..b].iter().any(|t| matches!(t.pos, Pos::Verb | Pos::Adjective | Pos::AuxVerb))
    };
    if sentences.len() > 1 && sentences.iter().any(asks) {
        for s in sentences.iter().filter(|s| !asks(s) && predicate(s)) {
            let (os, oe) = span(s.0, s.1);
            out.original.push((os, oe));
            if let Some((ks, ke)) = norm.key.span_of(os, oe) {
                out.sentences.push([ks as u32, ke as u32]);
            }
        }
    }
    // Within a question, what comes before its last condition or concession is the asker's.
    for &(a, b) in sentences.iter().filter(|s| sentences.len() == 1 || asks(s)) {
        let cut = (a..b).rev().find(|&i| {
            let t = &list[i];
            let conditional = t.conj == Conj::Conditional && matches!(t.pos, Pos::Verb | Pos::Adjective | Pos::AuxVerb);
            let reason = t.pos == Pos::Particle && t.sub == Sub::Conjunctive && REASON.contains(&tokens.base(t));
            (conditional || reason) && list[i + 1..b].iter().any(&names)
        });
        if let Some(i) = cut {
            // 合えば: the particle after a conditional form goes with it.
            let end = if list.get(i + 1).is_some_and(|t| t.pos == Pos::Particle && tokens.base(t) == "ば") {
                i + 2
            } else {
                i + 1
            };
            out.original.push(span(a, end));
        }
    }
}
