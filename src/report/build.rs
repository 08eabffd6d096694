//! [`build`]: the report counted from the journal, read-only, in one pass over the stream's
//! messages and one over its questions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use rusqlite::{Connection, OpenFlags, params};

use super::{
    Answered, Blocked, ProductStats, REPORT_VERSION, Report, ReportError, TimelineRow, TopicCount, Totals, Unanswered,
    Wording,
};
use crate::catalog::CatalogSpec;
use crate::queue::{Question, QuestionState};

/// Topics listed per product.
const TOP_TOPICS: usize = 5;

/// Whether `labels` (as journaled: `question,purchase_intent`) holds `label`.
pub(super) fn has_label(labels: &str, label: &str) -> bool {
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
