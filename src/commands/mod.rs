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
pub mod replay;
pub mod serve;
pub mod train;
pub mod train_identity;

use std::path::Path;

use crate::config::Config;

/// Loads the configuration (or the defaults) and applies a `--dict` override.
pub fn load_config(config: Option<&Path>, dict: Option<&Path>) -> Result<Config, crate::config::ConfigError> {
    let mut cfg = match config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(dir) = dict {
        cfg.pipeline.dictionaries = dir.to_path_buf();
    }
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
