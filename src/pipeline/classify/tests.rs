//! Unit tests of the classify stage (`src/pipeline/classify/`: `mod.rs`, `cues.rs`, `scoring.rs`).

use std::path::Path;

use super::model::{UNTRAINED_BIAS, sigmoid};
use super::*;
use crate::pipeline::normalize::{NormalizeConfig, Normalizer};
use crate::pipeline::tokenize::{TokenizeConfig, Tokenizer, TokenizerShared};

/// A model with the given features, each weighing +4 toward one label, ids in this order.
fn model(features: &[(&str, Label)]) -> Arc<Model> {
    let mut model = Model::default();
    for &(name, label) in features {
        let mut w = [0f32; 4];
        w[label.index()] = 4.0;
        model.insert(name, w, [0.0; CATEGORIES]);
    }
    Arc::new(model)
}

/// Normalizes, tokenizes and matches `text` with `tokenizer`.
fn prepare(tokenizer: &mut Tokenizer, dictionaries: &Dictionaries, text: &str) -> (Normalized, Tokens, Vec<Hit>) {
    let (mut norm, mut tokens, mut hits) = (Normalized::default(), Tokens::default(), Vec::new());
    Normalizer::new(&NormalizeConfig::default()).process(text, &mut norm);
    tokenizer.process(norm.surface.as_str(), &mut tokens);
    dictionaries.find_mapped(&norm.key, &mut hits);
    (norm, tokens, hits)
}

/// Classifies a prepared message through `scratch`, checking it against a fresh scratch.
fn labels(
    classifier: &Classifier,
    text: &str,
    message: &(Normalized, Tokens, Vec<Hit>),
    scratch: &mut Scratch,
) -> Vec<Label> {
    let (norm, tokens, hits) = message;
    let mut reused = Classification::default();
    classifier.classify(text, norm, tokens, hits, scratch, &mut reused);
    let mut fresh = Classification::default();
    classifier.classify(text, norm, tokens, hits, &mut Scratch::default(), &mut fresh);
    assert_eq!(reused.scores, fresh.scores, "{text}");
    assert_eq!(reused.reasons, fresh.reasons, "{text}");
    reused.labels.iter().collect()
}

/// Whether a message is labelled a question, through the IPADIC tokenizer, dictionaries made of
/// `lists` (file name and text) and a model of `features` (see [`model`]).
fn asker(lists: &[(&str, &str)], features: &[(&str, Label)]) -> impl FnMut(&str) -> bool {
    let shared = TokenizerShared::new(&TokenizeConfig::default()).expect("IPADIC");
    let sources: Vec<_> = lists.iter().map(|(file, text)| (Path::new("d").join(file), text.to_string())).collect();
    let dictionaries = Arc::new(Dictionaries::compile(Path::new("d"), &sources, &NormalizeConfig::default()).unwrap());
    let classifier = Classifier::new(dictionaries.clone(), model(features), ClassifyConfig::default());
    let mut tokenizer = shared.tokenizer();
    let mut scratch = Scratch::default();
    move |text| {
        let message = prepare(&mut tokenizer, &dictionaries, text);
        labels(&classifier, text, &message, &mut scratch).contains(&Label::Question)
    }
}

/// The IPADIC tokenizer and dictionaries made of one spam list.
fn tokenizer_and_spam_list(spam: &str) -> (TokenizerShared, Arc<Dictionaries>) {
    let shared = TokenizerShared::new(&TokenizeConfig::default()).expect("IPADIC");
    let sources = [(PathBuf::from("d/spam.txt"), spam.to_string())];
    let dictionaries = Arc::new(Dictionaries::compile(Path::new("d"), &sources, &NormalizeConfig::default()).unwrap());
    (shared, dictionaries)
}

#[test]
fn word_feature_ids_are_relearned_for_each_model_and_vocabulary() {
    let (shared, dictionaries) = tokenizer_and_spam_list("[x]\nzzz\n");
    let classifier = |model| Classifier::new(dictionaries.clone(), model, ClassifyConfig::default());
    let [q, p, s, a, o] = Label::ALL.map(|l| [l]);
    // Tokenizers number words in the order they first see them.
    let (mut first, mut second) = (shared.tokenizer(), shared.tokenizer());
    let (postage, stock) = ("送料いくら", "在庫ありますか");
    let postage_first = prepare(&mut first, &dictionaries, postage);
    let stock_first = prepare(&mut first, &dictionaries, stock);
    let stock_second = prepare(&mut second, &dictionaries, stock);
    let word = |m: &(Normalized, Tokens, Vec<Hit>)| m.1.list[0].word();
    assert!(word(&postage_first).is_some() && word(&stock_first).is_some(), "dictionary words");
    assert_eq!(word(&postage_first), word(&stock_second), "送料 of one is 在庫 of the other");

    // One vocabulary, the model changes: w:在庫 at one id, at another, absent, back. A
    // stale id would score another label.
    let classifiers = [
        classifier(model(&[("w:在庫", Label::Question)])),
        classifier(model(&[("w:送料", Label::Spam), ("w:在庫", Label::Abuse)])),
        classifier(model(&[("w:送料", Label::Spam)])),
        classifier(model(&[("w:在庫", Label::PurchaseIntent)])),
    ];
    let mut scratch = Scratch::default();
    let seen: Vec<_> = classifiers.iter().map(|c| labels(c, stock, &stock_first, &mut scratch)).collect();
    assert_eq!(seen, [q, a, o, p]);

    // One model, the vocabulary changes: the ids of 送料 must not be taken for 在庫's.
    let both = &classifiers[1];
    assert_eq!(labels(both, postage, &postage_first, &mut scratch), s);
    assert_eq!(labels(both, stock, &stock_second, &mut scratch), a);
}

#[test]
fn a_feature_counts_once_per_message() {
    let (shared, dictionaries) = tokenizer_and_spam_list("[x => spam]\nzzz\n");
    let classifier = Classifier::new(
        dictionaries.clone(),
        model(&[("w:在庫", Label::Question), ("w:送料", Label::Abuse)]),
        ClassifyConfig::default(),
    );
    let mut tokenizer = shared.tokenizer();
    let mut scratch = Scratch::default();
    let mut scores = |text| {
        let (norm, tokens, hits) = prepare(&mut tokenizer, &dictionaries, text);
        let mut out = Classification::default();
        classifier.classify(text, &norm, &tokens, &hits, &mut scratch, &mut out);
        out.scores
    };
    // Model features and a declared rule without a model weight, once each.
    let (yes, no, rule) =
        (sigmoid(UNTRAINED_BIAS + 4.0), sigmoid(UNTRAINED_BIAS), UNTRAINED_BIAS + DEFAULT_RULE_WEIGHT);
    assert_eq!(scores("在庫と送料zzz"), [yes, no, sigmoid(rule), yes]);
    assert_eq!(scores("在庫と在庫と送料zzz zzz 送料"), [yes, no, sigmoid(rule), yes]);
}

/// The rule ids a text fires, through `list` (named `file`) and an empty model.
fn rules_fired(shared: &TokenizerShared, file: &str, list: &str, text: &str) -> Vec<String> {
    features_where(shared, file, list, text, |name, rule| rule || name == "ja.struct.quoted")
}

/// The feature names a text gives that `keep` keeps (by name, and whether it is a rule), through
/// `list` (named `file`) and an empty model.
fn features_where(
    shared: &TokenizerShared,
    file: &str,
    list: &str,
    text: &str,
    keep: impl Fn(&str, bool) -> bool,
) -> Vec<String> {
    let sources = [(PathBuf::from(format!("d/{file}")), list.to_string())];
    let dictionaries = Arc::new(Dictionaries::compile(Path::new("d"), &sources, &NormalizeConfig::default()).unwrap());
    let classifier = Classifier::new(dictionaries.clone(), Arc::new(Model::default()), ClassifyConfig::default());
    let (norm, tokens, hits) = prepare(&mut shared.tokenizer(), &dictionaries, text);
    let mut fired = Vec::new();
    classifier.features(text, &norm, &tokens, &hits, Ngrams::Model, &mut String::new(), &mut |f| {
        if keep(f.name, f.rule.is_some()) {
            fired.push(f.name.to_string());
        }
    });
    fired
}

#[test]
fn a_hiragana_cue_counts_only_where_a_word_starts() {
    let (shared, _) = tokenizer_and_spam_list("[x]\nzzz\n");
    let list = "[wh => question]\nいくら\n[end]\nる? | end | inword\n";
    let fired = |text| rules_fired(&shared, "question.txt", list, text);
    assert_eq!(fired("送料いくら"), ["ja.question.wh"]);
    assert!(fired("わからないくらい可愛い").is_empty(), "いくら is not in わからないくらい");
    assert_eq!(fired("白浮きする？"), ["ja.question.end"], "an inword ending attaches to any word");
}

#[test]
fn an_interrogative_in_a_concessive_clause_asks_nothing() {
    let (shared, _) = tokenizer_and_spam_list("[x]\nzzz\n");
    let list = "[wh => question]\n何回\n何枚\n何で\nいくら\n";
    let asks = |text| {
        features_where(&shared, "question.txt", list, text, |name, _| {
            name == "ja.question.wh" || name == "ja.tok.wh_end"
        })
    };
    assert_eq!(asks("何回洗える？"), ["ja.question.wh"]);
    assert_eq!(asks("保証何年"), ["ja.tok.wh_end"]);
    assert!(asks("何でも").is_empty());
    assert!(asks("撥水何回洗っても落ちにくいって").is_empty());
    assert!(asks("冬はニット何枚あってもいい").is_empty());
    assert!(asks("何でも似合う").is_empty());
    assert!(asks("いくら食べても太らない").is_empty());
    // The clause ends at a symbol or a sentence-final particle: the ても of the next one is not its.
    assert_eq!(asks("何回洗えるの？洗っても縮まない？"), ["ja.question.wh"]);
    assert_eq!(asks("何回？洗っても縮まない？"), ["ja.question.wh"]);
    assert_eq!(asks("何回洗えるかな 洗っても平気？"), ["ja.question.wh"]);
}

#[test]
fn relaying_the_host_or_musing_is_not_asking_unless_it_asks() {
    let mut asks = asker(
        &[
            ("question.txt", "[can => question]\nできる\nok\nどっち\n"),
            ("rhetorical.txt", "[relay]\nらしいよ\nらしい | end\n"),
        ],
        &[("ja.question.can", Label::Question)],
    );
    assert!(asks("クーポン併用できる"));
    assert!(!asks("クーポン併用できるらしいよ"));
    assert!(!asks("クーポン併用できるらしいよ〜笑"));
    assert!(!asks("フタ外せばレンジOKって"));
    assert!(!asks("1週間までOKだって！"));
    // A question mark asks again; a relay cue inside the message is not its end.
    assert!(asks("レンジOKって？"));
    assert!(asks("併用できるらしいよ？"));
    assert!(asks("併用できるらしいよってコメあったけど本当にできる"));
    assert!(!asks("併用できるかな"));
    assert!(!asks("どっちにしよかなー"));
    assert!(asks("併用できるかな？"));
}

#[test]
fn thanking_for_an_answer_is_not_asking_unless_it_asks() {
    let mut asks = asker(
        &[
            ("question.txt", "[request => question]\n教えて\n[can => question]\nできる\n"),
            ("rhetorical.txt", "[thanks]\nありがとう | end\nありがとうございます | end\n"),
        ],
        &[("ja.question.request", Label::Question), ("ja.question.can", Label::Question)],
    );
    assert!(asks("窯元の名前教えて"));
    assert!(!asks("窯元の名前教えてくれてありがとう"));
    assert!(!asks("送料のこと教えてくれてありがとうございます！"));
    // Thanks first, then a question; or a question mark: it asks.
    assert!(asks("ありがとう、あと洗濯機OKか教えて"));
    assert!(asks("教えてくれてありがとう、返品もできる？"));
}

#[test]
fn rhetorical_appraisals_echoes_and_appraised_facts_ask_nothing_unless_something_else_does() {
    // Every line with a question mark scores as a question, as the shipped model mostly does.
    let mut asks = asker(
        &[
            (
                "question.txt",
                "[masuka => question]\nですか\n[can => question]\nできる\n[request => question]\n見せて\n",
            ),
            ("synonyms.txt", "[stock]\n売り切れ\n"),
        ],
        &[("ja.tok.qmark", Label::Question), ("ja.tok.qmark_excl", Label::Question)],
    );
    // A plain negative question on an appraisal states a verdict.
    assert!(!asks("送料安くない？"));
    assert!(!asks("このバッグ可愛すぎない？"));
    assert!(!asks("やばくない？このシルエット"));
    assert!(!asks("可愛くない？！"));
    // The polite form asks the host; the same form on a property or a verb asks too.
    assert!(asks("安くないですか？"));
    assert!(asks("このニット重くない？"));
    assert!(asks("Mサイズない？"));
    assert!(asks("生地チクチクしない？"));
    // An appraisal with a concessive けど is a retort.
    assert!(!asks("普通にスタイルいいけど？"));
    // A surprised echo of one noun; an echo of stock asks whether it is so.
    assert!(!asks("え、クーポン？"));
    assert!(!asks("えっ6990円？"));
    assert!(asks("え、M売り切れ？"));
    assert!(asks("クーポン？"));
    // Anything else that asks keeps the line a question.
    assert!(asks("可愛くない？色違い見せて"));
    assert!(asks("これ可愛くない？何色？"));
    // A fact appraised, with no question mark, asks nothing, however much its clause looks like
    // asking; a request softened by an appraisal still asks.
    assert!(asks("併用できる"));
    assert!(!asks("クーポン併用できるのありがたい"));
    assert!(!asks("併用できるの助かる"));
    assert!(asks("色違いも見せてもらえたら嬉しい"));
    assert!(asks("併用できるのありがたい？"));
}

#[test]
fn a_hold_withdrawn_asks_for_none() {
    let shared = TokenizerShared::new(&TokenizeConfig::default()).expect("IPADIC");
    let sources = [
        (PathBuf::from("d/question.txt"), "[hold => question]\n取り置き\n".to_string()),
        (PathBuf::from("d/purchase.txt"), "[buy_now => purchase_intent]\n買います\n取り置き\n".to_string()),
    ];
    let dictionaries = Arc::new(Dictionaries::compile(Path::new("d"), &sources, &NormalizeConfig::default()).unwrap());
    // The hold cue's own question weight cancels its prior: only the hold rule makes it a question.
    let mut weights = Model::default();
    weights.insert("ja.question.hold", [-2.0 * DEFAULT_RULE_WEIGHT, 0.0, 0.0, 0.0], [0.0; CATEGORIES]);
    let classifier = Classifier::new(dictionaries.clone(), Arc::new(weights), ClassifyConfig::default());
    let mut tokenizer = shared.tokenizer();
    let mut scratch = Scratch::default();
    let mut classify = |text| {
        let message = prepare(&mut tokenizer, &dictionaries, text);
        labels(&classifier, text, &message, &mut scratch)
    };
    assert_eq!(classify("取り置きお願いします"), [Label::Question, Label::PurchaseIntent]);
    assert_eq!(classify("取り置きで今買います"), [Label::Question, Label::PurchaseIntent]);
    assert_eq!(classify("取り置きやめて今買います"), [Label::PurchaseIntent]);
    assert_eq!(classify("取り置きキャンセルで今買います"), [Label::PurchaseIntent]);
}

#[test]
fn letters_hidden_by_symbols_are_matched_again() {
    let (shared, _) = tokenizer_and_spam_list("[x]\nzzz\n");
    let list = "[appearance => abuse]\nブス\n[threat => abuse]\nころす\n";
    let fired = |text| rules_fired(&shared, "abuse.txt", list, text);
    assert_eq!(fired("ぶ💢す"), ["ja.abuse.appearance"]);
    assert_eq!(fired("こ🔪ろ🔪す"), ["ja.abuse.threat"]);
    assert!(fired("ぶどう！すごい").is_empty(), "sentence punctuation is no evasion");
}

#[test]
fn a_term_quoted_or_talked_about_counts_as_a_quotation() {
    let (shared, _) = tokenizer_and_spam_list("[x]\nzzz\n");
    let list = "[appearance => abuse]\nブス\n[fraud => abuse]\n詐欺\n";
    let fired = |text| rules_fired(&shared, "abuse.txt", list, text);
    assert_eq!(fired("ブスすぎ"), ["ja.abuse.appearance"]);
    assert_eq!(fired("「ブス」とか言う人ほんと無理"), ["ja.struct.quoted"]);
    assert_eq!(fired("詐欺とか書き込むのやめなよ"), ["ja.struct.quoted"]);
    assert_eq!(fired("詐欺じゃん"), ["ja.abuse.fraud"]);
}

#[test]
fn abusive_messages_get_the_category_of_their_sections_and_its_severity() {
    let (shared, _) = tokenizer_and_spam_list("[x]\nzzz\n");
    let list = "[threat_die => abuse]\n死ね\n[fraud => abuse]\n詐欺\n[insult_cue]\nお前\n";
    let sources = [(PathBuf::from("d/abuse.txt"), list.to_string())];
    let dictionaries = Arc::new(Dictionaries::compile(Path::new("d"), &sources, &NormalizeConfig::default()).unwrap());
    let mut model = Model::default();
    model.bias = [UNTRAINED_BIAS, UNTRAINED_BIAS, UNTRAINED_BIAS, -1.0];
    let classifier = Classifier::new(dictionaries.clone(), Arc::new(model), ClassifyConfig::default());
    let mut tokenizer = shared.tokenizer();
    let mut classify = |text| {
        let (norm, tokens, hits) = prepare(&mut tokenizer, &dictionaries, text);
        let mut out = Classification::default();
        classifier.classify(text, &norm, &tokens, &hits, &mut Scratch::default(), &mut out);
        (out.category, out.action(&classifier.config))
    };
    assert_eq!(classify("死ね"), (Some(AbuseCategory::Threat), Action::Block));
    assert_eq!(classify("詐欺"), (Some(AbuseCategory::Fraud), Action::Hold), "low severity: a person looks");
    assert_eq!(classify("お前"), (None, Action::Allow), "a cue section alone is no abuse");
}

#[test]
fn severity_decides_between_hold_and_block() {
    let abuse: LabelSet = [Label::Abuse].into_iter().collect();
    let (confident, unsure) = ([0.0, 0.0, 0.0, 0.9], [0.0, 0.0, 0.0, 0.6]);
    assert_eq!(decide(abuse, &unsure, Severity::High, 0.8), Action::Block);
    assert_eq!(decide(abuse, &confident, Severity::Medium, 0.8), Action::Block);
    assert_eq!(decide(abuse, &unsure, Severity::Medium, 0.8), Action::Hold);
    assert_eq!(decide(abuse, &confident, Severity::Low, 0.8), Action::Hold);
    let spam: LabelSet = [Label::Spam].into_iter().collect();
    assert_eq!(decide(spam, &[0.0, 0.0, 0.9, 0.0], Severity::Low, 0.8), Action::Block, "spam has no category");
    assert_eq!(decide(LabelSet::default(), &confident, Severity::High, 0.8), Action::Allow);
}
