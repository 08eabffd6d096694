//! The `kotae` binary: parses the command line and calls into the library.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use kotae::commands::{self, adapt, demo, eval, train};
use kotae::message::InMessage;
use kotae::pipeline::Engine;

/// Exit code for a bad configuration or bad dictionaries (EX_USAGE-like).
const EXIT_CONFIG: u8 = 64;

#[derive(Parser)]
#[command(name = "kotae", version, about = "Real-time comment and Q&A moderation for Japanese live commerce")]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "KOTAE_CONFIG")]
    config: Option<PathBuf>,
    /// Dictionary directory (overrides the configuration).
    #[arg(long, global = true)]
    dict: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify JSON Lines from stdin; one verdict line per input line on stdout.
    Classify {
        /// Worker threads for the stateless stages.
        #[arg(long, default_value_t = default_workers())]
        workers: usize,
    },
    /// Precision, recall and F1 per label on a labelled JSON Lines file.
    Eval {
        file: PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// How many wrong lines to list.
        #[arg(long, default_value_t = 25)]
        confusions: usize,
    },
    /// Fit the linear model on a labelled file and write its weights.
    Train {
        file: PathBuf,
        /// Where to write the weights (default: the configured model path).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Report K-fold cross-validated F1 instead of writing a model.
        #[arg(long)]
        cv: Option<usize>,
        #[arg(long, default_value_t = 2)]
        min_count: usize,
        #[arg(long, default_value_t = 0.0001)]
        l2: f32,
        #[arg(long, default_value_t = 300)]
        epochs: usize,
        /// With --cv, how many wrong lines to list.
        #[arg(long, default_value_t = 0)]
        confusions: usize,
    },
    /// Replay the bundled live stream and print the ranked questions.
    Demo {
        #[arg(long, default_value = "fixtures/streams/demo.jsonl")]
        stream: PathBuf,
        #[arg(long, default_value = "fixtures/streams/demo.products.json")]
        products: PathBuf,
        /// How many questions to show.
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
    /// Show how one message is seen: normalized views, tokens, rule hits, feature weights (JSON).
    Explain { text: String },
    /// Validate a dictionary directory; every problem is listed with file and line.
    Check,
    /// Build the IPADIC tokenizer dictionary now (otherwise built on first use).
    Setup,
    /// Run the configured platform adapters; print each chat message as an InMessage JSON line.
    Adapt {
        /// Print the full normalized message, and moderation events, instead.
        #[arg(long)]
        full: bool,
    },
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("KOTAE_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let config = match commands::load_config(cli.config.as_deref(), cli.dict.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kotae: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let engine = || Engine::new(config.pipeline.clone());
    let result: anyhow::Result<()> = (|| match cli.command {
        Command::Setup => {
            let dir = kotae::ipadic::ensure_built(&config.pipeline.tokenize.cache_dir)?;
            println!("ipadic dictionary ready in {}", dir.display());
            Ok(())
        }
        Command::Explain { text } => {
            let engine = engine()?;
            println!("{}", serde_json::to_string_pretty(&engine.analyzer().explain(&text))?);
            Ok(())
        }
        Command::Check => {
            let d = kotae::dictionary::Dictionaries::load(&config.pipeline.dictionaries, &config.pipeline.normalize)?;
            println!("{}: {} rules, {} entries, ok", d.source().display(), d.rules().len(), d.len());
            Ok(())
        }
        Command::Classify { workers } => {
            let engine = engine()?;
            let stats = commands::classify::run(
                &engine,
                io::BufReader::with_capacity(1 << 16, io::stdin()),
                io::stdout().lock(),
                workers,
            )?;
            tracing::info!(lines = stats.lines, errors = stats.errors, "classified");
            Ok(())
        }
        Command::Eval { file, json, confusions } => {
            let engine = engine()?;
            let rows = eval::read_labelled(&file).map_err(anyhow::Error::msg)?;
            let report = eval::evaluate(&engine, &rows);
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.to_table(confusions));
            }
            Ok(())
        }
        Command::Train { file, out, cv, min_count, l2, epochs, confusions } => {
            // Features are extracted with the dictionaries only, never with the old model.
            let mut pipeline = config.pipeline.clone();
            pipeline.classify.model = PathBuf::from("/nonexistent/kotae-no-model.tsv");
            let engine = Engine::new(pipeline)?;
            let rows = eval::read_labelled(&file).map_err(anyhow::Error::msg)?;
            let params = train::TrainParams { min_count, l2, epochs };
            let examples = train::featurize(&engine, &rows);
            if let Some(k) = cv {
                print!("{}", train::cross_validate(&engine, &rows, &examples, k, params).to_table(confusions));
                return Ok(());
            }
            let model = train::train(&examples, params);
            let out = out.unwrap_or_else(|| config.pipeline.model_path());
            model
                .save(&out, &train::header(&file.display().to_string(), rows.len(), params))
                .with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {} ({} features)", out.display(), model.len());
            Ok(())
        }
        Command::Adapt { full } => {
            let output = if full { adapt::Output::Full } else { adapt::Output::InMessage };
            Ok(adapt::run_blocking(&config.adapters, output)?)
        }
        Command::Demo { stream, products, top } => run_demo(&engine()?, &config.rank, &stream, &products, top),
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kotae: {e:#}");
            let config_error = e.downcast_ref::<kotae::pipeline::PipelineError>().is_some()
                || e.downcast_ref::<kotae::dictionary::DictionaryError>().is_some()
                || e.downcast_ref::<adapt::AdaptError>().is_some_and(adapt::AdaptError::is_config);
            ExitCode::from(if config_error { EXIT_CONFIG } else { 1 })
        }
    }
}

fn run_demo(
    engine: &Arc<Engine>,
    rank: &kotae::rank::RankConfig,
    stream: &std::path::Path,
    products: &std::path::Path,
    top: usize,
) -> anyhow::Result<()> {
    let schedule = demo::Schedule::load(products).map_err(anyhow::Error::msg)?;
    let text = std::fs::read_to_string(stream).with_context(|| format!("reading {}", stream.display()))?;
    let messages: Vec<InMessage> =
        text.lines().filter(|l| !l.trim().is_empty()).map(serde_json::from_str).collect::<Result<_, _>>()?;
    let started = std::time::Instant::now();
    let (queue, summary, now) = demo::replay(engine, rank, &messages, &schedule);
    println!("replayed {} messages of stream '{}' in {:.1?}", summary.messages, schedule.stream, started.elapsed());
    println!("actions: {:?}", summary.by_action);
    println!("labels:  {:?}\n", summary.by_label);
    println!("top questions at the end of the stream:");
    print!("{}", demo::format_top(&queue.ranked(now), &schedule, top));
    Ok(())
}
