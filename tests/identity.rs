//! Question frames through the real analyzer and the shipped dictionaries: the asker's asides
//! (a condition, a reason, a sentence beside the question) say nothing of what is asked or whose
//! question it is, context words leave a shop question the shop's, and romaji reads as kana.

use std::path::Path;
use std::sync::Arc;

use kotae::catalog::{Catalog, CatalogSpec};
use kotae::pipeline::frame::FrameNames;
use kotae::pipeline::identity::PairExplanation;
use kotae::pipeline::{About, Engine, Meta, PipelineConfig};

fn engine() -> Arc<Engine> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = PipelineConfig { dictionaries: Some(root.join("dictionaries/ja")), ..PipelineConfig::default() };
    Engine::new(config).expect("engine")
}

fn frame(engine: &Arc<Engine>, text: &str) -> FrameNames {
    engine.analyzer().explain(text).frame.unwrap_or_else(|| panic!("{text}: not a question"))
}

/// Why the identity model takes two questions for one or two, `a` compared with `b`.
fn pair(engine: &Arc<Engine>, a: &str, b: &str) -> PairExplanation {
    let mut analyzer = engine.analyzer();
    let mut frame_of = |t: &str| analyzer.frame_of(t).and_then(|x| x.frame).unwrap_or_else(|| panic!("{t}: no frame"));
    let (fa, fb) = (frame_of(a), frame_of(b));
    engine.identity().explain(fa.view(), fb.view())
}

#[test]
fn a_condition_before_the_question_is_not_what_it_asks() {
    let e = engine();
    let f = frame(&e, "着てみて合わなかったら返品できますか？");
    assert!(f.concepts.contains(&"returns".to_string()), "{f:?}");
    assert!(!f.concepts.contains(&"try_on".to_string()), "着てみて is the condition: {f:?}");
    assert_ne!(f.ask, "show", "{f:?}");
    assert!(f.shop, "returns are the shop's: {f:?}");
    // Values named in the condition still say which thing is meant.
    let f = frame(&e, "Mだったら在庫ありますか？");
    assert!(f.slots.contains(&"size_m".to_string()), "{f:?}");
    // When only the condition names anything, it is the question.
    let f = frame(&e, "洗濯機で洗ったらどうなりますか？");
    assert!(!(f.concepts.is_empty() && f.topics.is_empty() && f.nouns.is_empty()), "{f:?}");
}

#[test]
fn a_sentence_beside_the_question_is_an_aside() {
    let e = engine();
    let f = frame(&e, "これ暖かいですか？北海道なんですけど");
    assert!(f.concepts.contains(&"warmth".to_string()), "{f:?}");
    assert!(!f.topics.contains(&"shipping".to_string()), "北海道 is about the asker: {f:?}");
    // A fragment without a predicate belongs to the question beside it.
    let f = frame(&e, "黒 在庫ありますか");
    assert!(f.slots.iter().any(|s| s.starts_with("color_")), "{f:?}");
}

#[test]
fn a_product_named_beside_the_question_does_not_take_it() {
    let e = engine();
    let spec: CatalogSpec = serde_json::from_str(
        r#"{"products":[{"id":"p1","name":"ケーブルニット","keywords":["ニット"]},
                        {"id":"p2","name":"ワイドパンツ","keywords":["パンツ"]}]}"#,
    )
    .unwrap();
    let catalog = Catalog::compile(spec, &e.config.normalize).unwrap();
    let mut state = e.stream_state();
    state.set_catalog(Arc::new(catalog));
    let mut analyzer = e.analyzer();
    let mut about = |text: &str| {
        let a = analyzer.analyze(text).unwrap();
        state.process(Meta { user: Some("u"), ts: 1, product: Some("p1") }, a).about
    };
    assert_eq!(about("パンツの股下何センチですか？"), About::Product(Arc::from("p2")), "named in the question");
    assert_ne!(
        about("アーカイブ残りますか？あとでパンツのとこ見返したい"),
        About::Product(Arc::from("p2")),
        "パンツ is named in the aside, not the question"
    );
}

#[test]
fn context_words_leave_a_shop_question_the_shops() {
    let e = engine();
    for text in ["東京なら明日届きますか？", "大阪やったらいつ着く？", "次いつやるん？", "次のライブいつですか？"]
    {
        assert!(frame(&e, text).shop, "{text}: {:?}", frame(&e, text));
    }
}

#[test]
fn the_archive_remaining_and_exchanges_are_the_shops() {
    let e = engine();
    for text in
        ["アーカイブって残りますか？", "アーカイブ残ってる？", "サイズ交換できますか？", "色違いに交換してもらえますか"]
    {
        let f = frame(&e, text);
        assert!(f.shop, "{text}: {f:?}");
        assert!(!f.concepts.contains(&"stock".to_string()), "{text}: the archive remains, not stock: {f:?}");
    }
    let f = frame(&e, "Mまだ残ってますか？");
    assert!(!f.shop && f.concepts.contains(&"stock".to_string()), "{f:?}");
}

#[test]
fn romaji_questions_are_framed_as_their_kana() {
    let e = engine();
    assert!(frame(&e, "ikura?").weak.contains(&"price".to_string()), "{:?}", frame(&e, "ikura?"));
    let f = frame(&e, "waribiki go ikura?");
    assert!(f.weak.contains(&"price".to_string()), "{f:?}");
    assert!(!f.nouns.iter().any(|n| n.is_ascii()), "no romaji left as words: {f:?}");
}

#[test]
fn a_concept_spelled_in_kana_does_not_fire_across_words() {
    let e = engine();
    // からく, the reading of 辛く, runs from から into クーポン.
    let f = frame(&e, "さっき買ったんですけど後からクーポン適用してもらえますか？");
    assert!(!f.concepts.contains(&"spicy".to_string()), "{f:?}");
    assert!(f.concepts.iter().any(|c| c.starts_with("coupon")), "{f:?}");
    // Where the word is there, it counts.
    let f = frame(&e, "からいですか？");
    assert!(f.concepts.contains(&"spicy".to_string()), "{f:?}");
}

#[test]
fn wordings_that_share_no_word_meet_on_what_they_ask_about() {
    let e = engine();
    // The attribute model, learned from writers' tagged clusters, reads both as asking whether
    // it suits a place: they share no word and no concept.
    let office = frame(&e, "オフィスでも浮かない？");
    let work = frame(&e, "職場に着ていけますか");
    let stock = frame(&e, "在庫ありますか？");
    let name = |f: &FrameNames| f.attribute.as_ref().map(|a| a.0.clone()).unwrap_or_default();
    assert_eq!(name(&office), name(&work), "{office:?} / {work:?}");
    assert_ne!(name(&office), name(&stock), "{office:?} / {stock:?}");
    let mut analyzer = e.analyzer();
    let same = analyzer.explain_pair("オフィスでも浮かない？", "職場に着ていけますか");
    assert!(same.identity.contributions.iter().any(|c| c.feature == "attribute_same" && c.value > 0.0), "{same:?}");
    // Their first and second readings agree, and that counts for one question.
    assert!(
        same.identity.contributions.iter().any(|c| c.feature == "attribute_overlap" && c.value > 0.5 && c.weight > 0.0),
        "{same:?}"
    );
    // A moderator sees both readings the overlap was taken from.
    let second = |f: &FrameNames| f.attribute_second.as_ref().map(|a| a.0.clone()).unwrap_or_default();
    let (first_p, second_p) = (office.attribute.as_ref().unwrap().1, office.attribute_second.as_ref().unwrap().1);
    assert!(!second(&office).is_empty() && second(&office) != name(&office), "{office:?}");
    assert!(second_p > 0.0 && second_p <= first_p && first_p + second_p <= 1.0 + 1e-6, "{office:?}");
    let differ = analyzer.explain_pair("オフィスでも浮かない？", "在庫ありますか？");
    assert!(
        differ.identity.rule.is_some()
            || differ.identity.contributions.iter().any(|c| c.feature == "attribute_differ" && c.value > 0.0),
        "{differ:?}"
    );
}

#[test]
fn a_question_surely_about_the_shop_is_the_shops_though_it_names_no_concept() {
    let e = engine();
    // No concept of the dictionaries says 店員さん is the host; the attribute model does.
    let f = frame(&e, "店員さん何センチですか");
    assert!(f.concepts.is_empty(), "{f:?}");
    assert!(f.shop, "{f:?}");
    let mut state = e.stream_state();
    let mut analyzer = e.analyzer();
    let mut a = analyzer.frame_of("店員さん何センチですか").unwrap();
    assert_eq!(state.scope(&mut a, Some("p1")), About::Shop);
    // A product question naming no concept stays with the product on screen.
    let mut a = analyzer.frame_of("これ何センチですか").unwrap();
    assert_eq!(state.scope(&mut a, Some("p1")), About::Product("p1".into()));
}

#[test]
fn a_question_naming_only_its_product_still_meets_the_question_it_repeats() {
    let e = engine();
    let spec: CatalogSpec =
        serde_json::from_str(r#"{"products":[{"id":"p3","name":"ライトダウンコート","keywords":["ダウン"]}]}"#)
            .unwrap();
    let mut state = e.stream_state();
    state.set_catalog(Arc::new(Catalog::compile(spec, &e.config.normalize).unwrap()));
    let mut analyzer = e.analyzer();
    let mut ts = 0;
    let mut cluster = |user: &str, text: &str| {
        ts += 60_000;
        let a = analyzer.analyze(text).unwrap();
        let v = state.process(Meta { user: Some(user), ts, product: Some("p3") }, a);
        (v.cluster.unwrap_or_else(|| panic!("{text}: no cluster")).id, v.about)
    };
    let (washable, _) = cluster("a", "洗える？");
    let (stock, _) = cluster("b", "在庫ありますか？");
    // ダウン only says which product, and the scope already does: what is left (洗い方) names
    // nothing any cluster names, and what it asks about finds the cluster it belongs to.
    let (again, about) = cluster("c", "ダウンの洗い方もう一回教えてください");
    assert_eq!(about, About::Product(Arc::from("p3")));
    assert_eq!(again, washable, "the washing question asked again");
    assert_ne!(stock, washable);
}

#[test]
fn shipping_out_and_arriving_are_two_questions_however_short() {
    let e = engine();
    let concepts = |t: &str| frame(&e, t).concepts;
    // 発送 alone is the shop sending it out, as 発送日 and いつ発送 are; 届く is its arrival.
    assert_eq!(concepts("明日発送ですか？"), ["dispatch"]);
    assert_eq!(concepts("今日頼んだら明日発送してもらえますか"), ["dispatch"]);
    assert_eq!(concepts("明日届きますか？"), ["delivery"]);
}

#[test]
fn arriving_is_asked_with_tsuku_too() {
    let e = engine();
    // 着きますか is 届きますか: the delivery, the shop's (not 着る, which a product answers).
    for text in ["福岡市内なら明日着きますか？", "東京なら明日着きますか？"] {
        let f = frame(&e, text);
        assert_eq!(f.concepts, ["delivery"], "{text}: {f:?}");
        assert!(f.shop, "{text}: {f:?}");
    }
    // はっそう is 発送, sending it out.
    assert_eq!(frame(&e, "はっそういつ？").concepts, ["dispatch"]);
}

#[test]
fn units_of_one_dimension_ask_one_amount_and_amounts_are_not_exclusive() {
    let e = engine();
    let same = |a: &str, b: &str| {
        let explanation = pair(&e, a, b);
        (explanation.rule, explanation.same)
    };
    // 何キロ and 何g both ask the weight.
    assert_eq!(frame(&e, "何キロ？").slots, ["unit_weight"]);
    assert_eq!(same("重さ何gですか", "何キロ？").0, None, "one amount, no conflict");
    // Two measures of one child (4歳, 102センチ) against one (98cm): they share the height.
    assert_eq!(
        same(
            "身長98cmなんですけど何サイズがいいですか",
            "上の孫が4歳で身長102センチくらいですが、110だと大きすぎますか"
        )
        .0,
        None
    );
    // Different amounts asked are still different questions.
    assert_eq!(same("何センチですか", "何キロですか").0, Some("slot conflict"));
    // And exclusive values still conflict.
    assert_eq!(same("黒のM在庫ありますか", "白のM在庫ありますか").0, Some("slot conflict"));
}

#[test]
fn a_question_between_alternatives_is_one_with_a_question_about_either() {
    let e = engine();
    let rule = |a: &str, b: &str| {
        let (there, back) = (pair(&e, a, b).rule, pair(&e, b, a).rule);
        assert_eq!(there, back, "{a} / {b}: the rule reads both ways");
        there
    };
    // MとL names the two sizes asked between: the viewer who says M alone asks one of them.
    assert_eq!(frame(&e, "普段Mだけど大きめ？小さめ？").slots, ["size_m"]);
    assert_eq!(rule("普段Mだけど大きめ？小さめ？", "身長170だとMとLどっちがいい？"), None);
    assert_eq!(rule("今着てるのMですか？", "Mですか？Lですか？"), None);
    // A size neither names among the other's is still another size.
    assert_eq!(rule("Sですか？", "MとLどっちがいい？"), Some("slot conflict"));
    // Several values on both sides are compared as they stand: Pro Max is not Pro.
    assert_eq!(rule("iPhone15 Pro対応？", "iPhone15 Pro Max対応？"), Some("slot conflict"));
    assert_eq!(rule("黒のM在庫ありますか", "白のM在庫ありますか"), Some("slot conflict"));
}

#[test]
fn the_next_stream_and_todays_lineup_are_the_shops() {
    let e = engine();
    for (text, concept) in [
        ("次回は何曜日にやりますか？", "nextstream"),
        ("次回もインテリアやる？", "nextstream"),
        ("今日は何紹介するんですか？", "lineup"),
        ("次の商品なに？", "lineup"),
    ] {
        let f = frame(&e, text);
        assert!(f.concepts.contains(&concept.to_string()), "{text}: {f:?}");
        assert!(f.shop, "{text}: {f:?}");
    }
}

#[test]
fn an_allowed_word_still_names_its_concept() {
    let e = engine();
    // イエロー is allowed (it holds エロ), and is still yellow: a yellow S is not a beige one.
    let f = frame(&e, "イエローS取り置きお願いできますか？");
    assert!(f.slots.contains(&"color_yellow".to_string()), "{f:?}");
}

#[test]
fn a_question_about_the_stream_itself_never_joins_the_shops_other_questions() {
    let e = engine();
    let mut state = e.stream_state();
    let mut analyzer = e.analyzer();
    let mut ts = 0;
    let mut cluster = |user: &str, text: &str| {
        ts += 30_000;
        let a = analyzer.analyze(text).unwrap();
        let v = state.process(Meta { user: Some(user), ts, product: None }, a);
        (v.cluster.unwrap_or_else(|| panic!("{text}: no cluster")).id, v.about)
    };
    let (payment, _) = cluster("a", "支払いって何が使えますか？");
    // The pair model alone rates these two one question (0.52: a weak concept and できる？ in
    // common); the picture is the stream's, and the stream's questions have a scope of their own.
    let (lighting, about) = cluster("b", "画面ちょっと暗くないですか？照明明るくできますか");
    assert_eq!(about, About::Shop, "still the shop's, on the host screen and in the report");
    assert_ne!(lighting, payment);
    assert!(frame(&e, "画面ちょっと暗くないですか？照明明るくできますか").stream);
    assert!(!frame(&e, "支払いって何が使えますか？").stream);
    // Still one question with its own paraphrase.
    let (again, _) = cluster("c", "照明もうちょい明るくなりますか？");
    assert_eq!(again, lighting);
}

#[test]
fn wordings_the_writers_used_for_one_another_read_alike() {
    let e = engine();
    let mut analyzer = e.analyzer();
    let mut vector = |t: &str| analyzer.frame_of(t).and_then(|x| x.frame).map(|f| f.vector).unwrap_or_default();
    let wash = vector("洗濯機で洗える？");
    let home = vector("おうちで洗えますか");
    let back = vector("後ろ見せて");
    let stock = vector("在庫ありますか？");
    // Every question has a vector from the shipped model, eight dimensions to a word.
    assert!(!wash.is_empty() && wash.len() == back.len(), "{wash:?}");
    let cos = kotae::pipeline::similarity::cosine;
    assert!(cos(&wash, &home) > 0.3, "{}", cos(&wash, &home));
    assert!(cos(&wash, &home) > cos(&wash, &back) + 0.2, "{} {}", cos(&wash, &home), cos(&wash, &back));
    assert!(cos(&wash, &home) > cos(&wash, &stock) + 0.2, "{} {}", cos(&wash, &home), cos(&wash, &stock));
    // The pair model reads the cosine for one question.
    let p = pair(&e, "洗濯機で洗える？", "おうちで洗えますか");
    assert!(p.contributions.iter().any(|c| c.feature == "similar" && c.value > 0.3 && c.weight > 0.0), "{p:?}");
}

/// The cluster join's comparison is exact wherever it matters: for every pair of the dev lines'
/// frames and floors around the pair's own log-odds, a pair at or over the floor gets the
/// probability the full comparison gives, and one under it never more.
#[test]
fn a_comparison_under_its_floor_is_exact_over_it() {
    use kotae::pipeline::identity::{FEATURES, N, features, log_odds, slots_conflict};
    let e = engine();
    let model = e.identity();
    let mut analyzer = e.analyzer();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lines = std::fs::read_to_string(root.join("fixtures/labelled/dev.jsonl")).expect("dev lines");
    let frames: Vec<_> = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().and_then(|t| analyzer.frame_of(t)).and_then(|a| a.frame))
        .step_by(3)
        .collect();
    assert!(frames.len() > 250, "{}", frames.len());
    // The full comparison's log-odds, summed as the model sums them, the association last.
    let associated = FEATURES.iter().position(|f| *f == "associated").expect("an association feature");
    let w = model.weights[associated];
    let logit = |f: &[f32; N]| -> f32 {
        let mut f = *f;
        let s = std::mem::take(&mut f[associated]);
        model.bias + f.iter().zip(&model.weights).map(|(x, w)| x * w).sum::<f32>() + w * s
    };
    let (mut over, mut under) = (0, 0);
    for a in &frames {
        for b in &frames {
            let (a, b) = (a.view(), b.view());
            if slots_conflict(a, b) {
                continue;
            }
            let Some(f) = features(a, b, &model.associations) else { continue };
            let exact = logit(&f);
            let p = 1.0 / (1.0 + (-exact).exp());
            for floor in [exact - 1e-4, exact + 1e-2, exact + 0.5, exact + 3.0, log_odds(model.threshold), 2.0, 5.0] {
                let got = model.probability_over(a, b, floor);
                if exact >= floor {
                    assert_eq!(got, p, "{a:?} {b:?} at floor {floor}");
                    over += 1;
                } else {
                    assert!(got <= p, "{got} > {p}: {a:?} {b:?} at floor {floor}");
                    under += 1;
                }
            }
        }
    }
    // Both sides were met.
    assert!(over > 10_000 && under > 10_000, "{over} {under}");
}
