//! `[cluster]`: cluster mode through NATS JetStream. Empty `nats` (the default): one embedded
//! process, nothing changes.

use std::num::{NonZeroU32, NonZeroU64};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How instances join through NATS JetStream (`kotae serve --nats URL`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// NATS server URL (`nats://HOST:PORT`); empty: single-instance mode.
    pub nats: String,
    /// A NATS credentials file (`.creds`: user JWT and NKey seed); none: no authentication.
    pub credentials: Option<PathBuf>,
    /// Partitions streams hash to. Every instance of a cluster must use the same number.
    pub partitions: NonZeroU32,
    /// A partition's lease lasts this long unless renewed: an owner killed outright loses its
    /// partitions after at most this time.
    pub lease_ms: NonZeroU64,
    /// How often an instance renews its leases, heartbeats, and takes partitions that are free.
    pub renew_ms: NonZeroU64,
    /// How long a frame forwarded to its partition's owner may wait for the verdicts (including
    /// an ownership change); past it the messages get the fail-open or fail-closed verdict of
    /// `server.on_budget_exceeded`, counted.
    pub forward_timeout_ms: NonZeroU64,
    /// Subject, bucket and stream name prefix: clusters sharing one NATS server use different ones.
    pub prefix: String,
    /// This instance's name in the leases; empty: host name and a random suffix.
    pub instance: String,
    /// JetStream replicas of the partition journals and the lease bucket (1 for one NATS server).
    pub replicas: usize,
    /// Journal records older than this are deleted by JetStream. A partition taken later
    /// restores its newest snapshot and replays what is left after it: keep this well above
    /// `snapshot_interval_ms`.
    pub journal_max_age_hours: NonZeroU64,
    /// How often a partition's owner snapshots it (when its journal moved since), so a new
    /// owner replays only the records after the snapshot; 0: never (a new owner replays the
    /// whole journal kept).
    pub snapshot_interval_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            nats: String::new(),
            credentials: None,
            partitions: NonZeroU32::new(32).unwrap_or(NonZeroU32::MIN),
            lease_ms: NonZeroU64::new(3000).unwrap_or(NonZeroU64::MIN),
            renew_ms: NonZeroU64::new(500).unwrap_or(NonZeroU64::MIN),
            forward_timeout_ms: NonZeroU64::new(8000).unwrap_or(NonZeroU64::MIN),
            prefix: "kotae".into(),
            instance: String::new(),
            replicas: 1,
            journal_max_age_hours: NonZeroU64::new(48).unwrap_or(NonZeroU64::MIN),
            snapshot_interval_ms: 30_000,
        }
    }
}

impl ClusterConfig {
    /// Cluster mode is on.
    pub fn enabled(&self) -> bool {
        !self.nats.trim().is_empty()
    }

    /// Problems the types cannot catch, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.renew_ms.get().saturating_mul(2) > self.lease_ms.get() {
            p.push(format!(
                "cluster.renew_ms {} must be at most half of cluster.lease_ms {}",
                self.renew_ms, self.lease_ms
            ));
        }
        let token_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !token_ok(&self.prefix) {
            p.push(format!("cluster.prefix {:?} must be letters, digits, '-' or '_'", self.prefix));
        }
        if !self.instance.is_empty() && !token_ok(&self.instance) {
            p.push(format!("cluster.instance {:?} must be letters, digits, '-' or '_'", self.instance));
        }
        if !(1..=5).contains(&self.replicas) {
            p.push(format!("cluster.replicas {} is not within 1–5", self.replicas));
        }
        if self.partitions.get() > 4096 {
            p.push(format!("cluster.partitions {} is over 4096", self.partitions));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    #[test]
    fn the_cluster_example_parses_and_shows_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kotae.cluster.example.toml");
        let config = Config::load(&path).unwrap();
        assert!(config.cluster.enabled());
        assert_eq!(config.cluster, ClusterConfig { nats: "nats://nats:4222".into(), ..ClusterConfig::default() });
        assert!(!Config::default().cluster.enabled(), "without `nats` nothing changes");
    }

    #[test]
    fn bad_cluster_settings_are_all_reported() {
        let text =
            "[cluster]\nnats = \"nats://x:4222\"\nlease_ms = 1000\nrenew_ms = 900\nprefix = \"a.b\"\nreplicas = 0\n";
        let err = Config::parse(text, Path::new("k.toml")).unwrap_err().to_string();
        assert!(err.starts_with("3 problem(s)"), "{err}");
        assert!(
            err.contains("cluster.renew_ms") && err.contains("cluster.prefix") && err.contains("cluster.replicas"),
            "{err}"
        );
    }
}
