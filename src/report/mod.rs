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

mod build;
mod compare;
mod csv;
pub use build::build;
pub use compare::{compare, read_previous};
pub mod html;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::i18n::Locale;

/// Version of the report's JSON shape (`kotae_report`).
pub const REPORT_VERSION: u32 = 1;

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
