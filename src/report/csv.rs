//! The report as one CSV table for spreadsheets: a `section` column first (`unanswered`,
//! `answered`, `product`, `topic`, `timeline`, `blocked`, `compare`), then the columns each
//! section fills. UTF-8 with a byte-order mark, so spreadsheet programs read Japanese right; times
//! in local time (`2026-11-22 12:03`).

use super::{Report, local_time};
use crate::i18n::Locale;

const HEADER: [&str; 14] = [
    "section",
    "product_id",
    "product",
    "time",
    "id",
    "question",
    "wordings",
    "askers",
    "answered_at",
    "minutes_to_answer",
    "answer",
    "metric",
    "value",
    "before",
];

fn field(out: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn row(out: &mut String, cells: &[(usize, String)]) {
    let mut values: [&str; HEADER.len()] = [""; HEADER.len()];
    for (i, v) in cells {
        values[*i] = v;
    }
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, v);
    }
    out.push_str("\r\n");
}

/// The CSV text.
pub fn render(r: &Report, locale: Locale) -> String {
    let time = |ms: u64| local_time(ms, r.utc_offset_minutes);
    let id = |p: &Option<String>| p.clone().unwrap_or_default();
    let name = |p: &Option<String>| r.product_label(p.as_deref(), locale);
    let mut out = String::from("\u{feff}");
    for (i, h) in HEADER.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(h);
    }
    out.push_str("\r\n");
    for q in &r.unanswered {
        let others: Vec<String> = q.wordings.iter().skip(1).map(|w| w.text.clone()).collect();
        row(
            &mut out,
            &[
                (0, "unanswered".into()),
                (1, id(&q.product)),
                (2, name(&q.product)),
                (3, time(q.first_asked)),
                (4, q.id.clone()),
                (5, q.question.clone()),
                (6, others.join(" / ")),
                (7, q.askers.to_string()),
            ],
        );
    }
    for a in &r.answered {
        row(
            &mut out,
            &[
                (0, "answered".into()),
                (1, id(&a.product)),
                (2, name(&a.product)),
                (3, time(a.first_asked)),
                (4, a.id.clone()),
                (5, a.question.clone()),
                (7, a.askers.to_string()),
                (8, time(a.answered_at)),
                (9, format!("{:.1}", a.minutes_to_answer)),
                (10, a.answer.clone().unwrap_or_default()),
            ],
        );
    }
    for p in &r.products {
        for (metric, value) in [
            ("questions", p.questions),
            ("distinct_questions", p.distinct_questions),
            ("purchase_intents", p.purchase_intents),
            ("unanswered", p.unanswered),
            ("answered", p.answered),
        ] {
            row(
                &mut out,
                &[
                    (0, "product".into()),
                    (1, id(&p.id)),
                    (2, name(&p.id)),
                    (11, metric.into()),
                    (12, value.to_string()),
                ],
            );
        }
        for t in &p.topics {
            row(
                &mut out,
                &[
                    (0, "topic".into()),
                    (1, id(&p.id)),
                    (2, name(&p.id)),
                    (11, crate::i18n::topic(locale, &t.topic)),
                    (12, t.count.to_string()),
                ],
            );
        }
    }
    for t in &r.timeline {
        for (metric, value) in [("questions", t.questions), ("purchase_intents", t.purchase_intents)] {
            row(
                &mut out,
                &[
                    (0, "timeline".into()),
                    (1, id(&t.product)),
                    (2, name(&t.product)),
                    (3, time(t.minute)),
                    (11, metric.into()),
                    (12, value.to_string()),
                ],
            );
        }
    }
    for (category, n) in &r.blocked.by_category {
        row(&mut out, &[(0, "blocked".into()), (11, category.clone()), (12, n.to_string())]);
    }
    row(&mut out, &[(0, "blocked".into()), (11, "held".into()), (12, r.blocked.held.to_string())]);
    if let Some(c) = &r.comparison {
        let number = |n: f64| n.to_string();
        for d in &c.totals {
            row(
                &mut out,
                &[(0, "compare".into()), (11, d.metric.clone()), (12, number(d.now)), (13, number(d.before))],
            );
        }
        for p in &c.products {
            for d in &p.deltas {
                row(
                    &mut out,
                    &[
                        (0, "compare".into()),
                        (1, id(&p.id)),
                        (2, name(&p.id)),
                        (11, d.metric.clone()),
                        (12, number(d.now)),
                        (13, number(d.before)),
                    ],
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_quotes_or_breaks_are_quoted() {
        let mut s = String::new();
        field(&mut s, "送料は,無料です");
        s.push('|');
        field(&mut s, "\"税込\"");
        s.push('|');
        field(&mut s, "plain");
        assert_eq!(s, "\"送料は,無料です\"|\"\"\"税込\"\"\"|plain");
    }
}
