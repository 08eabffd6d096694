//! Progress lines of the long commands (`replay`, `bench-load`, `train --cv`): one line on
//! stderr, drawn only when stderr is a terminal, so piped output, test runs and CI logs see
//! nothing of it. A command clears its line before printing its summary, which stays as it was.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress goes: stderr when it is a terminal, nowhere otherwise.
fn target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() }
}

/// A line styled by `template` (a fixed one, so a bad one is a bug shown as the default style),
/// drawn once it is whole.
fn line(len: Option<u64>, template: &str, prefix: &'static str, message: String) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::hidden());
    let style = ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = bar.with_style(style).with_prefix(prefix).with_message(message);
    bar.set_draw_target(target());
    bar
}

/// A bar counting `len` things of a kind (`answers`, `folds`).
pub fn counter(len: u64, prefix: &'static str, what: &str) -> ProgressBar {
    let template = format!("{{prefix}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {what} (eta {{eta}})");
    line(Some(len), &template, prefix, String::new())
}

/// A spinner with the time elapsed, for a run of about `of`; redrawn by itself.
pub fn running(of: Duration, prefix: &'static str) -> ProgressBar {
    let message = format!("of about {:.0} s", of.as_secs_f64());
    let bar = line(None, "{spinner} {prefix} [{elapsed_precise}] {msg}", prefix, message);
    if !bar.is_hidden() {
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    bar
}
