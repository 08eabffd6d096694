//! The report as one HTML file: no script, no CDN, no web fonts (the system's Japanese fonts),
//! charts drawn as inline SVG — one per product (questions per minute as bars, purchase intent
//! as a line, on the same time axis for every product) and one of blocked comments by category.
//! It prints on A4 (`@page`), tables keep their header on every page, charts are never split.

use std::fmt::Write as _;

use super::{ProductStats, Report, local_time};
use crate::i18n::{self, Locale, html_escape as esc};

const STYLE: &str = r#"
  @page { size: A4; margin: 12mm 11mm; }
  :root { --fg: #1c1917; --dim: #6b6560; --line: #e7e5e4; --q: #2563eb; --pi: #16a34a; --bad: #dc2626; --accent: #c2410c;
    font-family: "Noto Sans CJK JP", "Noto Sans JP", "Hiragino Sans", "Hiragino Kaku Gothic ProN", "Yu Gothic UI",
      "Yu Gothic", Meiryo, system-ui, sans-serif, "Noto Color Emoji"; }
  * { box-sizing: border-box; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  body { color: var(--fg); margin: 0 auto; max-width: 188mm; font-size: 10pt; line-height: 1.5; }
  @media screen { body { padding: 24px; max-width: 960px; background: #fff; } }
  h1 { font-size: 18pt; margin: 0; }
  h2 { font-size: 13pt; margin: 18px 0 6px; padding-left: 8px; border-left: 5px solid var(--accent); break-after: avoid; }
  h3 { font-size: 11pt; margin: 0 0 2px; }
  .period, .lead, .dim { color: var(--dim); }
  .lead { margin: 0 0 6px; }
  .cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 6px; margin-top: 10px; }
  .card { border: 1px solid var(--line); border-radius: 8px; padding: 6px 10px; break-inside: avoid; }
  .card b { display: block; font-size: 17pt; font-variant-numeric: tabular-nums; }
  .card span { color: var(--dim); font-size: 8.5pt; }
  .card.warn b { color: var(--accent); }
  table { width: 100%; border-collapse: collapse; }
  thead { display: table-header-group; }
  th { color: var(--dim); font-weight: 500; font-size: 8.5pt; text-align: left; }
  th, td { border-bottom: 1px solid var(--line); padding: 3px 5px; vertical-align: top; overflow-wrap: anywhere; }
  tr { break-inside: avoid; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  td.t { white-space: nowrap; }
  .q { font-weight: 700; }
  .w { color: var(--dim); font-size: 8.5pt; }
  .pin { color: var(--q); font-weight: 700; }
  .paid { color: var(--accent); font-size: 8.5pt; }
  .ans { color: #166534; }
  .up { color: var(--pi); } .down { color: var(--bad); }
  section.product { break-inside: avoid; border-top: 1px solid var(--line); padding-top: 6px; margin-top: 8px; }
  .stats { color: var(--dim); font-size: 9pt; margin-bottom: 2px; }
  svg { display: block; width: 100%; height: auto; }
  svg text { font-size: 9px; fill: var(--dim); font-family: inherit; }
  footer { color: var(--dim); font-size: 8pt; margin-top: 16px; text-align: right; }
"#;

/// Chart geometry (SVG user units).
const W: f64 = 680.0;
const H: f64 = 140.0;
const LEFT: f64 = 30.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 20.0;

fn hm(ms: u64, offset: i32) -> String {
    local_time(ms, offset)[11..].to_string()
}

/// One product's chart: questions per minute as bars, purchase intent as a line, over the
/// whole stream's minutes.
fn chart(out: &mut String, r: &Report, p: &ProductStats, locale: Locale) {
    let (Some(from), Some(to)) = (r.from, r.to) else { return };
    let start = from - from % 60_000;
    let n = ((to - to % 60_000 - start) / 60_000 + 1) as usize;
    let mut questions = vec![0u64; n];
    let mut intents = vec![0u64; n];
    for t in r.timeline.iter().filter(|t| t.product == p.id) {
        let i = ((t.minute.saturating_sub(start)) / 60_000) as usize;
        if i < n {
            questions[i] += t.questions;
            intents[i] += t.purchase_intents;
        }
    }
    let max = questions.iter().chain(&intents).copied().max().unwrap_or(0).max(1);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let step = plot_w / n as f64;
    let y = |v: u64| TOP + plot_h - plot_h * v as f64 / max as f64;
    let name = r.product_label(p.id.as_deref(), locale);
    let title = format!("{name}: {}", i18n::text(locale, "report.timeline"));
    let _ = write!(
        out,
        r#"<svg class="chart" data-product="{}" viewBox="0 0 {W} {H}" role="img" aria-label="{}"><title>{}</title>"#,
        esc(p.id.as_deref().unwrap_or("")),
        esc(&title),
        esc(&title)
    );
    // Legend.
    let _ = write!(
        out,
        r#"<rect x="{LEFT}" y="4" width="10" height="8" fill="var(--q)"/><text x="{}" y="11">{}</text><line x1="{}" y1="8" x2="{}" y2="8" stroke="var(--pi)" stroke-width="2"/><text x="{}" y="11">{}</text>"#,
        LEFT + 14.0,
        esc(i18n::text(locale, "report.legend.questions")),
        LEFT + 80.0,
        LEFT + 96.0,
        LEFT + 100.0,
        esc(i18n::text(locale, "report.legend.intents"))
    );
    // Axes and the y scale.
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="#d6d3d1"/><text x="{}" y="{}" text-anchor="end">0</text><text x="{}" y="{}" text-anchor="end">{max}</text><line x1="{LEFT}" y1="{TOP}" x2="{}" y2="{TOP}" stroke="#f0efed"/>"##,
        TOP + plot_h,
        W - RIGHT,
        TOP + plot_h,
        LEFT - 4.0,
        TOP + plot_h + 3.0,
        LEFT - 4.0,
        TOP + 3.0,
        W - RIGHT
    );
    // Minute ticks: about a dozen at most.
    let every = [1usize, 2, 5, 10, 15, 30, 60, 120].into_iter().find(|s| n / s <= 12).unwrap_or(240);
    for k in (0..n).step_by(every) {
        let x = LEFT + step * k as f64;
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#d6d3d1"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 3.0,
            H - 6.0,
            esc(&i18n::format(locale, "report.minutes", &[&k]))
        );
    }
    for (i, &q) in questions.iter().enumerate().filter(|(_, q)| **q > 0) {
        let _ = write!(
            out,
            r#"<rect class="q" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="var(--q)" opacity=".85"><title>{} {q}</title></rect>"#,
            LEFT + step * i as f64 + step * 0.1,
            y(q),
            (step * 0.8).max(0.5),
            TOP + plot_h - y(q),
            esc(&i18n::format(locale, "report.minutes", &[&i])),
        );
    }
    if intents.iter().any(|&v| v > 0) {
        let points: Vec<String> = intents
            .iter()
            .enumerate()
            .map(|(i, &v)| format!("{:.1},{:.1}", LEFT + step * (i as f64 + 0.5), y(v)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="pi" points="{}" fill="none" stroke="var(--pi)" stroke-width="1.6" stroke-linejoin="round"/>"#,
            points.join(" ")
        );
    }
    out.push_str("</svg>");
}

/// Blocked comments by category, as horizontal bars.
fn blocked_chart(out: &mut String, r: &Report, locale: Locale) {
    let rows: Vec<(String, u64)> = ["spam", "abuse", "other"]
        .iter()
        .map(|c| {
            (
                i18n::text(locale, &format!("blocked.{c}")).to_string(),
                r.blocked.by_category.get(*c).copied().unwrap_or(0),
            )
        })
        .chain(std::iter::once((i18n::text(locale, "report.held").to_string(), r.blocked.held)))
        .collect();
    let max = rows.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let h = 22.0 * rows.len() as f64 + 4.0;
    let label_w = 150.0;
    let _ = write!(
        out,
        r#"<svg class="blocked" viewBox="0 0 {W} {h}" role="img" aria-label="{}"><title>{}</title>"#,
        esc(i18n::text(locale, "report.blocked_by")),
        esc(i18n::text(locale, "report.blocked_by"))
    );
    for (i, (label, n)) in rows.iter().enumerate() {
        let top = 4.0 + 22.0 * i as f64;
        let width = (W - label_w - 60.0) * *n as f64 / max as f64;
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" style="font-size:11px">{}</text><rect x="{label_w}" y="{top:.1}" width="{width:.1}" height="14" fill="var(--bad)" opacity=".75"/><text x="{:.1}" y="{:.1}" style="font-size:11px">{n}</text>"#,
            label_w - 6.0,
            top + 11.0,
            esc(label),
            label_w + width + 4.0,
            top + 11.0
        );
    }
    out.push_str("</svg>");
}

fn card(out: &mut String, value: &str, label: &str, warn: bool) {
    let _ = write!(
        out,
        r#"<div class="card{}"><b>{}</b><span>{}</span></div>"#,
        if warn { " warn" } else { "" },
        esc(value),
        esc(label)
    );
}

fn change(out: &mut String, d: f64, higher_is_better: bool) {
    let class = if d == 0.0 {
        ""
    } else if (d > 0.0) == higher_is_better {
        "up"
    } else {
        "down"
    };
    let sign = if d > 0.0 { "+" } else { "" };
    let _ = write!(out, r#"<td class="n {class}">{sign}{d}</td>"#);
}

/// The HTML text.
pub fn render(r: &Report, locale: Locale) -> String {
    let t = |k: &str| esc(i18n::text(locale, k));
    let off = r.utc_offset_minutes;
    let label = |p: &Option<String>| esc(&r.product_label(p.as_deref(), locale));
    let mut o = String::with_capacity(64 * 1024);
    let title = i18n::format(locale, "report.title", &[&r.stream]);
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<style>{STYLE}</style>\n</head>\n<body>\n",
        locale.tag(),
        esc(&title)
    );
    let _ = write!(o, "<header><h1>{}</h1>", esc(&title));
    if let (Some(from), Some(to)) = (r.from, r.to) {
        let period = i18n::format(
            locale,
            "report.period",
            &[&local_time(from, off), &hm(to, off), &((to - from).div_ceil(60_000))],
        );
        let _ = write!(o, r#"<div class="period">{}</div>"#, esc(&period));
    }
    o.push_str("</header>\n");

    // Summary.
    let tot = &r.totals;
    let _ = write!(o, "<h2>{}</h2><div class=\"cards\" id=\"summary\">", t("report.summary"));
    card(&mut o, &tot.messages.to_string(), i18n::text(locale, "report.messages"), false);
    card(&mut o, &tot.questions.to_string(), i18n::text(locale, "report.questions"), false);
    card(&mut o, &tot.distinct_questions.to_string(), i18n::text(locale, "report.distinct"), false);
    card(&mut o, &tot.purchase_intents.to_string(), i18n::text(locale, "report.intents"), false);
    card(&mut o, &tot.unanswered.to_string(), i18n::text(locale, "report.unanswered"), tot.unanswered > 0);
    card(&mut o, &tot.answered.to_string(), i18n::text(locale, "report.answered"), false);
    let median = tot
        .median_minutes_to_answer
        .map_or_else(|| "—".to_string(), |m| i18n::format(locale, "report.minutes", &[&format!("{m:.1}")]));
    card(&mut o, &median, i18n::text(locale, "report.median"), false);
    card(&mut o, &tot.blocked.to_string(), i18n::text(locale, "report.blocked"), false);
    o.push_str("</div>\n");

    // Comparison.
    if let Some(c) = &r.comparison {
        let since = c.previous_from.map_or_else(String::new, |f| local_time(f, off));
        let _ = write!(
            o,
            "<h2>{}</h2><p class=\"lead\">{}</p><table id=\"compare\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            t("report.compare"),
            esc(&i18n::format(locale, "report.compare.lead", &[&c.previous_stream, &since])),
            t("report.col.metric"),
            t("report.col.now"),
            t("report.col.before"),
            t("report.col.change")
        );
        let metric = |m: &str| match m {
            "messages" => "report.messages",
            "questions" => "report.questions",
            "distinct_questions" => "report.distinct",
            "purchase_intents" => "report.intents",
            "unanswered" => "report.unanswered",
            "answered" => "report.answered",
            "blocked" => "report.blocked",
            "median_minutes_to_answer" => "report.median",
            _ => "report.col.metric",
        };
        let good =
            |m: &str| matches!(m, "questions" | "distinct_questions" | "purchase_intents" | "answered" | "messages");
        for d in &c.totals {
            let _ = write!(
                o,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
                t(metric(&d.metric)),
                d.now,
                d.before
            );
            change(&mut o, d.change, good(&d.metric));
            o.push_str("</tr>");
        }
        for p in &c.products {
            for d in &p.deltas {
                let _ = write!(
                    o,
                    "<tr><td>{} · {}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
                    label(&p.id),
                    t(metric(&d.metric)),
                    d.now,
                    d.before
                );
                change(&mut o, d.change, good(&d.metric));
                o.push_str("</tr>");
            }
        }
        o.push_str("</tbody></table>\n");
    }

    // The follow-up list.
    let _ = write!(o, "<h2>{}</h2><p class=\"lead\">{}</p>", t("report.followup"), t("report.followup.lead"));
    if r.unanswered.is_empty() {
        let _ = writeln!(o, "<p class=\"dim\" id=\"unanswered\">{}</p>", t("report.none"));
    } else {
        let _ = write!(
            o,
            "<table id=\"unanswered\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            t("report.col.question"),
            t("report.col.product"),
            t("report.col.askers"),
            t("report.col.first")
        );
        for q in &r.unanswered {
            let _ = write!(o, "<tr data-id=\"{}\"><td><div class=\"q\">", esc(&q.id));
            if q.pinned {
                let _ = write!(o, "<span class=\"pin\">📌 </span>");
            }
            o.push_str(&esc(&q.question));
            if !q.paid.is_empty() {
                let _ = write!(o, " <span class=\"paid\">{}</span>", esc(&q.paid.join(" + ")));
            }
            o.push_str("</div>");
            for w in q.wordings.iter().skip(1).take(3) {
                let who = w.user.as_deref().unwrap_or(i18n::text(locale, "host.anonymous"));
                let _ = write!(o, "<div class=\"w\">{} — {}</div>", esc(&w.text), esc(who));
            }
            let _ = write!(
                o,
                "</td><td>{}</td><td class=\"n\">{}</td><td class=\"t\">{}</td></tr>",
                label(&q.product),
                q.askers,
                esc(&hm(q.first_asked, off))
            );
        }
        o.push_str("</tbody></table>\n");
    }

    // Answered.
    let _ = write!(o, "<h2>{}</h2>", t("report.answered_list"));
    if r.answered.is_empty() {
        let _ = writeln!(o, "<p class=\"dim\" id=\"answered\">{}</p>", t("report.none"));
    } else {
        let _ = write!(
            o,
            "<table id=\"answered\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            t("report.col.question"),
            t("report.col.answer"),
            t("report.col.product"),
            t("report.col.answered_at"),
            t("report.col.time_to_answer")
        );
        for a in &r.answered {
            let answer = a.answer.as_deref().map_or_else(|| t("report.no_text"), esc);
            let _ = write!(
                o,
                "<tr data-id=\"{}\"><td class=\"q\">{}</td><td class=\"ans\">{answer}</td><td>{}</td><td class=\"t\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&a.id),
                esc(&a.question),
                label(&a.product),
                esc(&hm(a.answered_at, off)),
                esc(&i18n::format(locale, "report.minutes", &[&format!("{:.1}", a.minutes_to_answer)]))
            );
        }
        o.push_str("</tbody></table>\n");
    }

    // By product, each with its chart.
    let _ = write!(o, "<h2>{}</h2><p class=\"lead\">{}</p>", t("report.by_product"), t("report.timeline"));
    for p in &r.products {
        let _ = write!(
            o,
            "<section class=\"product\" data-product=\"{}\"><h3>{}</h3>",
            esc(p.id.as_deref().unwrap_or("")),
            label(&p.id)
        );
        let topics: Vec<String> =
            p.topics.iter().map(|tc| format!("{} {}", i18n::topic(locale, &tc.topic), tc.count)).collect();
        let _ = write!(
            o,
            "<div class=\"stats\">{} {} · {} {} · {} {} · {} {}{}</div>",
            t("report.questions"),
            p.questions,
            t("report.distinct"),
            p.distinct_questions,
            t("report.intents"),
            p.purchase_intents,
            t("report.unanswered"),
            p.unanswered,
            if topics.is_empty() {
                String::new()
            } else {
                format!(" · {}: {}", t("report.col.topics"), esc(&topics.join("、")))
            }
        );
        chart(&mut o, r, p, locale);
        o.push_str("</section>\n");
    }

    // Blocked.
    let _ = write!(o, "<h2>{}</h2>", t("report.blocked_by"));
    blocked_chart(&mut o, r, locale);
    let _ = write!(
        o,
        "\n<footer>{}</footer>\n</body>\n</html>\n",
        esc(&i18n::format(locale, "report.generated", &[&env!("CARGO_PKG_VERSION")]))
    );
    o
}
