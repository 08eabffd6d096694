//! `kotae report --compare`: the deltas between this stream's report and a previous one.

use std::path::Path;

use super::*;

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
