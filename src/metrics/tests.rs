//! Unit tests of `src/metrics.rs`.

use super::*;

#[test]
fn abuse_is_counted_by_category() {
    let m = Metrics::new();
    m.abuse(AbuseCategory::Threat, 2);
    m.abuse(AbuseCategory::Fraud, 0);
    let text = m.render();
    assert!(text.contains("kotae_abuse_total{category=\"threat\"} 2"), "{text}");
    assert!(text.contains("kotae_abuse_total{category=\"fraud\"} 0"), "{text}");
}

#[test]
fn the_process_and_the_build_are_exported() {
    let text = Metrics::new().render();
    for name in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"] {
        assert!(text.lines().any(|l| l.starts_with(name)), "{name} in {text}");
    }
    let version = format!(
        "kotae_build_info{{dictionaries=\"{}\",version=\"{}\"}} 1",
        crate::dictionary::builtin::version(),
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&version), "{text}");
}
