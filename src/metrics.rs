//! Prometheus metrics: typed handles registered once, labels from bounded enums only (never
//! stream or user ids).
//!
//! The outcome counters prove the accounting: every message received ends in exactly one of
//! `kotae_messages_total{outcome}`, so at rest
//! `kotae_messages_received_total == sum(kotae_messages_total)`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::label::Label;
use crate::pipeline::classify::AbuseCategory;

mod kinds;

pub use kinds::{Channel, ConnEvent, Endpoint, Outcome, Refusal, RejectReason, Stage};

/// Every metric of the server, registered once.
pub struct Metrics {
    registry: Registry,
    received: IntCounter,
    outcomes: [IntCounter; 4],
    rejected: [IntCounter; 6],
    labels: [IntCounter; 5],
    /// Abuse by category (`insult`, `appearance`, `sexual`, `discrimination`, `threat`, `fraud`).
    abuse: [IntCounter; 6],
    over_budget: [IntCounter; 2],
    backpressure: [IntCounter; 3],
    stages: [Histogram; Stage::ALL.len()],
    depth: [IntGauge; 3],
    connections: [IntGauge; 2],
    conn_events: [IntCounter; 8],
    refused: [IntCounter; 11],
    /// Bytes of incoming websocket frames buffered now (read, or in the pipeline).
    pub frame_budget_used: IntGauge,
    /// The process's resident memory, bytes (read from `/proc/self/statm` at each scrape).
    pub resident_bytes: IntGauge,
    frames_error: IntCounter,
    /// Journal records accepted but not yet committed.
    pub journal_lag: IntGauge,
    /// Journal records committed.
    pub journal_written: IntCounter,
    /// Failed journal transactions (records of a failed batch are retried once, then counted lost).
    pub journal_failures: IntCounter,
    /// Dictionary reloads by result (`ok`, `error`, `refused`).
    reloads: [IntCounter; 3],
    /// Questions dropped from a full host queue.
    pub questions_trimmed: IntCounter,
    /// Dedupe state forgotten early by its count bounds: `window`, `cluster`.
    dedupe_evicted: [IntCounter; 2],
    /// Updates pushed to host websockets.
    pub host_pushes: IntCounter,
    /// Streams with state in memory.
    pub streams: IntGauge,
    /// Open and pinned questions over all streams.
    pub open_questions: IntGauge,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    registry.register(Box::new(c.clone())).expect("registered once");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("registered once");
    g
}

fn counters<const N: usize>(
    registry: &Registry,
    name: &str,
    help: &str,
    label: &str,
    values: [&str; N],
) -> [IntCounter; N] {
    let v = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
    registry.register(Box::new(v.clone())).expect("registered once");
    values.map(|x| v.with_label_values(&[x]))
}

fn gauges<const N: usize>(
    registry: &Registry,
    name: &str,
    help: &str,
    label: &str,
    values: [&str; N],
) -> [IntGauge; N] {
    let v = IntGaugeVec::new(Opts::new(name, help), &[label]).expect("valid metric");
    registry.register(Box::new(v.clone())).expect("registered once");
    values.map(|x| v.with_label_values(&[x]))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric. Start-up only: the names are constants, so a failure here is a bug.
    pub fn new() -> Self {
        let r = Registry::new();
        let hist = HistogramVec::new(
            HistogramOpts::new("kotae_stage_seconds", "Time spent per stage").buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.025,
                0.05, 0.1, 0.25, 0.5, 1.0,
            ]),
            &["stage"],
        )
        .expect("valid metric");
        r.register(Box::new(hist.clone())).expect("registered once");
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, … as every
        // Prometheus exporter names them (Linux; nothing elsewhere).
        #[cfg(target_os = "linux")]
        r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self())).expect("registered once");
        let build = IntGaugeVec::new(
            Opts::new("kotae_build_info", "Always 1; the labels say which kotae runs"),
            &["version", "dictionaries"],
        )
        .expect("valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION"), crate::dictionary::builtin::version()]).set(1);
        r.register(Box::new(build)).expect("registered once");
        Self {
            received: counter(
                &r,
                "kotae_messages_received_total",
                "Messages received (a malformed frame counts as one)",
            ),
            outcomes: counters(
                &r,
                "kotae_messages_total",
                "Messages by final outcome; the sum equals kotae_messages_received_total",
                "outcome",
                Outcome::ALL.map(Outcome::as_str),
            ),
            rejected: counters(
                &r,
                "kotae_rejected_total",
                "Rejected messages by reason",
                "reason",
                RejectReason::ALL.map(RejectReason::as_str),
            ),
            labels: counters(&r, "kotae_labels_total", "Labels given", "label", Label::ALL.map(Label::as_str)),
            abuse: counters(
                &r,
                "kotae_abuse_total",
                "Messages labelled abuse, by category",
                "category",
                AbuseCategory::ALL.map(AbuseCategory::as_str),
            ),
            over_budget: counters(
                &r,
                "kotae_over_budget_total",
                "Messages answered with the fail-open or fail-closed verdict after the latency budget",
                "policy",
                ["open", "closed"],
            ),
            backpressure: counters(
                &r,
                "kotae_backpressure_total",
                "Times a sender found a bounded channel full and waited",
                "channel",
                Channel::ALL.map(Channel::as_str),
            ),
            stages: Stage::ALL.map(|s| hist.with_label_values(&[s.as_str()])),
            depth: gauges(
                &r,
                "kotae_queue_depth",
                "Items waiting in a bounded channel",
                "channel",
                Channel::ALL.map(Channel::as_str),
            ),
            connections: gauges(
                &r,
                "kotae_connections",
                "Open websocket connections",
                "endpoint",
                Endpoint::ALL.map(Endpoint::as_str),
            ),
            conn_events: counters(
                &r,
                "kotae_connection_events_total",
                "Connections refused or closed by the server, by reason",
                "reason",
                ConnEvent::ALL.map(ConnEvent::as_str),
            ),
            refused: counters(
                &r,
                "kotae_refused_total",
                "Requests, connections and values refused or cut by a bound, by what",
                "what",
                Refusal::ALL.map(Refusal::as_str),
            ),
            frame_budget_used: gauge(
                &r,
                "kotae_frame_budget_used_bytes",
                "Bytes of incoming websocket frames buffered now (being read or in the pipeline)",
            ),
            resident_bytes: gauge(&r, "kotae_process_resident_bytes", "Resident memory of the process"),
            frames_error: counter(&r, "kotae_error_frames_total", "Error frames sent for malformed or oversize frames"),
            journal_lag: gauge(
                &r,
                "kotae_journal_lag_records",
                "Journal records accepted but not yet committed, and questions not yet journaled",
            ),
            journal_written: counter(&r, "kotae_journal_written_total", "Journal records committed"),
            journal_failures: counter(&r, "kotae_journal_failures_total", "Failed journal transactions"),
            reloads: counters(
                &r,
                "kotae_dictionary_reloads_total",
                "Dictionary reloads by result (refused: a list would have lost most of its entries)",
                "result",
                ["ok", "error", "refused"],
            ),
            questions_trimmed: counter(&r, "kotae_questions_trimmed_total", "Questions dropped from a full host queue"),
            dedupe_evicted: counters(
                &r,
                "kotae_dedupe_evicted_total",
                "Messages that left a stream's dedupe window by window_messages before window_ms, and clusters forgotten by max_clusters",
                "what",
                ["window", "cluster"],
            ),
            host_pushes: counter(&r, "kotae_host_pushes_total", "Updates pushed to host websockets"),
            streams: gauge(&r, "kotae_streams", "Streams with state in memory"),
            open_questions: gauge(&r, "kotae_open_questions", "Open and pinned questions over all streams"),
            registry: r,
        }
    }

    /// Counts what a stream's dedupe stage forgot early.
    pub fn dedupe_evicted(&self, e: crate::pipeline::dedupe::Evictions) {
        if e.window > 0 {
            self.dedupe_evicted[0].inc_by(e.window);
        }
        if e.clusters > 0 {
            self.dedupe_evicted[1].inc_by(e.clusters);
        }
    }

    /// `n` messages arrived.
    pub fn received(&self, n: usize) {
        self.received.inc_by(n as u64);
    }
    /// One message reached its outcome.
    pub fn outcome(&self, o: Outcome) {
        self.outcomes[o as usize].inc();
    }
    /// One message was rejected.
    pub fn rejected(&self, reason: RejectReason) {
        self.outcome(Outcome::Rejected);
        self.rejected[reason as usize].inc();
    }
    /// One message got label `l`.
    pub fn label(&self, l: Label) {
        self.labels[l.index()].inc();
    }
    /// `n` messages reached outcome `o` (one atomic add for a whole frame).
    pub fn outcomes(&self, o: Outcome, n: u64) {
        if n > 0 {
            self.outcomes[o as usize].inc_by(n);
        }
    }
    /// `n` messages got label `l`.
    pub fn labels(&self, l: Label, n: u64) {
        if n > 0 {
            self.labels[l.index()].inc_by(n);
        }
    }
    /// `n` messages were labelled abuse of category `c`.
    pub fn abuse(&self, c: AbuseCategory, n: u64) {
        if n > 0 {
            self.abuse[c.index()].inc_by(n);
        }
    }
    /// One message missed the latency budget and got the fail-closed (`closed`) or fail-open
    /// verdict.
    pub fn over_budget(&self, closed: bool) {
        self.over_budget[closed as usize].inc();
    }
    /// A sender found channel `c` full and waited.
    pub fn backpressure(&self, c: Channel) {
        self.backpressure[c as usize].inc();
    }
    /// Records how long one pass through stage `s` took.
    pub fn observe(&self, s: Stage, seconds: f64) {
        self.stages[s as usize].observe(seconds);
    }
    /// The gauge of items waiting in channel `c`, set from the channel's length at each scrape.
    pub fn depth(&self, c: Channel) -> &IntGauge {
        &self.depth[c as usize]
    }
    /// The gauge of open websocket connections on endpoint `e`: raised when one opens,
    /// lowered when it closes.
    pub fn connections(&self, e: Endpoint) -> &IntGauge {
        &self.connections[e as usize]
    }
    /// A connection was refused or closed by the server for reason `e`.
    pub fn conn_event(&self, e: ConnEvent) {
        self.conn_events[e as usize].inc();
    }
    /// One error frame was sent for a malformed or oversize frame.
    pub fn error_frame(&self) {
        self.frames_error.inc();
    }
    /// One dictionary reload finished, applied (`ok`) or failed.
    pub fn reload(&self, ok: bool) {
        self.reloads[!ok as usize].inc();
    }
    /// A reload refused because a list would have lost most of its entries.
    pub fn reload_refused(&self) {
        self.reloads[2].inc();
        self.refused(Refusal::DictionaryShrink);
    }
    /// Something was refused or cut by a bound.
    pub fn refused(&self, what: Refusal) {
        self.refused[what as usize].inc();
    }
    /// How often `what` was refused so far.
    pub fn refused_total(&self, what: Refusal) -> u64 {
        self.refused[what as usize].get()
    }

    /// Messages received so far.
    pub fn received_total(&self) -> u64 {
        self.received.get()
    }
    /// Messages that reached each outcome so far.
    pub fn outcome_total(&self, o: Outcome) -> u64 {
        self.outcomes[o as usize].get()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// The process's resident memory in bytes (`VmRSS` of `/proc/self/status`; 0 where there is none).
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests;
