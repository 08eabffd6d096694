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

mod csv;
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
    Json,
    Csv,
    Html,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("journal {0} does not exist")]
    Missing(String),
    #[error("{path} is not a kotae journal: {reason}")]
    NotJournal { path: String, reason: String },
    #[error("journal {path} has nothing for stream '{stream}' ({detail})")]
    Empty { path: String, stream: String, detail: String },
    #[error("cannot read the report to compare {path}: {reason}")]
    Compare { path: String, reason: String },
    #[error("journal {path}: {source}")]
    Sqlite { path: String, source: rusqlite::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// One wording of a question, with who asked and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wording {
    pub text: String,
    pub user: Option<String>,
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
    pub product_name: Option<String>,
    pub shop: bool,
    pub topics: Vec<String>,
    pub first_asked: u64,
    pub last_asked: u64,
    /// Pinned by the host (meant to be answered).
    pub pinned: bool,
    /// What was paid with it, as paid (`¥1,000`, `US$4.99`).
    pub paid: Vec<String>,
}

/// A question answered during the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answered {
    pub id: String,
    pub question: String,
    /// The answer typed by the host; `null` when answered aloud only.
    pub answer: Option<String>,
    pub askers: u32,
    pub product: Option<String>,
    pub product_name: Option<String>,
    pub shop: bool,
    pub first_asked: u64,
    pub answered_at: u64,
    /// From first asked to answered, in minutes (one decimal).
    pub minutes_to_answer: f64,
    /// Times asked again after the answer.
    pub asked_again: u32,
}

/// How often a topic was named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicCount {
    pub topic: String,
    pub count: u64,
}

/// One product's numbers (`id` `null`: the whole shop, or no product on screen).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductStats {
    pub id: Option<String>,
    pub name: Option<String>,
    pub questions: u64,
    pub distinct_questions: u64,
    pub purchase_intents: u64,
    pub unanswered: u64,
    pub answered: u64,
    /// The most named topics, most first.
    pub topics: Vec<TopicCount>,
}

/// One minute of one product (only minutes with something in them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineRow {
    /// Start of the minute, stream time (ms).
    pub minute: u64,
    pub product: Option<String>,
    pub questions: u64,
    pub purchase_intents: u64,
}

/// Blocked and held messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Blocked {
    pub total: u64,
    /// `spam`, `abuse`, `other`.
    pub by_category: BTreeMap<String, u64>,
    pub held: u64,
}

/// The stream's totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub messages: u64,
    pub questions: u64,
    pub distinct_questions: u64,
    pub purchase_intents: u64,
    pub unanswered: u64,
    pub answered: u64,
    pub dismissed: u64,
    pub blocked: u64,
    pub held: u64,
    /// Median minutes from first asked to answered, over answered questions.
    pub median_minutes_to_answer: Option<f64>,
}

/// One measure now and in the previous report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    pub metric: String,
    pub now: f64,
    pub before: f64,
    pub change: f64,
}

/// One product compared (matched by id, else by name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductDelta {
    pub id: Option<String>,
    pub name: Option<String>,
    pub deltas: Vec<Delta>,
}

/// This report against a previous one (`--compare OLD.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub previous_stream: String,
    pub previous_from: Option<u64>,
    pub totals: Vec<Delta>,
    pub products: Vec<ProductDelta>,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub kotae_report: u32,
    pub stream: String,
    /// First and last message (or question) of the stream, stream time (ms).
    pub from: Option<u64>,
    pub to: Option<u64>,
    /// The offset local times are written with (`server.utc_offset_minutes`).
    pub utc_offset_minutes: i32,
    pub totals: Totals,
    pub products: Vec<ProductStats>,
    pub unanswered: Vec<Unanswered>,
    pub answered: Vec<Answered>,
    pub timeline: Vec<TimelineRow>,
    pub blocked: Blocked,
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

fn delta(metric: &str, now: f64, before: f64) -> Delta {
    Delta { metric: metric.to_string(), now, before, change: ((now - before) * 10.0).round() / 10.0 }
}

/// The measures compared between two reports' totals.
fn total_deltas(now: &Totals, before: &Totals) -> Vec<Delta> {
    let f = |n: u64| n as f64;
    let mut v = vec![
        delta("messages", f(now.messages), f(before.messages)),
        delta("questions", f(now.questions), f(before.questions)),
        delta("distinct_questions", f(now.distinct_questions), f(before.distinct_questions)),
        delta("purchase_intents", f(now.purchase_intents), f(before.purchase_intents)),
        delta("unanswered", f(now.unanswered), f(before.unanswered)),
        delta("answered", f(now.answered), f(before.answered)),
        delta("blocked", f(now.blocked), f(before.blocked)),
    ];
    if let (Some(a), Some(b)) = (now.median_minutes_to_answer, before.median_minutes_to_answer) {
        v.push(delta("median_minutes_to_answer", a, b));
    }
    v
}

/// Compares a report with a previous one: totals, and each product found in both (by id, else
/// by name).
pub fn compare(now: &Report, before: &Report) -> Comparison {
    let products = now
        .products
        .iter()
        .filter_map(|p| {
            let old = before.products.iter().find(|o| o.id == p.id).or_else(|| {
                p.name.as_ref().and_then(|n| before.products.iter().find(|o| o.name.as_ref() == Some(n)))
            })?;
            let f = |n: u64| n as f64;
            Some(ProductDelta {
                id: p.id.clone(),
                name: p.name.clone(),
                deltas: vec![
                    delta("questions", f(p.questions), f(old.questions)),
                    delta("distinct_questions", f(p.distinct_questions), f(old.distinct_questions)),
                    delta("purchase_intents", f(p.purchase_intents), f(old.purchase_intents)),
                    delta("unanswered", f(p.unanswered), f(old.unanswered)),
                ],
            })
        })
        .collect();
    Comparison {
        previous_stream: before.stream.clone(),
        previous_from: before.from,
        totals: total_deltas(&now.totals, &before.totals),
        products,
    }
}

/// Reads a previous report (`--compare`).
pub fn read_previous(path: &Path) -> Result<Report, ReportError> {
    let shown = path.display().to_string();
    let err = |reason: String| ReportError::Compare { path: shown.clone(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let report: Report =
        serde_json::from_str(&text).map_err(|e| err(format!("not a kotae report in JSON (--format json): {e}")))?;
    if report.kotae_report != REPORT_VERSION {
        return Err(err(format!("report version {} (this kotae writes {REPORT_VERSION})", report.kotae_report)));
    }
    Ok(report)
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
    pub journal: PathBuf,
    pub stream: String,
    pub format: Format,
    pub out: Option<PathBuf>,
    pub compare: Option<PathBuf>,
    pub locale: Locale,
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
mod tests {
    use super::*;

    #[test]
    fn local_times_are_written_in_the_offset() {
        // 2026-11-22 03:03 UTC is 12:03 in Japan.
        assert_eq!(local_time(1_795_316_580_000, 540), "2026-11-22 12:03");
        assert_eq!(local_time(1_795_316_580_000, 0), "2026-11-22 03:03");
        assert_eq!(local_time(0, -60), "1969-12-31 23:00");
        assert_eq!(local_time(951_782_400_000, 0), "2000-02-29 00:00");
    }

    #[test]
    fn labels_are_matched_whole() {
        assert!(has_label("question,purchase_intent", "purchase_intent"));
        assert!(!has_label("question_like", "question"));
        assert!(!has_label("", "question"));
    }
}
