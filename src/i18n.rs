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

/// Key, Japanese, English. Placeholders `{0}`…`{9}` are the same set in both.
pub const CATALOGUE: &[(&str, &str, &str)] = &[
    // The "why" of a question: one part per urgency term, joined by `why.sep`.
    ("why.sep", "・", " · "),
    ("why.asked", "×{0}人", "×{0} asked"),
    ("why.on_screen", "紹介中", "on screen"),
    ("why.on_screen_top", "紹介中で最多", "most asked on screen"),
    ("why.buying", "購入意欲", "buying"),
    ("why.paid", "投げ銭 {0}", "paid {0}"),
    ("why.paid_sep", "＋", " + "),
    ("why.wait_s", "{0}秒待ち", "waiting {0}s"),
    ("why.wait_m", "{0}分待ち", "waiting {0}m"),
    ("why.stale", "しばらく聞かれていない", "stale"),
    ("why.pinned", "ピン留め", "pinned"),
    // Purchase-blocking topics (`topics.txt` sections); others show their section name.
    ("topic.skin", "肌", "skin"),
    ("topic.size", "サイズ", "size"),
    ("topic.stock", "在庫", "stock"),
    ("topic.price", "価格", "price"),
    ("topic.shipping", "送料", "shipping"),
    ("topic.delivery", "お届け日", "delivery"),
    ("topic.payment", "支払い", "payment"),
    ("topic.material", "素材", "material"),
    ("topic.care", "お手入れ", "care"),
    ("topic.color", "色", "color"),
    ("topic.warranty", "保証", "warranty"),
    ("topic.compat", "対応機種", "compatibility"),
    ("topic.food", "賞味期限・保存", "food"),
    ("topic.gift", "ギフト", "gift"),
    // Answered notes.
    ("answered.again", "{0}に回答済み・また聞かれた×{1}", "answered at {0} · asked again ×{1}"),
    ("answered.at", "{0}に回答", "answered at {0}"),
    // Labels and blocked categories.
    ("label.question", "質問", "question"),
    ("label.purchase_intent", "購入", "purchase"),
    ("label.spam", "スパム", "spam"),
    ("label.abuse", "悪口", "abuse"),
    ("label.other", "その他", "other"),
    ("blocked.spam", "スパム", "spam"),
    ("blocked.abuse", "悪口", "abuse"),
    ("blocked.slow_mode", "連投", "slow mode"),
    ("blocked.other", "その他（連投・設定）", "other (slow mode, settings)"),
    ("action.allow", "通す", "allow"),
    ("action.hold", "保留", "hold"),
    ("action.block", "ブロック", "block"),
    ("product.shop", "ショップ全体", "whole shop"),
    ("product.none", "商品なし", "no product"),
    // Shared by the pages.
    ("page.reload_failed", "読み込めませんでした（{0}）", "could not load ({0})"),
    ("page.updated", "{0} 更新", "updated {0}"),
    ("page.nav.host", "ホスト画面", "host screen"),
    ("page.nav.faq", "よくある質問", "FAQ"),
    ("page.nav.overview", "全配信", "all streams"),
    ("page.nav.moderator", "モデレーター", "moderator"),
    ("platform.youtube", "YouTube", "YouTube"),
    ("platform.twitch", "Twitch", "Twitch"),
    ("platform.niconico", "ニコニコ", "Niconico"),
    ("chat.chat_ended", "配信終了", "stream ended"),
    ("chat.chat_not_found", "チャットが見つかりません", "chat not found"),
    ("chat.chat_disabled", "チャットが無効", "chat disabled"),
    ("chat.all_ended", "チャットはすべて終了しました（{0}）", "every chat has ended ({0})"),
    ("chat.some_ended", "一部のチャットが終了（{0}）", "some chats have ended ({0})"),
    ("chat.all_ended.title", "この配信のチャットはもう届きません", "no more chat will arrive for this stream"),
    (
        "chat.some_ended.title",
        "ほかのプラットフォームのチャットは届いています",
        "chat from the other platforms still arrives",
    ),
    // The host screen.
    ("host.title", "kotae — 質問キュー", "kotae — question queue"),
    ("host.h1", "kotae 質問", "kotae questions"),
    (
        "host.banner",
        "⚠ サーバーとの接続が切れました — 再接続しています…",
        "⚠ Lost the connection to the server — reconnecting…",
    ),
    ("host.connecting", "接続中…", "connecting…"),
    ("host.live", "ライブ", "live"),
    ("host.offline", "切断", "offline"),
    ("host.newnote", "新しい質問あり — r で並べ替え", "new questions above — r to re-rank"),
    ("host.product", "紹介中の商品", "on screen"),
    ("host.product.none", "（なし）", "(none)"),
    ("host.product.add", "商品ID", "product id"),
    ("host.product.add_label", "商品IDを追加", "add a product id"),
    ("host.blocked.title", "ブロック・保留したコメント数", "comments blocked or held"),
    ("host.blocked", "ブロック {0}", "blocked {0}"),
    ("host.held", "保留 {0}", "held {0}"),
    ("host.ticker.label", "購入の声（ポチった）", "purchase intent"),
    ("host.ticker.item", "{0} ポチった", "{0} bought"),
    ("host.ticker.none", "ポチった: まだありません", "no purchase intent yet"),
    ("host.empty", "まだ質問はありません", "no questions yet"),
    ("host.again", "回答済み・また聞かれています", "answered, asked again"),
    ("host.recent", "直近の回答", "recent answers"),
    (
        "host.keys",
        "キー: j/k 選択 · a 答えた · t 回答を入力 · p ピン · d 消す · u 元に戻す · r 並べ替え",
        "keys: j/k select · a answered · t type an answer · p pin · d dismiss · u undo · r re-rank",
    ),
    ("host.act.answered", "答えた", "answered"),
    ("host.act.pin", "ピン", "pin"),
    ("host.act.unpin", "ピン解除", "unpin"),
    ("host.act.dismiss", "消す", "dismiss"),
    ("host.anonymous", "匿名", "anonymous"),
    ("host.closed", "対応済み", "handled"),
    ("host.undo", "元に戻す (u)", "undo (u)"),
    ("host.did.answered", "「{0}」を答えた", "answered “{0}”"),
    ("host.did.answered_text", "「{0}」に回答: {1}", "answered “{0}”: {1}"),
    ("host.did.dismissed", "「{0}」を消した", "dismissed “{0}”"),
    ("host.did.pinned", "「{0}」をピンした", "pinned “{0}”"),
    ("host.did.unpinned", "「{0}」をピン解除した", "unpinned “{0}”"),
    ("host.did.edited", "「{0}」の回答を直した", "edited the answer to “{0}”"),
    ("host.failed", "失敗しました: {0}", "failed: {0}"),
    ("host.undo_failed", "元に戻せませんでした: {0}", "could not undo: {0}"),
    ("host.product_failed", "商品を設定できませんでした: {0}", "could not set the product: {0}"),
    ("host.answer.label", "回答（任意）", "answer (optional)"),
    (
        "host.answer.placeholder",
        "選んだ質問への回答を入力してエンター（a だけでも「答えた」）",
        "type the answer to the selected question, Enter (or just a)",
    ),
    ("host.answer.editing", "回答を直す: 「{0}」", "editing the answer to “{0}”"),
    ("host.answer.cancel", "やめる", "cancel"),
    ("host.answer.none", "（口頭で回答）", "(answered aloud)"),
    ("host.edit", "直す", "edit"),
    ("host.answer_of", "回答: {0}", "answer: {0}"),
    // The FAQ page for late joiners.
    ("faq.title", "よくある質問 — {0}", "FAQ — {0}"),
    ("faq.h1", "この配信で答えた質問", "Answered in this stream"),
    (
        "faq.lead",
        "途中から見ている方へ: 配信中にもうお答えした質問です。",
        "Joined late? These questions were already answered on stream.",
    ),
    ("faq.empty", "まだ回答した質問はありません", "nothing has been answered yet"),
    ("faq.answered_at", "{0} 回答", "answered {0}"),
    ("faq.askers", "{0}人が質問", "asked by {0}"),
    ("faq.no_text", "配信の中でお答えしました（{0}）", "answered on stream ({0})"),
    // The overview of a shop's streams.
    ("overview.title", "kotae — 全配信", "kotae — all streams"),
    ("overview.h1", "配信一覧", "Streams"),
    ("overview.stream", "配信", "stream"),
    ("overview.on_screen", "紹介中", "on screen"),
    ("overview.open", "未回答", "open"),
    ("overview.pinned", "ピン", "pinned"),
    ("overview.answered", "回答済み", "answered"),
    ("overview.intents", "ポチった", "purchase intent"),
    ("overview.blocked", "ブロック", "blocked"),
    ("overview.top", "いちばん急ぐ質問", "most urgent question"),
    ("overview.oldest", "最長 {0}分待ち", "oldest waiting {0}m"),
    ("overview.empty", "まだ配信はありません", "no streams yet"),
    ("overview.none", "—", "—"),
    // The moderator console.
    ("mod.title", "kotae — モデレーター", "kotae — moderator"),
    ("mod.h1", "kotae モデレーター", "kotae moderator"),
    ("mod.stream", "配信", "stream"),
    ("mod.who", "名前", "name"),
    ("mod.who.label", "モデレーター名", "moderator name"),
    ("mod.token", "トークン", "token"),
    ("mod.token.placeholder", "（ループバック: 不要）", "(loopback: not needed)"),
    ("mod.host_link", "ホスト画面 →", "host screen →"),
    ("mod.test", "フレーズを試す", "Test a phrase"),
    ("mod.test.placeholder", "例: 敏感肌でも使えますか？", "e.g. 敏感肌でも使えますか？"),
    ("mod.test.button", "試す", "test"),
    ("mod.dict", "辞書", "Dictionaries"),
    ("mod.dict.list", "リスト", "list"),
    ("mod.dict.section", "セクション", "section"),
    ("mod.dict.search", "検索（全リスト）", "search (all lists)"),
    ("mod.dict.entries", "{0} 語", "{0} terms"),
    ("mod.dict.term", "追加する語", "term to add"),
    ("mod.dict.dry_run", "影響を確認（ドライラン）", "check the effect (dry run)"),
    ("mod.dict.apply", "適用", "apply"),
    ("mod.dict.remove", "削除", "remove"),
    ("mod.dict.ok", "{0}: [{1}] {2} — 問題なし。適用できます。", "{0}: [{1}] {2} — no problems; ready to apply."),
    ("mod.dict.op.add", "追加", "add"),
    ("mod.dict.op.remove", "削除", "remove"),
    (
        "mod.dict.applied",
        "適用しました（{0} 語）。次のコメントから有効です。",
        "applied ({0} terms); in force from the next comment.",
    ),
    (
        "mod.dict.diff",
        "{0}: 配信「{1}」の直近 {2} 件のうち {3} 件の判定が変わります（{4} → {5} 語）",
        "{0}: {3} of the last {2} comments of “{1}” would change ({4} → {5} terms)",
    ),
    ("mod.dict.dry_run_title", "ドライラン", "dry run"),
    ("mod.dict.apply_title", "適用", "applied"),
    ("mod.flag.bounded", "語の区切りでだけ一致", "only at word boundaries"),
    ("mod.flag.whole", "コメント全体と一致", "the whole comment"),
    ("mod.flag.end", "文末でだけ一致", "only at the end"),
    ("mod.flag.start", "文頭でだけ一致", "only at the start"),
    ("mod.held", "保留中のコメント", "Held comments"),
    ("mod.held.count", "{0} 件", "{0}"),
    ("mod.held.none", "保留中のコメントはありません", "no held comments"),
    ("mod.held.approve", "承認", "approve"),
    ("mod.held.deny", "却下", "deny"),
    (
        "mod.degraded",
        "時間内に判定できなかったコメント: {0} 件（最後 {1}）。設定どおり判定なしで通過または保留しました。サーバーの負荷を確認してください",
        "Comments not checked in time: {0} (last at {1}), allowed or held unchecked as the stream's setting says. Check the server's load",
    ),
    ("mod.held.over_budget", "時間内に判定できず保留（fail-closed）", "not checked in time (fail-closed)"),
    ("mod.held.threshold", "{0} {1}（この配信の保留スコア以上）", "{0} {1} (over the stream's hold score)"),
    ("mod.settings", "配信ごとの設定", "Per-stream settings"),
    ("mod.settings.fail", "間に合わないとき", "when the budget is missed"),
    ("mod.settings.default", "既定", "default"),
    ("mod.settings.open", "通す（fail-open）", "allow (fail-open)"),
    ("mod.settings.closed", "保留（fail-closed）", "hold (fail-closed)"),
    ("mod.settings.hold_at", "保留するスコア", "hold at score"),
    ("mod.settings.block_at", "ブロックするスコア", "block at score"),
    ("mod.settings.slow", "スローモード（秒）", "slow mode (seconds)"),
    ("mod.settings.save", "保存", "save"),
    ("mod.settings.saved", "保存しました", "saved"),
    ("mod.audit", "監査ログ", "Audit log"),
    ("audit.dictionary.add", "辞書に追加", "dictionary: added"),
    ("audit.dictionary.remove", "辞書から削除", "dictionary: removed"),
    ("audit.held.approve", "保留を承認", "held: approved"),
    ("audit.held.deny", "保留を却下", "held: denied"),
    ("audit.settings", "設定を変更", "settings changed"),
    ("mod.result.topics", "話題: {0}", "topics: {0}"),
    ("mod.result.normalized", "正規化: ", "normalized: "),
    ("mod.result.key", " ／ 照合キー: ", " / matching key: "),
    ("mod.result.reasons", "理由", "Reasons"),
    ("mod.result.hits", "辞書ヒット: ", "dictionary hits: "),
    ("mod.result.tokens", "形態素（品詞）", "Tokens (part of speech)"),
    ("mod.result.features", "特徴の重み", "Feature weights"),
    ("mod.result.feature", "特徴", "feature"),
    ("mod.result.ngram", "文字n-gram", "character n-gram"),
    ("mod.result.ngrams", "効いた文字n-gram", "Character n-grams that mattered"),
    ("category.insult", "侮辱", "insult"),
    ("category.appearance", "容姿", "appearance"),
    ("category.sexual", "性的嫌がらせ", "sexual harassment"),
    ("category.discrimination", "差別", "discrimination"),
    ("category.threat", "脅迫", "threat"),
    ("category.fraud", "詐欺呼ばわり", "fraud accusation"),
    ("mod.result.base", "基本形 {0}", "base form {0}"),
    ("mod.result.unknown", "辞書にない語", "not in the dictionary"),
    // Rule ids, explained (the id stays beside it for people who edit dictionaries).
    ("rule.list.abuse", "悪口辞書", "abuse list"),
    ("rule.list.spam", "スパム辞書", "spam list"),
    ("rule.list.question", "質問辞書", "question list"),
    ("rule.list.purchase", "購入辞書", "purchase list"),
    ("rule.list.not_purchase", "購入でない表現", "not-purchase list"),
    ("rule.list.rhetorical", "反語の表現", "rhetorical list"),
    ("rule.list.addressee", "呼びかけ", "addressee list"),
    ("rule.list.allow", "許可リスト", "allow list"),
    ("rule.list.topics", "話題", "topics"),
    ("rule.list.synonyms", "同義語", "synonyms"),
    ("rule.section", "{0}［{1}］", "{0} [{1}]"),
    ("rule.tok.final", "文末の「{0}」", "ends with 「{0}」"),
    ("rule.tok.te_end", "文末がて形（見せて・着てみて）", "ends in the て-form (見せて, 着てみて)"),
    ("rule.tok.adj_nai_q", "形容詞＋ない＋？（反語: 可愛くない？）", "adjective + ない + ? (rhetorical: 可愛くない？)"),
    ("rule.tok.imperative", "命令形で終わる", "ends in an imperative"),
    ("rule.tok.qmark", "？で終わる", "ends with ？"),
    ("rule.tok.qmark_excl", "？！で終わる", "ends with ？！"),
    ("rule.tok.qmark_inner", "途中に？がある", "？ inside the comment"),
    ("rule.tok.excl", "！で終わる", "ends with ！"),
    ("rule.tok.end_pos", "最後の語の品詞: {0}", "part of speech of the last word: {0}"),
    ("rule.struct.url", "URL", "a URL"),
    ("rule.struct.phone", "電話番号", "a phone number"),
    ("rule.struct.handle", "ID らしい文字列", "an ID-like handle"),
    ("rule.struct.mention", "ほかの視聴者への @ 返信", "an @ reply to another viewer"),
    ("rule.struct.digit", "数字", "digits"),
    ("rule.struct.flood", "同じ文字の連続（連投）", "one unit repeated (flood)"),
    ("rule.struct.len", "長さ", "length"),
    ("rule.dedupe.repeat", "同じ人の同じコメントの繰り返し", "the same viewer repeating a comment"),
    ("rule.dedupe.copypasta", "複数人のコピペ", "copypasta across viewers"),
    ("rule.slow_mode", "スローモード", "slow mode"),
    ("rule.question.can", "「〜できますか」の形", "a “can it …?” form"),
    ("rule.question.exists", "「〜ありますか」の形", "an “is there …?” form"),
    // Parts of speech as the tokenizer names them (IPADIC's first level), explained.
    ("pos.noun", "名詞（ものの名前）", "noun"),
    ("pos.verb", "動詞", "verb"),
    ("pos.adj", "形容詞", "adjective"),
    ("pos.adv", "副詞", "adverb"),
    ("pos.prt", "助詞（が・を・か など）", "particle (が, を, か…)"),
    ("pos.aux", "助動詞（ます・です など）", "auxiliary verb (ます, です…)"),
    ("pos.sym", "記号", "symbol"),
    ("pos.intj", "感動詞", "interjection"),
    ("pos.adn", "連体詞（この・その など）", "adnominal (この, その…)"),
    ("pos.conj", "接続詞", "conjunction"),
    ("pos.pre", "接頭詞（お・ご など）", "prefix (お, ご…)"),
    ("pos.fill", "フィラー（えーと など）", "filler (えーと…)"),
    ("pos.other", "その他", "other"),
    ("pos.short.noun", "名詞", "noun"),
    ("pos.short.verb", "動詞", "verb"),
    ("pos.short.adj", "形容詞", "adj"),
    ("pos.short.adv", "副詞", "adv"),
    ("pos.short.prt", "助詞", "particle"),
    ("pos.short.aux", "助動詞", "aux"),
    ("pos.short.sym", "記号", "symbol"),
    ("pos.short.intj", "感動詞", "interj"),
    ("pos.short.adn", "連体詞", "adnominal"),
    ("pos.short.conj", "接続詞", "conj"),
    ("pos.short.pre", "接頭詞", "prefix"),
    ("pos.short.fill", "フィラー", "filler"),
    ("pos.short.other", "その他", "other"),
    ("rule.feature.word", "語「{0}」", "word 「{0}」"),
    ("rule.feature.last", "最後の語「{0}」", "last word 「{0}」"),
    ("rule.feature.last2", "最後の2語「{0}」", "last two words 「{0}」"),
    // `kotae report`.
    ("report.title", "配信レポート — {0}", "Stream report — {0}"),
    ("report.period", "{0} 〜 {1}（{2}分）", "{0} – {1} ({2} min)"),
    ("report.summary", "まとめ", "Summary"),
    ("report.messages", "コメント", "comments"),
    ("report.questions", "質問", "questions"),
    ("report.distinct", "異なる質問", "distinct questions"),
    ("report.intents", "購入の声", "purchase intents"),
    ("report.unanswered", "未回答", "unanswered"),
    ("report.answered", "回答済み", "answered"),
    ("report.dismissed", "消した質問", "dismissed"),
    ("report.median", "回答までの中央値", "median time to answer"),
    ("report.minutes", "{0}分", "{0} min"),
    ("report.blocked", "ブロック", "blocked"),
    ("report.held", "保留", "held"),
    ("report.followup", "未回答の質問（フォローアップ用）", "Unanswered questions (to follow up)"),
    (
        "report.followup.lead",
        "配信中に答えられなかった質問です。聞いた人の多い順。",
        "Questions not answered during the stream, most askers first.",
    ),
    ("report.answered_list", "回答した質問", "Answered questions"),
    ("report.by_product", "商品別", "By product"),
    ("report.timeline", "1分ごとの質問と購入の声", "Questions and purchase intent per minute"),
    ("report.blocked_by", "ブロックしたコメント（種類別）", "Blocked comments by category"),
    ("report.compare", "前回との比較", "Compared with the previous report"),
    ("report.compare.lead", "前回: {0}（{1}）", "previous: {0} ({1})"),
    ("report.col.product", "商品", "product"),
    ("report.col.question", "質問", "question"),
    ("report.col.wordings", "ほかの言い方", "other wordings"),
    ("report.col.askers", "人数", "askers"),
    ("report.col.first", "最初に聞かれた", "first asked"),
    ("report.col.answer", "回答", "answer"),
    ("report.col.answered_at", "回答した時刻", "answered at"),
    ("report.col.time_to_answer", "回答まで", "time to answer"),
    ("report.col.topics", "よく聞かれた話題", "top topics"),
    ("report.col.metric", "項目", "measure"),
    ("report.col.now", "今回", "this time"),
    ("report.col.before", "前回", "previous"),
    ("report.col.change", "増減", "change"),
    ("report.none", "ありません", "none"),
    ("report.no_text", "（口頭で回答）", "(answered aloud)"),
    ("report.legend.questions", "質問", "questions"),
    ("report.legend.intents", "購入の声", "purchase intents"),
    ("report.axis.minutes", "開始からの分", "minutes from start"),
    ("report.generated", "kotae report で作成 · {0}", "made with kotae report · {0}"),
    // Error messages: the English text the API sends in `error` (a pattern, `{n}` matching any
    // text), and what the pages show instead.
    ("err.auth", "認証トークンがないか、正しくありません", "missing or invalid bearer token"),
    ("err.bad_stream", "配信IDが正しくありません", "invalid stream id"),
    ("err.closing", "サーバーを停止中です", "server is shutting down"),
    ("err.too_many", "接続が多すぎます", "too many connections"),
    (
        "err.unknown_action",
        "その操作はありません（answered, pin, unpin, dismiss, reopen）",
        "unknown action; use answered, pin, unpin, dismiss or reopen",
    ),
    ("err.qid", "質問IDは q12 のような形です", "question ids look like q12"),
    ("err.no_question", "その質問は見つかりません（もう消えたかもしれません）", "no such question"),
    ("err.answer_long", "回答は {0} 文字までです", "answers are at most {0} characters"),
    ("err.answer_body", "回答の形が正しくありません: {0}", "expected {\"answer\": \"…\"}: {0}"),
    ("err.answer_only", "回答のテキストは「答えた」のときだけ送れます", "only answered takes an answer"),
    (
        "err.catalog_size",
        "商品カタログは {0} バイトまでです。前のカタログのままです",
        "a catalogue is at most {0} bytes; the previous one stays",
    ),
    (
        "err.catalog_refused",
        "商品カタログを受け付けませんでした。前のカタログのままです",
        "the catalogue was refused; the previous one stays",
    ),
    (
        "err.catalog_shape",
        "商品カタログの形が正しくありません: {0}",
        "expected {\"products\":[{\"id\",\"name\",\"keywords\":[…]}]}: {0}",
    ),
    ("err.product_shape", "商品の指定の形が正しくありません: {0}", "expected {\"product\": \"id\" | null}: {0}"),
    ("err.product_long", "商品IDは 128 バイトまでです", "product ids are at most 128 bytes"),
    ("err.unknown_decision", "その判断はありません（approve, deny）", "unknown decision; use approve or deny"),
    ("err.no_held", "その保留コメントは見つかりません", "no such held message"),
    ("err.audit", "監査ログに書けません: {0}", "cannot write the audit log: {0}"),
    ("err.expected", "送られた内容の形が正しくありません（{0}）: {1}", "expected {0}: {1}"),
    ("err.term_empty", "語が空です", "the term is empty"),
    ("err.term_long", "語は {0} 文字までです", "terms are at most {0} characters"),
    (
        "err.term_chars",
        "語に「#」「|」や改行は使えず、「[」で始めることもできません",
        "a term cannot contain '#', '|', line breaks or start with '['",
    ),
    ("err.unknown_flag", "「{0}」という指定はありません（{1}）", "unknown flag '{0}' ({1})"),
    ("err.unknown_section_flag", "「{0}」というセクション指定はありません（{1}）", "unknown section flag '{0}' ({1})"),
    ("err.no_list", "「{0}」というリストはありません", "no list '{0}'"),
    ("err.no_section", "{1}.txt に［{0}］というセクションはありません", "no section [{0}] in {1}.txt"),
    ("err.not_in_section", "「{0}」は {2}.txt の［{1}］にありません", "'{0}' is not in [{1}] of {2}.txt"),
    ("err.unknown_op", "「{0}」という操作はありません（add, remove）", "unknown op '{0}'; use add or remove"),
    ("err.cannot_write", "{0} に書けません: {1}", "cannot write {0}: {1}"),
    ("err.refused", "受け付けませんでした: {0}", "refused: {0}"),
    ("err.normalizes_to_nothing", "{0}: 「{1}」は正規化すると何も残りません", "{0}: entry '{1}' normalizes to nothing"),
    (
        "err.duplicate",
        "{0}: {1}:{2} と重複しています（どちらも「{3}」になります）",
        "{0}: duplicate of {1}:{2} (both normalize to '{3}')",
    ),
    ("err.section_twice", "{0}: ［{1}］が2回あります", "{0}: section [{1}] appears twice"),
    (
        "err.section_name",
        "{0}: セクション名「{1}」には英数字と _ だけが使えます",
        "{0}: section name '{1}' must be ASCII letters, digits or '_'",
    ),
    ("err.not_within", "{0} {1} が 0〜1 の範囲にありません", "{0} {1} is not within 0–1"),
    (
        "err.block_below_hold",
        "ブロックするスコア {0} が保留するスコア {1} より低くなっています",
        "block_at {0} is below hold_at {1}",
    ),
    ("err.slow_hour", "スローモード {0} 秒は1時間を超えています", "slow_mode_seconds {0} is over an hour"),
    ("err.products_max", "商品が {0} 件あります（{1} 件まで）", "{0} products, at most {1}"),
    (
        "err.product_id",
        "{0}: IDは {1} バイトまでの、制御文字を含まない文字列です",
        "{0}: id must be 1–{1} bytes without control characters",
    ),
    ("err.product_dup", "{0}: ID「{1}」が重複しています（{2} と同じ）", "{0}: duplicate id '{1}' (also {2})"),
    ("err.product_name", "{0}（{1}）: 商品名が空です", "{0} ({1}): empty name"),
    ("err.journal_missing", "ジャーナル {0} がありません", "journal {0} does not exist"),
    (
        "err.journal_empty",
        "ジャーナル {0} に配信「{1}」の記録がありません（{2}）",
        "journal {0} has nothing for stream '{1}' ({2})",
    ),
    ("err.journal_not", "{0} は kotae のジャーナルではありません: {1}", "{0} is not a kotae journal: {1}"),
    ("err.journal_streams", "記録のある配信: {0}", "streams in it: {0}"),
    ("err.journal_no_streams", "配信の記録がひとつもありません", "it holds no stream at all"),
    ("err.compare", "比較するレポート {0} を読めません: {1}", "cannot read the report to compare {0}: {1}"),
];

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
