//! The deploy recipes against the code: every metric the dashboard and the alert rules name is
//! one kotae exports, and the Kubernetes example probes and scrapes where kotae listens. The
//! recipes are also checked with the real tools (promtool, systemd-analyze, the Kubernetes
//! schemas) by `scripts/check-deploy.sh`, which CI runs.

use std::collections::BTreeSet;
use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// Names that look like kotae's or the process's metrics in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices("kotae_").chain(text.match_indices("process_")) {
        if i > 0 && text[..i].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = text[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !name.ends_with('_') {
            names.insert(name);
        }
    }
    names
}

#[test]
fn the_dashboard_and_the_alerts_name_metrics_that_exist() {
    let exported = kotae::metrics::Metrics::new().render();
    let known = |name: &str| exported.lines().any(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']));
    for file in ["deploy/grafana-dashboard.json", "deploy/alerts.yml", "deploy/prometheus.yml"] {
        let names = metric_names(&read(file));
        assert!(!names.is_empty(), "{file}");
        for name in names {
            assert!(known(&name), "{file} names {name}, which kotae does not export");
        }
    }
    assert!(known("kotae_build_info") && known("process_cpu_seconds_total"));
}

#[test]
fn no_dashboard_panel_hides_a_series_behind_or() {
    // `a or b` drops every series of b whose labels a has: two metrics with the same labels
    // (kotae_journal_lag_records or kotae_open_questions) show only the first.
    let dashboard: serde_json::Value = serde_json::from_str(&read("deploy/grafana-dashboard.json")).unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or("");
            if let Some((a, b)) = expr.split_once(" or ") {
                let bare = |s: &str| s.trim().chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                assert!(!(bare(a) && bare(b)), "panel {}: {expr}", panel["id"]);
            }
        }
    }
}

#[test]
fn the_kubernetes_example_probes_and_scrapes_the_port_kotae_listens_on() {
    let k8s = read("deploy/kubernetes-sidecar.yaml");
    let probes: Vec<&str> = k8s.lines().filter(|l| l.contains("httpGet")).collect();
    assert_eq!(probes.len(), 3, "startup, readiness, liveness");
    assert!(probes.iter().all(|l| !l.contains("host")), "probes target the pod, not a host: {probes:?}");
    assert!(!k8s.contains("127.0.0.1:7878/metrics") && !k8s.contains("host: 127.0.0.1"));
    assert!(k8s.contains("listen = \"0.0.0.0:7878\""));
    assert!(k8s.contains("prometheus.io/port: \"7878\"") && k8s.contains("containerPort: 7878"));
    assert!(k8s.contains("restartPolicy: Always"), "kotae is a native sidecar");
    assert!(k8s.contains("replicas: 1"));
    assert!(k8s.contains("kind: Secret") && k8s.contains("kind: Service"));
    let unit = read("deploy/kotae.service");
    assert!(unit.contains("DynamicUser=yes") && !unit.contains("User=kotae"));
}
