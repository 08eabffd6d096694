//! `kotae report`: what a stream left in the journal, for after the stream (contract: DESIGN.md
//! §2.3b) — the follow-up list of questions nobody answered, the answers given and how long they
//! took, per-product questions, purchase intent and topics, a per-minute timeline per product,
//! blocked comments by category, and a comparison with a previous report.
//!
//! [`build`] reads the journal read-only (a journal from an earlier schema is read as it is:
//! what it lacks, such as each message's product, counts under no product) and counts in one pass
//! over the stream's messages and one over its questions. [`render`] writes JSON (the report
//! itself, which `--compare` reads back), CSV (one table, a `section` column first) or HTML
//! (inline SVG charts, prints on A4; [`html`]).
//!
//! What is counted, exactly (a test recounts each with SQL):
//! - `questions`: allowed messages labelled `question`; `distinct_questions`: their clusters;
//!   `purchase_intents`: allowed messages labelled `purchase_intent`. Per product by the
//!   product each message is about (`messages.product`: named, else on screen).
//! - `unanswered`: questions open or pinned at the end; `answered`: answered ones, with the time
//!   from first asked to answered; `dismissed`: dismissed ones.
//! - `blocked`: blocked messages by category: `abuse` when labelled abuse, else `spam` when
//!   labelled spam, else `other` (slow mode, stricter stream settings); `held`: held messages.
//! - `topics`: per product, the asks naming each topic, over the questions in the journal.

mod compare;
mod csv;
pub use compare::{compare, read_previous};
pub mod html;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};
use serde::{Deserialize, Serialize};

use crate::catalog::CatalogSpec;
use crate::i18n::Locale;
use crate::queue::{Question, QuestionState};

/// Version of the report's JSON shape (`kotae_report`).
pub const REPORT_VERSION: u32 = 1;

/// Topics listed per product.
const TOP_TOPICS: usize = 5;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON document: the report itself, the form `--compare` reads back.
    Json,
    /// One CSV table for spreadsheets, each row led by a `section` column.
    Csv,
    /// A standalone HTML page with inline SVG charts, laid out to print on A4.
    Html,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No file at the journal path given (the path, as shown).
    #[error("journal {0} does not exist")]
    Missing(String),
    /// The file opened but is not a journal: not SQLite, empty, or missing one of the
    /// `messages`, `questions` and `streams` tables, or a question row that does not parse.
    #[error("{path} is not a kotae journal: {reason}")]
    NotJournal {
        /// The journal path, as shown.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The journal has no message and no question for the stream asked for.
    #[error("journal {path} has nothing for stream '{stream}' ({detail})")]
    Empty {
        /// The journal path, as shown.
        path: String,
        /// The stream id asked for.
        stream: String,
        /// The streams the journal does hold (at most 20), so a mistyped id is easy to fix.
        detail: String,
    },
    /// The previous report given with `--compare` cannot be read, is not JSON, or has another
    /// [`REPORT_VERSION`].
    #[error("cannot read the report to compare {path}: {reason}")]
    Compare {
        /// The previous report's path, as shown.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A query on a journal that passed the checks failed.
    #[error("journal {path}: {source}")]
    Sqlite {
        /// The journal path, as shown.
        path: String,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The report could not be written to `--out`.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The output path, as shown.
        path: String,
        /// The write error.
        source: std::io::Error,
    },
}

/// One wording of a question, with who asked and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wording {
    /// The message as written.
    pub text: String,
    /// Who asked, as the message's `user` gave it; `null` when it had none.
    pub user: Option<String>,
    /// When it was asked, stream time (ms).
    pub at: u64,
}

/// A question nobody answered: the follow-up list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unanswered {
    /// The question id (`q12`).
    pub id: String,
    /// Its first wording.
    pub question: String,
    /// Its wordings as kept (at most five), with their askers.
    pub wordings: Vec<Wording>,
    /// Distinct viewers who asked.
    pub askers: u32,
    /// The product id; `null` for the whole shop.
    pub product: Option<String>,
    /// The product's name from the stream's catalogue; `null` when it is not in the catalogue.
    pub product_name: Option<String>,
    /// About the shop as a whole (shipping, payment, coupons) rather than one product.
    pub shop: bool,
    /// The topics its asks named (`stock`, `shipping`…: the `topics` dictionary's sections).
    pub topics: Vec<String>,
    /// When it was first asked, stream time (ms).
    pub first_asked: u64,
    /// When it was last asked, stream time (ms).
    pub last_asked: u64,
    /// Pinned by the host (meant to be answered).
    pub pinned: bool,
    /// What was paid with it, as paid (`¥1,000`, `US$4.99`).
    pub paid: Vec<String>,
}

/// A question answered during the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answered {
    /// The question id (`q12`).
    pub id: String,
    /// Its first wording.
    pub question: String,
    /// The answer typed by the host; `null` when answered aloud only.
    pub answer: Option<String>,
    /// Distinct viewers who asked.
    pub askers: u32,
    /// The product id; `null` for the whole shop.
    pub product: Option<String>,
    /// The product's name from the stream's catalogue; `null` when it is not in the catalogue.
    pub product_name: Option<String>,
    /// About the shop as a whole rather than one product.
    pub shop: bool,
    /// When it was first asked, stream time (ms).
    pub first_asked: u64,
    /// When the host marked it answered, stream time (ms).
    pub answered_at: u64,
    /// From first asked to answered, in minutes (one decimal).
    pub minutes_to_answer: f64,
    /// Times asked again after the answer.
    pub asked_again: u32,
}

/// How often a topic was named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicCount {
    /// The topic (a section of the `topics` dictionary).
    pub topic: String,
    /// Asks naming it, over the product's questions.
    pub count: u64,
}

/// One product's numbers (`id` `null`: the whole shop, or no product on screen).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductStats {
    /// The product id; `null` for the whole shop and for messages with no product on screen.
    pub id: Option<String>,
    /// The product's name from the stream's catalogue; `null` when it is not in the catalogue.
    pub name: Option<String>,
    /// Allowed messages labelled `question` about this product.
    pub questions: u64,
    /// Question clusters among them: the questions the host would see.
    pub distinct_questions: u64,
    /// Allowed messages labelled `purchase_intent` about this product.
    pub purchase_intents: u64,
    /// Its questions still open or pinned at the end of the stream.
    pub unanswered: u64,
    /// Its questions the host marked answered.
    pub answered: u64,
    /// The most named topics, most first.
    pub topics: Vec<TopicCount>,
}

/// One minute of one product (only minutes with something in them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineRow {
    /// Start of the minute, stream time (ms).
    pub minute: u64,
    /// The product id; `null` for the whole shop or no product.
    pub product: Option<String>,
    /// Allowed messages labelled `question` in the minute.
    pub questions: u64,
    /// Allowed messages labelled `purchase_intent` in the minute.
    pub purchase_intents: u64,
}

/// Blocked and held messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Blocked {
    /// Blocked messages, all categories.
    pub total: u64,
    /// `spam`, `abuse`, `other`.
    pub by_category: BTreeMap<String, u64>,
    /// Messages held for a moderator (not counted in `total`).
    pub held: u64,
}

/// The stream's totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Messages journaled for the stream, whatever their action.
    pub messages: u64,
    /// Allowed messages labelled `question`.
    pub questions: u64,
    /// Question clusters: questions counted once however often asked.
    pub distinct_questions: u64,
    /// Allowed messages labelled `purchase_intent`.
    pub purchase_intents: u64,
    /// Questions still open or pinned at the end: the follow-up list's length.
    pub unanswered: u64,
    /// Questions the host marked answered.
    pub answered: u64,
    /// Questions the host dismissed.
    pub dismissed: u64,
    /// Blocked messages (as [`Blocked::total`]).
    pub blocked: u64,
    /// Held messages (as [`Blocked::held`]).
    pub held: u64,
    /// Median minutes from first asked to answered, over answered questions.
    pub median_minutes_to_answer: Option<f64>,
}

/// One measure now and in the previous report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// What is measured: a [`Totals`] or [`ProductStats`] field name (`questions`, `unanswered`…).
    pub metric: String,
    /// Its value in this report.
    pub now: f64,
    /// Its value in the previous report.
    pub before: f64,
    /// `now - before`, rounded to one decimal.
    pub change: f64,
}

/// One product compared (matched by id, else by name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductDelta {
    /// The product id; `null` for the whole shop.
    pub id: Option<String>,
    /// The product's name from this report's catalogue.
    pub name: Option<String>,
    /// The product's measures compared: questions, distinct questions, purchase intents,
    /// unanswered.
    pub deltas: Vec<Delta>,
}

/// This report against a previous one (`--compare OLD.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The previous report's stream id.
    pub previous_stream: String,
    /// When the previous stream began, stream time (ms).
    pub previous_from: Option<u64>,
    /// The totals compared (median minutes to answer only when both reports have one).
    pub totals: Vec<Delta>,
    /// The products found in both reports; a product in only one is left out.
    pub products: Vec<ProductDelta>,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub kotae_report: u32,
    /// The stream id.
    pub stream: String,
    /// First and last message (or question) of the stream, stream time (ms).
    pub from: Option<u64>,
    /// Last message (or question) of the stream, stream time (ms); `null` exactly when `from` is.
    pub to: Option<u64>,
    /// The offset local times are written with (`server.utc_offset_minutes`).
    pub utc_offset_minutes: i32,
    /// The stream's counts.
    pub totals: Totals,
    /// Per product: the catalogue's order, then other products seen (by id), then the shop.
    pub products: Vec<ProductStats>,
    /// The follow-up list: most askers first, then first asked first.
    pub unanswered: Vec<Unanswered>,
    /// Questions answered, in the order they were answered.
    pub answered: Vec<Answered>,
    /// Per minute and product, in time order; minutes with nothing in them are left out.
    pub timeline: Vec<TimelineRow>,
    /// Blocked and held messages, by category.
    pub blocked: Blocked,
    /// The comparison with a previous report, when `--compare` gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
}

impl Report {
    /// A product's name for people: the catalogue's name, else its id, else the shop.
    pub fn product_label(&self, id: Option<&str>, locale: Locale) -> String {
        match id {
            None => crate::i18n::text(locale, "product.shop").to_string(),
            Some(id) => self
                .products
                .iter()
                .find(|p| p.id.as_deref() == Some(id))
                .and_then(|p| p.name.clone())
                .unwrap_or_else(|| id.to_string()),
        }
    }
}

/// Whether `labels` (as journaled: `question,purchase_intent`) holds `label`.
fn has_label(labels: &str, label: &str) -> bool {
    labels.split(',').any(|l| l == label)
}

/// Whether a table has a column (a journal of an earlier schema may lack it).
fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2", params![table, column], |r| {
        r.get(0)
    })
}

/// Per product while counting.
#[derive(Default)]
struct Tally {
    questions: u64,
    clusters: HashSet<u32>,
    intents: u64,
    unanswered: u64,
    answered: u64,
    topics: HashMap<String, u64>,
}

fn minutes(ms: u64) -> f64 {
    (ms as f64 / 6_000.0).round() / 10.0
}

/// Reads a stream's report from a journal.
pub fn build(path: &Path, stream: &str, utc_offset_minutes: i32) -> Result<Report, ReportError> {
    let shown = path.display().to_string();
    if !path.exists() {
        return Err(ReportError::Missing(shown));
    }
    let not_journal = |reason: String| ReportError::NotJournal { path: shown.clone(), reason };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| not_journal(e.to_string()))?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| not_journal(e.to_string()))?;
    for needed in ["messages", "questions", "streams"] {
        if !tables.iter().any(|t| t == needed) {
            let reason = if tables.is_empty() { "the file is empty".to_string() } else { format!("no {needed} table") };
            return Err(not_journal(reason));
        }
    }
    let sql = |source| ReportError::Sqlite { path: shown.clone(), source };

    // The catalogue, for names.
    let catalog: Option<CatalogSpec> = if has_column(&conn, "streams", "catalog").map_err(sql)? {
        conn.query_row("SELECT catalog FROM streams WHERE stream = ?1", [stream], |r| r.get::<_, Option<String>>(0))
            .map(Some)
            .or_else(|e| if matches!(e, rusqlite::Error::QueryReturnedNoRows) { Ok(None) } else { Err(e) })
            .map_err(sql)?
            .flatten()
            .and_then(|c| serde_json::from_str(&c).ok())
    } else {
        None
    };
    let names: HashMap<String, String> =
        catalog.iter().flat_map(|c| c.products.iter().map(|p| (p.id.clone(), p.name.clone()))).collect();

    let mut tally: HashMap<Option<String>, Tally> = HashMap::new();
    let mut timeline: BTreeMap<(u64, Option<String>), (u64, u64)> = BTreeMap::new();
    let mut totals = Totals::default();
    let mut blocked = Blocked::default();
    let mut all_clusters: HashSet<u32> = HashSet::new();
    let (mut from, mut to) = (u64::MAX, 0u64);

    let product_column = if has_column(&conn, "messages", "product").map_err(sql)? { "product" } else { "NULL" };
    let mut stmt = conn
        .prepare(&format!("SELECT ts, action, labels, cluster, {product_column} FROM messages WHERE stream = ?1"))
        .map_err(sql)?;
    let mut rows = stmt.query([stream]).map_err(sql)?;
    while let Some(row) = rows.next().map_err(sql)? {
        let ts = row.get::<_, i64>(0).map_err(sql)?.max(0) as u64;
        let action: String = row.get(1).map_err(sql)?;
        let labels: String = row.get(2).map_err(sql)?;
        let cluster: Option<i64> = row.get(3).map_err(sql)?;
        let product: Option<String> = row.get(4).map_err(sql)?;
        totals.messages += 1;
        from = from.min(ts);
        to = to.max(ts);
        match action.as_str() {
            "block" => {
                let category = if has_label(&labels, "abuse") {
                    "abuse"
                } else if has_label(&labels, "spam") {
                    "spam"
                } else {
                    "other"
                };
                blocked.total += 1;
                *blocked.by_category.entry(category.to_string()).or_default() += 1;
            }
            "hold" => blocked.held += 1,
            _ => {
                let question = has_label(&labels, "question");
                let intent = has_label(&labels, "purchase_intent");
                if !question && !intent {
                    continue;
                }
                let minute = ts - ts % 60_000;
                let t = tally.entry(product.clone()).or_default();
                let cell = timeline.entry((minute, product)).or_default();
                if question {
                    t.questions += 1;
                    cell.0 += 1;
                    totals.questions += 1;
                    if let Some(c) = cluster.and_then(|c| u32::try_from(c).ok()) {
                        t.clusters.insert(c);
                        all_clusters.insert(c);
                    }
                }
                if intent {
                    t.intents += 1;
                    cell.1 += 1;
                    totals.purchase_intents += 1;
                }
            }
        }
    }
    drop(rows);
    drop(stmt);
    totals.distinct_questions = all_clusters.len() as u64;
    totals.blocked = blocked.total;
    totals.held = blocked.held;

    let mut unanswered = Vec::new();
    let mut answered = Vec::new();
    let mut stmt = conn.prepare("SELECT cluster, body FROM questions WHERE stream = ?1").map_err(sql)?;
    let mut rows = stmt.query([stream]).map_err(sql)?;
    let name_of = |p: &Option<String>| p.as_ref().and_then(|p| names.get(p).cloned());
    while let Some(row) = rows.next().map_err(sql)? {
        let cluster: i64 = row.get(0).map_err(sql)?;
        let body: String = row.get(1).map_err(sql)?;
        let q: Question = serde_json::from_str(&body)
            .map_err(|e| not_journal(format!("question {cluster} of stream '{stream}' cannot be read: {e}")))?;
        from = from.min(q.first_ts);
        to = to.max(q.last_ts);
        let key = if q.shop { None } else { q.product.clone() };
        let t = tally.entry(key.clone()).or_default();
        for (i, topic) in q.topics.iter().enumerate() {
            *t.topics.entry(topic.clone()).or_default() += u64::from(q.topic_counts.get(i).copied().unwrap_or(1));
        }
        let question = q.wordings.first().map(|w| w.text.to_string()).unwrap_or_default();
        match q.state {
            QuestionState::Open | QuestionState::Pinned => {
                t.unanswered += 1;
                unanswered.push(Unanswered {
                    id: format!("q{}", q.cluster),
                    question,
                    wordings: q
                        .wordings
                        .iter()
                        .map(|w| Wording {
                            text: w.text.to_string(),
                            user: w.user.as_deref().map(str::to_string),
                            at: w.ts,
                        })
                        .collect(),
                    askers: q.askers,
                    product_name: name_of(&key),
                    product: key,
                    shop: q.shop,
                    topics: q.topics.clone(),
                    first_asked: q.first_ts,
                    last_asked: q.last_ts,
                    pinned: q.state == QuestionState::Pinned,
                    paid: q.paid_amounts.iter().map(crate::money::Money::display).collect(),
                });
            }
            QuestionState::Answered(at) => {
                t.answered += 1;
                answered.push(Answered {
                    id: format!("q{}", q.cluster),
                    question,
                    answer: q.answer.as_deref().map(str::to_string),
                    askers: q.askers,
                    product_name: name_of(&key),
                    product: key,
                    shop: q.shop,
                    first_asked: q.first_ts,
                    answered_at: at,
                    minutes_to_answer: minutes(at.saturating_sub(q.first_ts)),
                    asked_again: q.asked_after_answer,
                });
            }
            QuestionState::Dismissed(_) => totals.dismissed += 1,
        }
    }
    drop(rows);
    drop(stmt);

    if totals.messages == 0 && unanswered.is_empty() && answered.is_empty() && totals.dismissed == 0 {
        let streams: Vec<String> = conn
            .prepare(
                "SELECT stream FROM messages UNION SELECT stream FROM questions UNION SELECT stream FROM streams ORDER BY 1 LIMIT 20",
            )
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(sql)?;
        let detail = if streams.is_empty() {
            "it holds no stream at all".to_string()
        } else {
            format!("streams in it: {}", streams.join(", "))
        };
        return Err(ReportError::Empty { path: shown, stream: stream.to_string(), detail });
    }

    unanswered.sort_by(|a, b| b.askers.cmp(&a.askers).then(a.first_asked.cmp(&b.first_asked)).then(a.id.cmp(&b.id)));
    answered.sort_by(|a, b| a.answered_at.cmp(&b.answered_at).then(a.id.cmp(&b.id)));
    totals.unanswered = unanswered.len() as u64;
    totals.answered = answered.len() as u64;
    let mut waits: Vec<f64> = answered.iter().map(|a| a.minutes_to_answer).collect();
    waits.sort_by(f64::total_cmp);
    totals.median_minutes_to_answer = match waits.len() {
        0 => None,
        n if n % 2 == 1 => Some(waits[n / 2]),
        n => Some(((waits[n / 2 - 1] + waits[n / 2]) * 5.0).round() / 10.0),
    };

    // Products: the catalogue's order, then others seen (by id), then the shop.
    let mut order: Vec<Option<String>> =
        catalog.iter().flat_map(|c| c.products.iter().map(|p| Some(p.id.clone()))).collect();
    let mut others: Vec<Option<String>> = tally.keys().filter(|k| k.is_some() && !order.contains(k)).cloned().collect();
    others.sort();
    order.extend(others);
    if tally.contains_key(&None) {
        order.push(None);
    }
    let products = order
        .into_iter()
        .map(|id| {
            let t = tally.remove(&id).unwrap_or_default();
            let mut topics: Vec<TopicCount> =
                t.topics.into_iter().map(|(topic, count)| TopicCount { topic, count }).collect();
            topics.sort_by(|a, b| b.count.cmp(&a.count).then(a.topic.cmp(&b.topic)));
            topics.truncate(TOP_TOPICS);
            ProductStats {
                name: name_of(&id),
                id,
                questions: t.questions,
                distinct_questions: t.clusters.len() as u64,
                purchase_intents: t.intents,
                unanswered: t.unanswered,
                answered: t.answered,
                topics,
            }
        })
        .collect();
    let timeline = timeline
        .into_iter()
        .map(|((minute, product), (questions, purchase_intents))| TimelineRow {
            minute,
            product,
            questions,
            purchase_intents,
        })
        .collect();
    Ok(Report {
        kotae_report: REPORT_VERSION,
        stream: stream.to_string(),
        from: (from != u64::MAX).then_some(from),
        to: (from != u64::MAX).then_some(to),
        utc_offset_minutes,
        totals,
        products,
        unanswered,
        answered,
        timeline,
        blocked,
        comparison: None,
    })
}

/// The report in a format.
pub fn render(report: &Report, format: Format, locale: Locale) -> String {
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Csv => csv::render(report, locale),
        Format::Html => html::render(report, locale),
    }
}

/// `kotae report`'s options.
#[derive(Debug, Clone)]
pub struct Options {
    /// The journal to read (`server.journal.path`); opened read-only.
    pub journal: PathBuf,
    /// The stream id to report on.
    pub stream: String,
    /// What to write.
    pub format: Format,
    /// Where to write it; `None` returns the text for stdout.
    pub out: Option<PathBuf>,
    /// A previous report in JSON to compare with.
    pub compare: Option<PathBuf>,
    /// Language of the HTML and CSV.
    pub locale: Locale,
    /// Offset from UTC, in minutes, for local times in the HTML and CSV
    /// (`server.utc_offset_minutes`).
    pub utc_offset_minutes: i32,
}

/// Builds, compares and writes the report (to `out`, else returned for stdout).
pub fn run(opts: &Options) -> Result<Option<String>, ReportError> {
    let mut report = build(&opts.journal, &opts.stream, opts.utc_offset_minutes)?;
    if let Some(path) = &opts.compare {
        let before = read_previous(path)?;
        report.comparison = Some(compare(&report, &before));
    }
    let text = render(&report, opts.format, opts.locale);
    match &opts.out {
        Some(path) => {
            std::fs::write(path, text)
                .map_err(|source| ReportError::Write { path: path.display().to_string(), source })?;
            Ok(None)
        }
        None => Ok(Some(text)),
    }
}

/// Local date and time of a millisecond timestamp at a UTC offset: `2026-11-22 12:03`.
pub fn local_time(ms: u64, utc_offset_minutes: i32) -> String {
    let minutes = (ms / 60_000) as i64 + i64::from(utc_offset_minutes);
    let days = minutes.div_euclid(1440);
    let of_day = minutes.rem_euclid(1440);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}", of_day / 60, of_day % 60)
}

#[cfg(test)]
mod tests;
