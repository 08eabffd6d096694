//! `kotae.toml`: typed configuration, every field documented, all problems reported at once.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cluster::ClusterConfig;
use crate::ingest::adapters::AdaptersConfig;
use crate::label::Label;
use crate::pipeline::PipelineConfig;
use crate::queue::RankConfig;
use crate::server::config::ServerConfig;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The message pipeline: dictionaries, limits and per-stage settings.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// Question urgency weights.
    #[serde(default)]
    pub rank: RankConfig,
    /// `kotae serve`: listen address, auth, limits, pipeline sizes, latency policy, journal.
    #[serde(default)]
    pub server: ServerConfig,
    /// Platform adapters: which platforms feed which stream (`kotae adapt`).
    #[serde(default)]
    pub adapters: AdaptersConfig,
    /// Cluster mode through NATS JetStream (`kotae serve --nats`); off unless `nats` is set.
    #[serde(default)]
    pub cluster: ClusterConfig,
}

/// The configuration could not be used; every problem is listed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The configuration file, as given.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The file is not TOML, or not of this shape (an unknown key, a value of the wrong type).
    #[error("{path}: {message}")]
    Parse {
        /// The configuration file as given, or what names the text's origin.
        path: PathBuf,
        /// The TOML parser's message, with the line and column.
        message: String,
    },
    /// Values the types cannot reject are out of range or contradict each other; one line per
    /// problem, each naming its key (`rank.stale_factor 2 is not within 0–1`).
    #[error("{} problem(s) in configuration:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<String>),
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let config = Self::read(path)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a TOML file without validating it (the caller adds settings from the command line
    /// and the environment, then calls [`Config::validate`]).
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })
    }

    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: origin.into(), message: e.to_string() })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values the types cannot, reporting all problems together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let p = &self.pipeline;
        if p.max_message_bytes == 0 {
            problems.push("pipeline.max_message_bytes must be at least 1".to_string());
        }
        for (label, t) in Label::SCORED.iter().zip(p.classify.thresholds) {
            if !(0.0..=1.0).contains(&t) {
                problems.push(format!("pipeline.classify.thresholds: {label} threshold {t} is not within 0–1"));
            }
        }
        if !(0.0..=1.0).contains(&p.classify.block_at) {
            problems.push(format!("pipeline.classify.block_at {} is not within 0–1", p.classify.block_at));
        }
        if let Some(t) = p.dedupe.cluster_threshold
            && !(0.0..=1.0).contains(&t)
        {
            problems.push(format!("pipeline.dedupe.cluster_threshold {t} is not within 0–1"));
        }
        if p.dedupe.max_clusters == 0 {
            problems.push("pipeline.dedupe.max_clusters must be at least 1".to_string());
        }
        if p.dedupe.repeat_flood < 2 {
            problems.push("pipeline.dedupe.repeat_flood must be at least 2".to_string());
        }
        problems.extend(self.rank.problems());
        problems.extend(self.server.problems());
        problems.extend(self.adapters.problems());
        problems.extend(self.cluster.problems());
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::Invalid(problems)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = "[pipeline]\nmax_message_bytes = 0\n[pipeline.classify]\nblock_at = 2.0\n[pipeline.dedupe]\ncluster_threshold = -1.0\n";
        let err = Config::parse(text, Path::new("k.toml")).unwrap_err().to_string();
        assert!(err.starts_with("3 problem(s)"), "{err}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = Config::parse("[pipeline]\nmax_bytes = 3\n", Path::new("k.toml")).unwrap_err().to_string();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn server_problems_are_reported_with_the_others() {
        let text = "[pipeline]\nmax_message_bytes = 0\n[server]\nlisten = \"0.0.0.0:7878\"\nmax_batch = 100\nrate_burst = 10\n";
        let err = Config::parse(text, Path::new("k.toml")).unwrap_err().to_string();
        assert!(err.starts_with("3 problem(s)"), "{err}");
        assert!(err.contains("server.auth"), "{err}");
    }

    #[test]
    fn zero_limits_are_rejected_by_type() {
        let err = Config::parse("[server]\nmax_connections = 0\n", Path::new("k.toml")).unwrap_err().to_string();
        assert!(err.contains("max_connections"), "{err}");
    }

    #[test]
    fn paid_rates_are_checked_with_the_others() {
        let text = "[rank.paid_rates.per_unit]\nUSD = -1.0\nusd = 150.0\n";
        let err = Config::parse(text, Path::new("k.toml")).unwrap_err().to_string();
        assert!(err.starts_with("2 problem(s)"), "{err}");
        assert!(err.contains("rank.paid_rates.per_unit.USD") && err.contains("'usd'"), "{err}");
        let err = Config::parse("[rank.paid_rates]\ncurrency = \"yen\"\n", Path::new("k.toml")).unwrap_err();
        assert!(err.to_string().contains("not a code"), "{err}");
    }

    #[test]
    fn the_example_config_names_and_explains_every_server_field() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kotae.example.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let defaults = toml::Value::try_from(ServerConfig::default()).unwrap();
        for key in defaults.as_table().unwrap().keys().filter(|k| *k != "journal") {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{key} = "))),
                "server.{key} is missing from the example"
            );
        }
        // Every run of settings starts below a comment saying what they do.
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let setting = !l.starts_with('#') && !l.starts_with('[') && l.contains(" = ");
            let after = i.checked_sub(1).map(|j| lines[j]);
            if setting {
                assert!(
                    after.is_some_and(|p| p.starts_with('#') || (p.contains(" = ") && !p.starts_with('['))),
                    "line {}: {l} has no comment above it",
                    i + 1
                );
            }
        }
    }

    #[test]
    fn the_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kotae.example.toml");
        let config = Config::load(&path).unwrap();
        assert_eq!(config, Config::default(), "the example documents the defaults");
    }
}
