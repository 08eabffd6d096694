//! The CLI commands. Each takes parsed arguments and does its work; `main` maps errors to exit codes.

pub mod adapt;
pub mod bench_load;
pub mod breakdown;
pub mod classify;
pub mod client;
pub mod demo;
pub mod eval;
pub mod eval_stream;
pub mod hostile;
pub mod progress;
pub mod replay;
pub mod serve;
pub mod train;
pub mod train_attributes;
pub mod train_identity;
pub mod train_similarity;

use std::path::Path;

use crate::config::Config;

/// Loads the configuration (or the defaults) and applies a `--dict` override; `KOTAE_CACHE` in
/// the environment wins over the file's `cache_dir` (a container image sets it once for all).
pub fn load_config(config: Option<&Path>, dict: Option<&Path>) -> Result<Config, crate::config::ConfigError> {
    let mut cfg = match config {
        Some(path) => Config::read(path)?,
        None => Config::default(),
    };
    // Tokens from the environment count before validation: a file that listens beyond loopback
    // may leave them to a Secret (`kotae serve` reads the same variables).
    for (var, tokens) in [
        ("KOTAE_INGEST_TOKENS", &mut cfg.server.ingest_tokens),
        ("KOTAE_HOST_TOKENS", &mut cfg.server.host_tokens),
        ("KOTAE_MODERATOR_TOKENS", &mut cfg.server.moderator_tokens),
    ] {
        if let Ok(value) = std::env::var(var) {
            for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if !tokens.iter().any(|have| have == t) {
                    tokens.push(t.to_string());
                }
            }
        }
    }
    cfg.validate()?;
    if let Some(dir) = dict {
        cfg.pipeline.dictionaries = Some(dir.to_path_buf());
        cfg.pipeline.builtin = Some(false);
    }
    if let Some(cache) = std::env::var_os("KOTAE_CACHE").filter(|c| !c.is_empty()) {
        cfg.pipeline.tokenize.cache_dir = cache.into();
    }
    let cache = cfg.pipeline.tokenize.cache_dir.clone();
    cfg.pipeline.resolve().map_err(|source| crate::config::ConfigError::Read { path: cache, source })?;
    Ok(cfg)
}

/// `MIN-MAX` as two numbers.
pub fn parse_range(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s.split_once('-').ok_or_else(|| format!("'{s}' is not MIN-MAX"))?;
    let (a, b): (usize, usize) =
        (a.trim().parse().map_err(|e| format!("'{a}': {e}"))?, b.trim().parse().map_err(|e| format!("'{b}': {e}"))?);
    if a > b {
        return Err(format!("{a} is more than {b}"));
    }
    Ok((a, b))
}
