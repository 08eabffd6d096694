//! Lines shaped like a question or a request that ask the host nothing, as the label rules say
//! (rhetorical forms such as 可愛くない？！ and やばくない are not questions): a rhetorical
//! appraisal (安くない？, 可愛すぎない？, スタイルいいけど？), a surprised echo of one noun
//! (え、クーポン？), a fact appraised (取り置きできるのありがたい) and a hold withdrawn
//! (取り置きやめて今買います).

use crate::dictionary::Hit;
use crate::label::Label;
use crate::pipeline::normalize::Normalized;
use crate::pipeline::tokenize::{Conj, Pos, Sub, Token, Tokens};

use super::Classifier;
use super::structure::is_word_token;

/// Words that appraise (base forms): what a viewer says of a product or of the shop to praise or
/// to judge it, not a property a host could state (重い, きつい, 暑い are no appraisal: 匂いキツくない？
/// asks). A rhetorical question on one of them voices the viewer's own verdict.
const APPRAISAL: [&str; 40] = [
    "可愛い",
    "かわいい",
    "カワイイ",
    "やばい",
    "ヤバい",
    "ヤバイ",
    "いい",
    "良い",
    "よい",
    "すごい",
    "凄い",
    "スゴい",
    "安い",
    "やすい",
    "かっこいい",
    "カッコいい",
    "格好いい",
    "かっこよい",
    "美味しい",
    "おいしい",
    "うまい",
    "旨い",
    "美しい",
    "素晴らしい",
    "エモい",
    "えもい",
    "尊い",
    "えぐい",
    "エグい",
    "ありがたい",
    "有難い",
    "嬉しい",
    "うれしい",
    "楽しい",
    "優しい",
    "偉い",
    "えらい",
    "素敵",
    "最高",
    "神",
];

/// Predicates that appraise a fact named before them (洗えるの助かる, 届くの楽しみ), beside
/// [`APPRAISAL`].
const FACT_APPRAISAL: [&str; 5] = ["助かる", "楽しみ", "便利", "天才", "優秀"];

fn is_appraisal(base: &str) -> bool {
    APPRAISAL.contains(&base)
}

/// Whether a word is a negation (ない, and ん/ぬ of 安すぎん).
fn is_negation(tokens: &Tokens, t: &Token) -> bool {
    matches!(t.pos, Pos::AuxVerb | Pos::Adjective | Pos::Particle) && matches!(tokens.base(t), "ない" | "ぬ" | "ん")
}

impl Classifier {
    /// Whether a line's only ask is rhetorical: its one question mark closes
    /// - a negative question on an appraisal, in the plain form (安くない？, 可愛すぎない？, やばくない？
    ///   このシルエット): the viewer states a verdict and invites agreement. The polite form asks
    ///   the host (安くないですか？ wants the price confirmed, and is left alone), and so does
    ///   the same form on a property (匂いキツくない？, 白だと透けない？);
    /// - an appraisal with a concessive けど (普通にスタイルいいけど？): a retort;
    /// - a surprised echo, an interjection and a bare noun (え、クーポン？, えっ6990円？): the viewer
    ///   repeats what the host said. An echo of stock (え、M売り切れ？) asks whether it is so, and
    ///   is left alone.
    ///
    /// Any other ask in the line (a question cue outside the form, a second question mark) keeps
    /// it a question.
    pub(super) fn rhetorical(&self, norm: &Normalized, tokens: &Tokens, hits: &[Hit]) -> bool {
        let surface = norm.surface.as_str();
        if !surface.contains(['?', '？']) {
            return false;
        }
        let text = |t: &Token| &surface[t.start as usize..t.end as usize];
        let mut marks = tokens.list.iter().enumerate().filter(|(_, t)| text(t).contains(['?', '？']));
        let Some((q, mark)) = marks.next() else { return false };
        if marks.next().is_some() {
            return false;
        }
        let before = &tokens.list[..q];
        let mut words = before.iter().rev().filter(|t| is_word_token(surface, t));
        let (w1, w2, w3) = (words.next(), words.next(), words.next());
        let appraisal = |t: &Token| t.pos == Pos::Adjective && is_appraisal(tokens.base(t));
        let start = match (w1, w2, w3) {
            // 安くない, やばくない
            (Some(n), Some(a), _) if is_negation(tokens, n) && appraisal(a) && a.conj == Conj::Continuative => a,
            // 可愛すぎない, 安すぎん
            (Some(n), Some(s), Some(a))
                if is_negation(tokens, n) && matches!(tokens.base(s), "すぎる" | "すぎ" | "過ぎる") && appraisal(a) =>
            {
                a
            }
            // スタイルいいけど
            (Some(k), Some(a), _)
                if k.pos == Pos::Particle
                    && matches!(tokens.base(k), "けど" | "けれど" | "けども")
                    && appraisal(a)
                    && a.conj == Conj::Base =>
            {
                a
            }
            _ => match self.echo(norm, tokens, hits, q) {
                Some(start) => start,
                None => return false,
            },
        };
        // The form is the line's only ask: every question cue lies inside it.
        let original = |s: u32, e: u32| norm.surface.original_span(s as usize, e as usize);
        let (from, to) = (original(start.start, start.end).0, original(mark.start, mark.end).1);
        !hits.iter().any(|h| {
            let (s, e) = norm.key.original_span(h.start as usize, h.end as usize);
            self.dictionaries.rules()[h.rule as usize].declared == Some(Label::Question) && (s < from || e > to)
        })
    }

    /// The interjection that starts a surprised echo closed by the question mark at token `q`:
    /// the line is an interjection (え, えっ) and one to three nouns (クーポン, 6990円) before it,
    /// and no word after it; none of the nouns names stock.
    fn echo<'t>(&self, norm: &Normalized, tokens: &'t Tokens, hits: &[Hit], q: usize) -> Option<&'t Token> {
        let surface = norm.surface.as_str();
        let is_word = |t: &&Token| is_word_token(surface, t);
        if tokens.list[q + 1..].iter().any(|t| is_word(&t)) {
            return None;
        }
        let mut words = tokens.list[..q].iter().filter(is_word);
        let first = words.next().filter(|t| matches!(t.pos, Pos::Interjection | Pos::Filler))?;
        let mut nouns = 0;
        for t in words {
            if t.pos != Pos::Noun || t.sub == Sub::Pronoun {
                return None;
            }
            nouns += 1;
        }
        if !(1..=3).contains(&nouns) {
            return None;
        }
        let stock = hits.iter().any(|h| self.stock_rule[h.rule as usize]);
        (!stock).then_some(first)
    }

    /// Whether a line with no question mark appraises a fact it names (取り置きできるのありがたい,
    /// 洗えるの助かる, 届くの楽しみ): a clause made a noun by の or こと, then an appraisal. It
    /// says what the viewer thinks of what the host said; it asks the host for nothing (the label
    /// rules' question), however much the clause looks like asking (できる, 使える).
    pub(super) fn appraises_fact(&self, norm: &Normalized, tokens: &Tokens) -> bool {
        let surface = norm.surface.as_str();
        if surface.contains(['?', '？']) {
            return false;
        }
        let mut words = tokens.list.iter().rev().filter(|t| is_word_token(surface, t)).skip_while(|t| {
            (t.pos == Pos::Particle && t.sub == Sub::Final)
                || (t.pos == Pos::AuxVerb && matches!(tokens.base(t), "た" | "だ" | "です"))
        });
        let Some(predicate) = words.next() else { return false };
        let base = tokens.base(predicate);
        if !(is_appraisal(base) || FACT_APPRAISAL.contains(&base)) {
            return false;
        }
        let mut rest = words.skip_while(|t| t.pos == Pos::Particle && matches!(tokens.base(t), "が" | "は" | "って"));
        rest.next().is_some_and(|t| matches!(tokens.base(t), "の" | "こと") && t.pos != Pos::Particle)
    }

    /// Whether the hold cue ending at byte `end` of the original text is withdrawn by the word after
    /// it (取り置きやめて今買います, 取り置きキャンセルで): the line asks for no hold, which is what
    /// makes a purchase a question too by the label rules.
    pub(super) fn hold_withdrawn(&self, norm: &Normalized, tokens: &Tokens, end: u32) -> bool {
        let surface = norm.surface.as_str();
        let next = tokens.list.iter().filter(|t| is_word_token(surface, t)).find(|t| {
            let (s, _) = norm.surface.original_span(t.start as usize, t.end as usize);
            s as u32 >= end
        });
        next.is_some_and(|t| matches!(tokens.base(t), "やめる" | "止める" | "辞める" | "キャンセル" | "なし"))
    }
}
