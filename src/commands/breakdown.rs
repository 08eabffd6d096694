//! `kotae bench-load --breakdown`: where a run's verdict latency went, stage by stage, from the
//! server's own `kotae_stage_seconds` histograms read before and after the run.
//!
//! Quantiles are interpolated within histogram buckets (as Prometheus' `histogram_quantile`
//! does), so they are as fine as the buckets. The stage "behind" a quantile is the frame-path
//! stage whose own quantile is largest; the client's share is its measured quantile less the
//! server's whole-frame one (the load generator's own scheduling, the loopback socket).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// The stages a frame passes through, in order (`analyze` is per message, `journal` off the
/// path: both are shown but never named as the cause).
pub const PATH: [&str; 6] = ["queue", "worker", "worker_reply", "shard_queue", "stateful", "write"];

/// Cumulative bucket counts per stage: upper bound (seconds) → count, plus `+Inf`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histograms(pub BTreeMap<String, Vec<(f64, u64)>>);

impl Histograms {
    /// Reads `kotae_stage_seconds_bucket` lines from a Prometheus text page.
    pub fn parse(page: &str) -> Self {
        let mut h: BTreeMap<String, Vec<(f64, u64)>> = BTreeMap::new();
        for line in page.lines().filter(|l| l.starts_with("kotae_stage_seconds_bucket{")) {
            let Some((labels, value)) = line.rsplit_once(' ') else { continue };
            let label = |name: &str| {
                let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
                let len = labels[start..].find('"')?;
                Some(labels[start..start + len].to_string())
            };
            let (Some(stage), Some(le), Ok(count)) = (label("stage"), label("le"), value.trim().parse::<f64>()) else {
                continue;
            };
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::INFINITY) };
            h.entry(stage).or_default().push((le, count as u64));
        }
        for v in h.values_mut() {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        Self(h)
    }

    /// What was observed after `before` was read.
    pub fn since(&self, before: &Histograms) -> Self {
        let mut out = BTreeMap::new();
        for (stage, after) in &self.0 {
            let old = before.0.get(stage);
            let v = after
                .iter()
                .enumerate()
                .map(|(i, &(le, n))| (le, n.saturating_sub(old.and_then(|o| o.get(i)).map_or(0, |o| o.1))))
                .collect();
            out.insert(stage.clone(), v);
        }
        Self(out)
    }

    /// Observations of a stage.
    pub fn count(&self, stage: &str) -> u64 {
        self.0.get(stage).and_then(|v| v.last()).map_or(0, |b| b.1)
    }

    /// The stage's `q` quantile in seconds, interpolated within its bucket; `None` without
    /// observations. Past the last finite bound it is that bound.
    pub fn quantile(&self, stage: &str, q: f64) -> Option<f64> {
        let buckets = self.0.get(stage)?;
        let total = buckets.last()?.1;
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let (mut lower, mut below) = (0.0, 0u64);
        for &(le, n) in buckets {
            if n as f64 >= rank {
                if le.is_infinite() {
                    return Some(lower);
                }
                let inside = (n - below) as f64;
                let frac = if inside > 0.0 { (rank - below as f64) / inside } else { 1.0 };
                return Some(lower + (le - lower) * frac.clamp(0.0, 1.0));
            }
            (lower, below) = (le, n);
        }
        Some(lower)
    }

    /// The frame-path stage with the largest `q` quantile, and that quantile (seconds).
    pub fn behind(&self, q: f64) -> Option<(&'static str, f64)> {
        PATH.iter().filter_map(|&s| Some((s, self.quantile(s, q)?))).max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// The breakdown as text: a line per stage, then which stage is behind p99 and p999.
pub fn report(h: &Histograms, client_p99: Duration, client_p999: Duration) -> String {
    let ms = |s: Option<f64>| s.map_or_else(|| "-".to_string(), |s| format!("{:.2}", s * 1000.0));
    let mut out =
        String::from("stage          observed     p50 ms   p99 ms  p999 ms   (server histograms over the run)\n");
    let stages = PATH.iter().chain(["analyze", "frame", "journal"].iter());
    for s in stages {
        let _ = writeln!(
            out,
            "{s:<13} {:>9} {:>9} {:>8} {:>8}{}",
            h.count(s),
            ms(h.quantile(s, 0.5)),
            ms(h.quantile(s, 0.99)),
            ms(h.quantile(s, 0.999)),
            match *s {
                "analyze" => "   per message",
                "frame" => "   arrival to written, whole frame",
                "journal" => "   per transaction, off the verdict path",
                _ => "",
            }
        );
    }
    for (name, q, client) in [("p99", 0.99, client_p99), ("p999", 0.999, client_p999)] {
        let frame = h.quantile("frame", q).unwrap_or(0.0);
        let outside = (client.as_secs_f64() - frame).max(0.0);
        let _ = match h.behind(q) {
            Some((stage, v)) if v >= outside => writeln!(
                out,
                "{name}: client {:.2} ms, server frame {:.2} ms; behind it: {stage} ({:.2} ms at {name})",
                client.as_secs_f64() * 1000.0,
                frame * 1000.0,
                v * 1000.0
            ),
            _ => writeln!(
                out,
                "{name}: client {:.2} ms, server frame {:.2} ms; behind it: outside the server ({:.2} ms: the load generator, the socket)",
                client.as_secs_f64() * 1000.0,
                frame * 1000.0,
                outside * 1000.0
            ),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(stage: &str, buckets: &[(&str, u64)]) -> String {
        buckets
            .iter()
            .map(|(le, n)| format!("kotae_stage_seconds_bucket{{stage=\"{stage}\",le=\"{le}\"}} {n}\n"))
            .collect()
    }

    #[test]
    fn quantiles_interpolate_within_buckets_over_what_the_run_added() {
        let before = Histograms::parse(&page("queue", &[("0.001", 100), ("0.002", 100), ("+Inf", 100)]));
        let after_page = page("queue", &[("0.001", 190), ("0.002", 200), ("+Inf", 200)])
            + &page("shard_queue", &[("0.001", 0), ("0.005", 100), ("+Inf", 100)]);
        let h = Histograms::parse(&after_page).since(&before);
        assert_eq!(h.count("queue"), 100);
        let p50 = h.quantile("queue", 0.5).unwrap();
        assert!((p50 - 0.000_555).abs() < 1e-6, "{p50}");
        let p99 = h.quantile("queue", 0.99).unwrap();
        assert!((p99 - 0.0019).abs() < 1e-6, "{p99}");
        assert_eq!(h.behind(0.99).map(|b| b.0), Some("shard_queue"));
        assert_eq!(h.quantile("stateful", 0.99), None);
        let text = report(&h, Duration::from_millis(6), Duration::from_millis(50));
        assert!(text.contains("p99: client 6.00 ms, server frame 0.00 ms; behind it: outside the server"), "{text}");
    }
}
