//! The `kotae` binary: parses the command line and calls into the library.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use kotae::commands::{self, adapt, bench_load, demo, eval, eval_stream, replay, serve, train};
use kotae::pipeline::Engine;
use kotae::pipeline::classify::TrainOptions;

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
        #[arg(long, default_value_t = kotae::runtime::available_cores())]
        workers: usize,
        /// The products (`{"products":[{"id","name","keywords"}]}`): questions naming one are
        /// about it; a line's `"product"` says which was on screen.
        #[arg(long)]
        catalog: Option<PathBuf>,
    },
    /// Replay gold-annotated streams (`NAME.jsonl` with `NAME.products.json` and
    /// `NAME.questions.json` beside it) through the stateful pipeline and score the host queue:
    /// answered once, items per question, items mixing questions or products, non-question items.
    EvalStream {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print one JSON object per stream instead of a table.
        #[arg(long)]
        json: bool,
        /// List the questions split over several items and the items mixing questions.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Paraphrase clusters kept together and near-miss pairs kept apart, on a cluster set.
    EvalClusters {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Near-miss pairs in a file of their own (`{"a","b"}` lines).
        #[arg(long)]
        near: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// List the pairs that failed.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Precision, recall and F1 per label on labelled JSON Lines files (each file one stream).
    Eval {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// How many wrong lines to list.
        #[arg(long, default_value_t = 25)]
        confusions: usize,
        /// Also report per writer, with the worst writer of each label.
        #[arg(long, value_enum)]
        by: Option<By>,
    },
    /// Fit the linear model on labelled files and write its weights.
    Train {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where to write the weights (default: the configured model path).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Report K-fold cross-validated F1 instead of writing a model.
        #[arg(long, conflicts_with = "cv_by")]
        cv: Option<usize>,
        /// Report leave-one-writer-out F1 (per label and per writer) instead of writing a model.
        #[arg(long, value_enum)]
        cv_by: Option<By>,
        /// Words and cues seen in fewer lines are dropped.
        #[arg(long, default_value_t = TrainOptions::default().min_count)]
        min_count: usize,
        /// Character n-grams seen in fewer lines are dropped.
        #[arg(long, default_value_t = TrainOptions::default().min_ngram_count)]
        min_ngram_count: usize,
        /// Character n-gram lengths kept, `MIN-MAX` (a start or end mark counts as one); `0-0` for none.
        #[arg(long, default_value = "2-2", value_parser = commands::parse_range)]
        ngrams: (usize, usize),
        #[arg(long, default_value_t = TrainOptions::default().l2)]
        l2: f32,
        #[arg(long, default_value_t = TrainOptions::default().epochs)]
        epochs: usize,
        /// Features whose every weight is smaller than this are left out of the weights file.
        #[arg(long, default_value_t = TrainOptions::default().min_weight)]
        min_weight: f32,
        /// With --cv or --cv-by, how many wrong lines to list.
        #[arg(long, default_value_t = 0)]
        confusions: usize,
        /// With --cv or --cv-by, print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Fit the question-identity model on gold streams and cluster sets, and write its weights
    /// (default: model/identity.tsv in the dictionary directory).
    TrainIdentity {
        /// Gold streams (`NAME.jsonl` with its products and questions beside it).
        #[arg(long, num_args = 1..)]
        streams: Vec<PathBuf>,
        /// Cluster sets (paraphrase clusters and near-miss pairs).
        #[arg(long, num_args = 1..)]
        clusters: Vec<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value_t = 0.001)]
        l2: f32,
        #[arg(long, default_value_t = 2000)]
        epochs: usize,
        /// List this many of the pairs the trained model gets wrong, each way.
        #[arg(long, default_value_t = 0)]
        misses: usize,
    },
    /// Start a real server, replay the bundled live stream over a websocket, print the ranked
    /// questions, and keep serving the host screen.
    Demo {
        /// The stream to replay (JSON Lines; default: the built-in demo stream).
        #[arg(long)]
        stream: Option<PathBuf>,
        /// Its product schedule (default: the built-in demo's).
        #[arg(long)]
        products: Option<PathBuf>,
        /// How many questions to show.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// Messages per second of the replay.
        #[arg(long, default_value_t = 5000.0)]
        rate: f64,
        /// Follow the recorded timestamps this many times faster than real time (instead of --rate).
        #[arg(long)]
        speed: Option<f64>,
        /// Address to serve on (default: a free port on 127.0.0.1).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Stop the server once the replay is done.
        #[arg(long)]
        exit_after_replay: bool,
    },
    /// Run the websocket sidecar until SIGTERM or SIGINT.
    Serve {
        /// Address to listen on (overrides server.listen).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Ingest bearer tokens, comma-separated (added to server.ingest_tokens).
        #[arg(long, env = "KOTAE_INGEST_TOKENS", value_delimiter = ',', hide_env_values = true)]
        ingest_token: Vec<String>,
        /// Host bearer tokens, comma-separated (added to server.host_tokens).
        #[arg(long, env = "KOTAE_HOST_TOKENS", value_delimiter = ',', hide_env_values = true)]
        host_token: Vec<String>,
        /// Moderator bearer tokens, comma-separated (added to server.moderator_tokens).
        #[arg(long, env = "KOTAE_MODERATOR_TOKENS", value_delimiter = ',', hide_env_values = true)]
        moderator_token: Vec<String>,
        /// Cluster mode: the NATS server, e.g. nats://127.0.0.1:4222 (overrides cluster.nats).
        #[arg(long, env = "KOTAE_NATS")]
        nats: Option<String>,
        /// NATS credentials file (overrides cluster.credentials).
        #[arg(long, env = "KOTAE_NATS_CREDENTIALS")]
        nats_credentials: Option<PathBuf>,
        /// This instance's name in the cluster (overrides cluster.instance).
        #[arg(long)]
        instance: Option<String>,
    },
    /// Replay a recorded JSON Lines stream over a websocket and tally the verdicts.
    Replay {
        file: PathBuf,
        /// Ingest URL, e.g. ws://127.0.0.1:7878/v1/ingest?stream=live1
        #[arg(long)]
        to: String,
        /// Messages per second (default: follow the recorded timestamps).
        #[arg(long)]
        rate: Option<f64>,
        /// With timestamps: this many times faster than real time.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Most messages per frame.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Bearer token.
        #[arg(long, env = "KOTAE_TOKEN")]
        token: Option<String>,
    },
    /// Load a running server: N websocket connections at a target rate; reports msgs/s and
    /// client-side verdict latency (p50/p99/p999). With --hostile, attacks run beside the load
    /// and the server's memory and accounting are checked too.
    BenchLoad {
        /// Server, e.g. ws://127.0.0.1:7878
        #[arg(long, default_value = "ws://127.0.0.1:7878")]
        to: String,
        #[arg(long, default_value_t = 10)]
        connections: usize,
        /// Streams the connections are spread over.
        #[arg(long, default_value_t = 10)]
        streams: usize,
        /// Total messages per second; 0 = as fast as the server answers.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Messages per frame.
        #[arg(long, default_value_t = 50)]
        batch: usize,
        /// Unanswered frames allowed per connection.
        #[arg(long, default_value_t = 8)]
        window: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Stop after this many messages (0 = run for --seconds).
        #[arg(long, default_value_t = 0)]
        messages: u64,
        /// Bearer token.
        #[arg(long, env = "KOTAE_TOKEN")]
        token: Option<String>,
        /// Mix the load with attacks (ping floods, slow bodies, unfinished frames, host frames,
        /// wild messages, random reads, cross-site requests, protocol errors); report the
        /// server's RSS and accounting, and exit 1 past the limits (RSS 200 MB, p99 10 ms).
        #[arg(long)]
        hostile: bool,
        /// Also read the server's stage histograms and say which stage is behind p99 and p999.
        #[arg(long)]
        breakdown: bool,
    },
    /// Show how one message is seen: normalized views, tokens, rule hits, feature weights (JSON).
    Explain {
        text: String,
        /// A second question: also show whether the two are one question, and why.
        #[arg(long)]
        with: Option<String>,
    },
    /// After the stream, from the journal: the questions nobody answered (to follow up), the
    /// answers given and how long they took, questions, purchase intent and topics per product,
    /// a per-minute timeline per product and blocked comments by category.
    Report {
        /// The journal (`server.journal.path`).
        #[arg(long)]
        journal: PathBuf,
        /// The stream id.
        #[arg(long)]
        stream: String,
        #[arg(long, value_enum, default_value_t = kotae::report::Format::Json)]
        format: kotae::report::Format,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// A previous report (`--format json`) to compare with.
        #[arg(long)]
        compare: Option<PathBuf>,
        /// Language of the HTML and CSV, and of errors: `ja` or `en` (default: server.locale).
        #[arg(long)]
        locale: Option<kotae::i18n::Locale>,
    },
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

/// What `--by` and `--cv-by` group lines by.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum By {
    /// The line's `writer` (its file's name when it has none).
    Writer,
}

fn main() -> ExitCode {
    kotae::alloc::tune();
    let filter = tracing_subscriber::EnvFilter::try_from_env("KOTAE_LOG").unwrap_or_else(|_| "warn".into());
    // KOTAE_LOG_FORMAT=json: one JSON object a line, for log collectors.
    if std::env::var("KOTAE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(io::stderr).init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(io::stderr)
            .with_ansi(io::stderr().is_terminal())
            .init();
    }
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
            if let Some(defaults) = config.pipeline.defaults() {
                println!("built-in dictionaries ready in {}", defaults.display());
            }
            Ok(())
        }
        Command::Explain { text, with } => {
            let engine = engine()?;
            let mut analyzer = engine.analyzer();
            match with {
                None => println!("{}", serde_json::to_string_pretty(&analyzer.explain(&text))?),
                Some(other) => println!("{}", serde_json::to_string_pretty(&analyzer.explain_pair(&text, &other))?),
            }
            Ok(())
        }
        Command::Report { journal, stream, format, out, compare, locale } => {
            let locale = locale.unwrap_or(config.server.locale);
            let opts = kotae::report::Options {
                journal,
                stream,
                format,
                out,
                compare,
                locale,
                utc_offset_minutes: config.server.utc_offset_minutes,
            };
            match kotae::report::run(&opts) {
                Ok(Some(text)) => {
                    use std::io::Write as _;
                    io::stdout().lock().write_all(text.as_bytes())?;
                    Ok(())
                }
                Ok(None) => Ok(()),
                // Said in the locale for the person running it, with the English beside it.
                Err(e) => {
                    let english = e.to_string();
                    let shown = kotae::i18n::localize_error(locale, &english);
                    if shown == english { anyhow::bail!("{english}") } else { anyhow::bail!("{shown} ({english})") }
                }
            }
        }
        Command::Check => {
            let sources = config.pipeline.read_sources()?;
            let dir = config.pipeline.dictionary_dir();
            let d = kotae::dictionary::Dictionaries::compile(&dir, &sources, &config.pipeline.normalize)?;
            let over = config.pipeline.defaults().map(|b| format!(" over the built-in lists ({})", b.display()));
            println!(
                "{}{}: {} rules, {} entries, ok",
                dir.display(),
                over.unwrap_or_default(),
                d.rules().len(),
                d.len()
            );
            let path = config.pipeline.model_path();
            let model = kotae::pipeline::classify::Model::load(&path).map_err(kotae::pipeline::PipelineError::from)?;
            println!("{}: {} features ({} character n-grams), ok", path.display(), model.len(), model.ngram_count());
            Ok(())
        }
        Command::Classify { workers, catalog } => {
            let engine = engine()?;
            let catalog = match catalog {
                Some(path) => {
                    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                    let spec: kotae::catalog::CatalogSpec =
                        serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
                    let c = kotae::catalog::Catalog::compile(spec, &config.pipeline.normalize)
                        .with_context(|| format!("{}", path.display()))?;
                    Arc::new(c)
                }
                None => kotae::catalog::Catalog::empty(),
            };
            let stats = commands::classify::run(
                &engine,
                &catalog,
                io::BufReader::with_capacity(1 << 16, io::stdin()),
                io::stdout().lock(),
                workers,
            )?;
            tracing::info!(lines = stats.lines, errors = stats.errors, "classified");
            Ok(())
        }
        Command::EvalStream { files, json, verbose } => {
            let engine = engine()?;
            for file in files {
                let gold = eval_stream::GoldStream::load(&file).map_err(anyhow::Error::msg)?;
                let (score, trace) = eval_stream::score_stream(&engine, &config.rank, &gold);
                if json {
                    println!("{}", serde_json::to_string(&score)?);
                } else {
                    println!("{}", eval_stream::format_score(&score));
                }
                if verbose {
                    eval_stream::print_trace(&trace);
                }
            }
            Ok(())
        }
        Command::EvalClusters { files, near, json, verbose } => {
            let engine = engine()?;
            for file in files {
                let set = eval_stream::ClusterSet::load(&file, near.as_deref()).map_err(anyhow::Error::msg)?;
                let score = eval_stream::score_clusters(&engine, &set, verbose);
                if json {
                    println!("{}", serde_json::to_string(&score)?);
                } else {
                    println!(
                        "{}: {} clusters ({} texts): paraphrase pairs together {:.3} of {}, near-miss pairs apart {:.3} of {}, wrong merges {}, not seen as questions {}",
                        file.display(),
                        score.clusters,
                        score.texts,
                        score.together,
                        score.paraphrase_pairs,
                        score.apart,
                        score.near_miss_pairs,
                        score.wrong_merges,
                        score.not_questions
                    );
                }
            }
            Ok(())
        }
        Command::TrainIdentity { streams, clusters, out, l2, epochs, misses } => {
            // Frames do not depend on the identity model: train without reading the old one.
            let engine = Engine::with_identity(config.pipeline.clone(), Default::default())?;
            let mut pairs = Vec::new();
            for file in &streams {
                let gold = eval_stream::GoldStream::load(file).map_err(anyhow::Error::msg)?;
                commands::train_identity::stream_pairs(&engine, &gold, &mut pairs);
            }
            for file in &clusters {
                let set = eval_stream::ClusterSet::load(file, None).map_err(anyhow::Error::msg)?;
                commands::train_identity::cluster_pairs(&engine, &set, &mut pairs);
            }
            let (mut model, mut summary) = commands::train_identity::fit(&pairs, l2, epochs);
            if !streams.is_empty() {
                // The weights come from the pairs; the threshold from the queue the streams get.
                let golds: Vec<_> = streams
                    .iter()
                    .map(|f| eval_stream::GoldStream::load(f).map_err(anyhow::Error::msg))
                    .collect::<Result<_, _>>()?;
                let (t, tried) = commands::train_identity::stream_threshold(&engine, &model, &golds);
                print!("{tried}");
                summary += &format!("; threshold {t:.2} by the streams' answered-once (pairs: {:.2})", model.threshold);
                model.threshold = t;
            }
            println!("{summary}");
            if misses > 0 {
                print!("{}", commands::train_identity::misses(&model, &pairs, misses));
            }
            let sources: Vec<String> = streams.iter().chain(&clusters).map(|p| p.display().to_string()).collect();
            let out = out.unwrap_or_else(|| config.pipeline.identity_out_path());
            if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            let header = format!(
                "Question identity: weights of the pair model, written by `kotae train-identity`.\nTrained on: {}\n{summary}",
                sources.join(", ")
            );
            model.save(&out, &header).with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Command::Eval { files, json, confusions, by } => {
            let engine = engine()?;
            let rows = eval::read_labelled_files(&files).map_err(anyhow::Error::msg)?;
            let predictions = eval::predictions(&engine, &rows);
            let mut report = eval::score(&rows, &predictions);
            if let Some(By::Writer) = by {
                report = report.by_writer(&rows, &predictions);
            }
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.to_table(confusions));
            }
            Ok(())
        }
        Command::Train {
            files,
            out,
            cv,
            cv_by,
            min_count,
            min_ngram_count,
            ngrams,
            l2,
            epochs,
            min_weight,
            confusions,
            json,
        } => {
            // Features are extracted with the dictionaries only, never with the old model.
            let engine = Engine::without_model(config.pipeline.clone())?;
            let rows = eval::read_labelled_files(&files).map_err(anyhow::Error::msg)?;
            let options = TrainOptions { min_count, min_ngram_count, ngrams, l2, epochs, min_weight };
            let examples = train::featurize(&engine, &rows);
            let report = match (cv, cv_by) {
                (Some(k), _) => Some(train::cross_validate(&engine, &rows, &examples, k, &options)),
                (None, Some(By::Writer)) => Some(train::cross_validate_by_writer(&engine, &rows, &examples, &options)),
                (None, None) => None,
            };
            if let Some(report) = report {
                if json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    print!("{}", report.to_table(confusions));
                }
                return Ok(());
            }
            let model = train::train(&examples, &options);
            let out = out.unwrap_or_else(|| config.pipeline.model_out_path());
            if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            let sources: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            model
                .save(&out, &train::header(&sources, rows.len(), &options))
                .with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {} ({} features, {} character n-grams)", out.display(), model.len(), model.ngram_count());
            Ok(())
        }
        Command::Adapt { full } => {
            let output = if full { adapt::Output::Full } else { adapt::Output::InMessage };
            Ok(adapt::run_blocking(&config.adapters, output)?)
        }
        Command::Demo { stream, products, top, rate, speed, listen, exit_after_replay } => {
            let mut config = config.clone();
            config.server.listen = listen;
            let opts = demo::LiveOptions { stream, products, top, rate, speed, exit_after_replay };
            let engine = engine()?;
            runtime()?.block_on(demo::live(config, engine, &opts, serve::shutdown_signal()))?;
            Ok(())
        }
        Command::Serve { listen, ingest_token, host_token, moderator_token, nats, nats_credentials, instance } => {
            let mut config = config.clone();
            if let Some(l) = listen {
                config.server.listen = l;
            }
            if let Some(n) = nats {
                config.cluster.nats = n;
            }
            if let Some(c) = nats_credentials {
                config.cluster.credentials = Some(c);
            }
            if let Some(i) = instance {
                config.cluster.instance = i;
            }
            // The environment's tokens are in the configuration already; a flag adds its own.
            for (tokens, more) in [
                (&mut config.server.ingest_tokens, ingest_token),
                (&mut config.server.host_tokens, host_token),
                (&mut config.server.moderator_tokens, moderator_token),
            ] {
                for t in more.into_iter().filter(|t| !t.is_empty()) {
                    if !tokens.contains(&t) {
                        tokens.push(t);
                    }
                }
            }
            config.validate()?;
            let engine = engine()?;
            let report = runtime()?.block_on(serve::run(&config, engine, serve::shutdown_signal()))?;
            if !report.in_time() {
                anyhow::bail!("shutdown did not finish within the deadline");
            }
            Ok(())
        }
        Command::Replay { file, to, rate, speed, batch, token } => {
            let messages = replay::read_stream(&file).map_err(anyhow::Error::msg)?;
            let pace = match rate {
                Some(r) => replay::Pace::Rate(r),
                None => replay::Pace::Timestamps { speed },
            };
            let report = runtime()?.block_on(replay::replay(&to, token.as_deref(), &messages, pace, batch.max(1)))?;
            println!(
                "replayed {} messages in {:.1?}: {} verdicts ({} degraded), {} errors",
                report.sent, report.elapsed, report.verdicts, report.degraded, report.errors
            );
            println!("actions: {:?}", report.by_action);
            println!("labels:  {:?}", report.by_label);
            Ok(())
        }
        Command::BenchLoad {
            to,
            connections,
            streams,
            rate,
            batch,
            window,
            seconds,
            messages,
            token,
            hostile,
            breakdown,
        } => {
            let spec = bench_load::LoadSpec {
                server: to,
                token,
                connections: connections.max(1),
                streams: streams.max(1),
                rate,
                batch: batch.max(1),
                window,
                duration: std::time::Duration::from_secs_f64(seconds),
                max_messages: messages,
                texts: Arc::new(bench_load::fixture_texts()?),
                breakdown,
            };
            if !runtime()?.block_on(bench_load::cli(spec, hostile))? {
                anyhow::bail!("the hostile run went past its limits");
            }
            Ok(())
        }
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kotae: {e:#}");
            let config_error = e.downcast_ref::<kotae::pipeline::PipelineError>().is_some()
                || e.downcast_ref::<kotae::dictionary::DictionaryError>().is_some()
                || e.downcast_ref::<kotae::config::ConfigError>().is_some()
                || e.downcast_ref::<adapt::AdaptError>().is_some_and(adapt::AdaptError::is_config);
            ExitCode::from(if config_error { EXIT_CONFIG } else { 1 })
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(kotae::runtime::tokio_runtime()?)
}
