//! What each label takes and what it must not, through the shipped dictionaries and model: one
//! table per label, hard negatives included (intensifiers, mild opinions, past wishes, indecision,
//! self-deprecation, viewers quoting an insult to push back, relayed answers, hiragana cues
//! inside other words), and the abuse category with the action its severity gives.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use kotae::label::{Action, Label};
use kotae::pipeline::classify::AbuseCategory;
use kotae::pipeline::{Engine, Meta, PipelineConfig};

fn engine() -> &'static Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = PipelineConfig { dictionaries: Some(root.join("dictionaries/ja")), ..PipelineConfig::default() };
        Engine::new(config).expect("engine")
    })
}

/// The labels, action and abuse category of one message, alone in its stream.
fn verdict(text: &str) -> (Vec<Label>, Action, Option<AbuseCategory>) {
    let engine = engine();
    let analysis = engine.analyzer().analyze(text).expect("analyzable");
    let v = engine.stream_state().process(Meta::default(), analysis);
    (v.labels.iter().collect(), v.action, v.category)
}

macro_rules! t {
    ($name:ident, $input:expr, [$($label:ident),+]) => {
        #[test]
        fn $name() {
            let (labels, _, _) = verdict($input);
            assert_eq!(labels, [$(Label::$label),+], "{}", $input);
        }
    };
}

/// An abuse line: its category and the action the category's severity gives.
macro_rules! abuse {
    ($name:ident, $input:expr, $category:ident, $action:ident) => {
        #[test]
        fn $name() {
            let (labels, action, category) = verdict($input);
            assert_eq!(labels, [Label::Abuse], "{}", $input);
            assert_eq!(category, Some(AbuseCategory::$category), "{}", $input);
            assert_eq!(action, Action::$action, "{}", $input);
        }
    };
}

mod question {
    use super::*;

    t!(asks_for_stock, "Mサイズまだありますか", [Question]);
    t!(asks_without_a_question_mark, "送料いくら", [Question]);
    t!(the_price_word_alone_asks_it, "いくら", [Question]);
    t!(salmon_roe_in_a_sentence_is_not_asked, "いくら丼おいしそう", [Other]);
    t!(asks_to_be_shown, "色違い見せて", [Question]);
    t!(asks_to_be_shown_worn, "着てみてほしい", [Question]);
    t!(a_rhetorical_exclamation_is_not, "可愛くない？！", [Other]);
    // Typed without kana-kanji conversion: IPADIC alone reads the rest of the line as one
    // unknown word, which hides いつ and ですか / もらえますか.
    t!(asks_in_hiragana_without_conversion, "つぎのはいしんいつですか", [Question]);
    t!(asks_for_wrapping_in_hiragana, "ぷれぜんとようにつつんでもらえますか", [Question]);
    t!(a_report_about_the_stream_is_not, "音小さい", [Other]);
    t!(relaying_what_the_host_said_is_not, "さっき送料無料って言ってたよ", [Other]);
    t!(relaying_with_datte_is_not, "送料無料だって", [Other]);
    t!(relaying_with_rashii_is_not, "明日発送らしいよ", [Other]);
    t!(a_quoted_question_is_not, "「何人前ですか」ってさっきから何人も聞いてる", [Other]);
    t!(a_question_to_another_viewer_is_not, "@ゆい そのリップどこの？", [Other]);
    t!(ikura_inside_another_word_is_not_asking_a_price, "わからないくらい可愛い", [Other]);
    t!(a_line_mentioned_in_a_real_question_stays_a_question, "公式LINEに登録したらクーポンもらえる？", [Question]);
    t!(a_plain_negative_question_on_an_appraisal_is_not, "このワンピ安くない？", [Other]);
    t!(the_polite_negative_question_asks_the_host, "安くないですか？", [Question]);
    t!(a_negative_question_on_a_property_asks, "生地チクチクしない？", [Question]);
    t!(asking_whether_a_size_is_missing_asks, "Mサイズない？", [Question]);
    t!(a_retort_on_an_appraisal_is_not, "色めっちゃいいけど？", [Other]);
    t!(a_surprised_echo_of_one_noun_is_not, "え、クーポンコード？", [Other]);
    t!(an_echo_of_stock_asks_whether_it_is_so, "え、L売り切れ？", [Question]);
    t!(a_fact_appraised_is_no_question, "取り置きしてもらえるのありがたい", [PurchaseIntent]);
}

mod purchase_intent {
    use super::*;

    t!(buying_now, "ポチった！", [PurchaseIntent]);
    t!(an_order_by_colour_size_and_count, "黒M1で", [PurchaseIntent]);
    t!(an_order_by_number_and_count, "2番を1つ", [PurchaseIntent]);
    t!(a_cart_add, "カートに入れました", [PurchaseIntent]);
    t!(a_conditional_commitment, "再販したら絶対買う", [PurchaseIntent]);
    t!(a_gift, "母の日用に2つ買いました", [PurchaseIntent]);
    t!(a_hold_is_a_question_and_a_purchase, "取り置きお願いします", [Question, PurchaseIntent]);
    t!(a_hold_withdrawn_is_a_purchase_only, "取り置きやめて今買います", [PurchaseIntent]);
    t!(undecided_is_not, "迷う〜", [Other]);
    t!(still_considering_is_not, "検討中です", [Other]);
    t!(a_past_wish_is_not, "欲しかった", [Other]);
    t!(wanting_but_passing_is_not, "欲しいけど見送り", [Other]);
    t!(a_hypothetical_is_not, "買うなら黒かな", [Other]);
    t!(a_mild_price_opinion_is_not, "ちょっと高いかな", [Other]);
    t!(a_price_question_alone_is_a_question, "送料いくら？", [Question]);
}

mod spam {
    use super::*;

    t!(a_contact_id, "LINE交換しよ ID:abc123", [Spam]);
    t!(a_spaced_out_contact, "L I N E 追加してね", [Spam]);
    t!(a_profile_invitation, "プロフ見て♡", [Spam]);
    t!(a_side_job_with_income, "副業で月10万稼げます", [Spam]);
    t!(a_domain_spelled_in_kana, "えくざんぷる。こむ で検索してね", [Spam]);
    t!(a_long_unit_flood, "ランドセルランドセルランドセルランドセルランドセルランドセルランドセルランドセル", [Spam]);
    t!(applause_is_not, "8888888", [Other]);
    t!(short_laughter_is_not, "ｗｗｗ", [Other]);
    t!(talking_about_a_side_job_is_not, "副業する暇ない", [Other]);
    t!(a_domain_in_a_message, "example.com見てね", [Spam]);
    // A domain ending is not an English word's syllable, nor an insult inside another word.
    t!(english_with_com_inside_is_not, "what's the comfort temp?", [Question]);
    t!(english_with_an_insult_inside_is_not, "can you come closer?", [Question]);
}

mod abuse {
    use super::*;

    abuse!(an_appearance_attack_is_blocked, "ブス", Appearance, Block);
    abuse!(an_evasive_spelling_with_emoji_inside, "ぶ💢す", Appearance, Block);
    abuse!(a_spaced_death_wish_is_a_threat, "し ね", Threat, Block);
    abuse!(a_threat_is_blocked, "殺すぞ", Threat, Block);
    abuse!(a_fraud_accusation_waits_for_a_person, "詐欺じゃん", Fraud, Hold);
    abuse!(an_insult, "お前バカだろ", Insult, Block);
    abuse!(a_harassing_request_is_no_question, "脱いで見せて", Sexual, Block);
    abuse!(contempt_for_foreigners, "外人のくせに", Discrimination, Block);
    t!(an_intensifier_is_not, "死ぬほど可愛い", [Other]);
    t!(a_murderous_intensifier_is_not, "殺人的に可愛い", [Other]);
    t!(a_demon_intensifier_is_not, "鬼安い", [Other]);
    t!(self_deprecation_is_not, "私デブだからLは無理かも", [Other]);
    t!(quoting_an_insult_to_push_back_is_not, "「ブス」とか言う人ほんと無理", [Other]);
    t!(naming_an_accusation_to_push_back_is_not, "サクラとか言ってる人いるけど普通にいい商品だよ", [Other]);
    t!(a_mild_product_opinion_is_not, "ちょっと派手すぎるかも", [Other]);
}
