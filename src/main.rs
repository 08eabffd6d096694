//! The `kotae` binary: parses the command line and calls into the library.

mod cli;

use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use kotae::commands::{self, adapt, bench_load, demo, eval, eval_stream, replay, serve, train};
use kotae::pipeline::Engine;
use kotae::pipeline::classify::TrainOptions;
use kotae::pipeline::identity::IdentityModel;

use cli::{By, Cli, Command};

/// Exit code for a bad configuration or bad dictionaries (EX_USAGE-like).
const EXIT_CONFIG: u8 = 64;

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
        Command::EvalStream { files, json, verbose, second_writer, second_dir } => {
            let engine = engine()?;
            if second_writer {
                for file in files {
                    let report =
                        eval_stream::second_writer_report(&engine, &config.rank, &file, second_dir.as_deref(), json)
                            .map_err(anyhow::Error::msg)?;
                    println!("{report}");
                }
                return Ok(());
            }
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
                        "{}: {} clusters ({} texts): paraphrase pairs together {:.3} of {}, near-miss pairs apart {:.3} of {}, wrong merges {}, not seen as questions {}, pair AUC {:.3}",
                        file.display(),
                        score.clusters,
                        score.texts,
                        score.together,
                        score.paraphrase_pairs,
                        score.apart,
                        score.near_miss_pairs,
                        score.wrong_merges,
                        score.not_questions,
                        score.pair_auc
                    );
                }
            }
            Ok(())
        }
        Command::TrainAttributes { sets, out, l2, epochs, prune, cv } => {
            // Frames are built without an attribute model: their features are what it reads.
            let engine = Engine::with_identity(config.pipeline.clone(), Default::default())?;
            // The same model whatever order the files are named in.
            let mut tagged: Vec<_> = sets
                .iter()
                .map(|f| commands::train_attributes::load(&engine, f).map_err(anyhow::Error::msg))
                .collect::<Result<_, _>>()?;
            tagged.sort_by(|a, b| a.source.cmp(&b.source));
            let classes = commands::train_attributes::classes(&tagged);
            let fit = commands::train_attributes::Fit { l2, epochs, prune };
            let mut header = format!(
                "Attributes: what a question asks about, written by `kotae train-attributes`.\nTrained on: {}\n{} classes, {} texts",
                sets.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
                classes.len(),
                tagged.iter().map(|t| t.texts.len()).sum::<usize>()
            );
            if cv {
                let (report, _) = commands::train_attributes::cross_validate(&classes, &tagged, fit);
                print!("{report}");
                header += &format!("\n{}", report.lines().last().unwrap_or(""));
            }
            let model = commands::train_attributes::fit(&classes, &tagged, fit);
            let out = out.unwrap_or_else(|| config.pipeline.attributes_out_path());
            create_parent(&out)?;
            model.save(&out, &header).with_context(|| format!("writing {}", out.display()))?;
            println!("{} classes, {} features; wrote {}", model.classes.len(), model.features.len(), out.display());
            Ok(())
        }
        Command::TrainSimilarity { sets, out, dim, epochs, min_count, cv } => {
            if !kotae::pipeline::similarity::valid_dim(dim) {
                anyhow::bail!(
                    "--dim {dim} is not a multiple of 8 between 8 and {}",
                    kotae::pipeline::similarity::MAX_DIM
                );
            }
            // Frames are built without the models that read them: their units are what is learned.
            let engine = Engine::with_identity(config.pipeline.clone(), Default::default())?;
            // The same vectors whatever order the files are named in.
            let mut files = sets.clone();
            files.sort();
            let mut next = 0;
            let mut writers = Vec::new();
            for f in &files {
                writers.push(commands::train_similarity::load(&engine, f, &mut next).map_err(anyhow::Error::msg)?);
            }
            let fit = kotae::pipeline::similarity::Fit { dim, epochs, min_count, ..Default::default() };
            let mut header = format!(
                "Similarity: learned vectors of question units, written by `kotae train-similarity`.\nTrained on: {}\n{} texts, dim {dim}, {epochs} passes, units named by at least {min_count} texts",
                files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
                writers.iter().map(|w| w.examples.len()).sum::<usize>()
            );
            if let Some(folds) = cv.filter(|&k| k >= 2) {
                let (report, _) = commands::train_similarity::cross_validate(&writers, fit, folds);
                print!("{report}");
                header += &format!("\n{}", report.lines().last().unwrap_or(""));
            }
            let model = commands::train_similarity::fit(&writers, fit);
            let out = out.unwrap_or_else(|| config.pipeline.similarity_out_path());
            create_parent(&out)?;
            model.save(&out, &header).with_context(|| format!("writing {}", out.display()))?;
            println!("{} units, dim {}; wrote {}", model.len(), model.dim(), out.display());
            Ok(())
        }
        Command::TrainIdentity { streams, clusters, associate, min_writers, min_strength, out, l2, epochs, misses } => {
            // Frames depend on the attribute and similarity models, not on the pair model: train without
            // reading the old one.
            let mut resolved = config.pipeline.clone();
            resolved.resolve()?;
            let attributes = Arc::new(resolved.load_attributes()?);
            let similarity = Arc::new(resolved.load_similarity()?);
            let engine = Engine::with_identity(
                config.pipeline.clone(),
                IdentityModel { attributes: attributes.clone(), similarity: similarity.clone(), ..Default::default() },
            )?;
            let sets: Vec<_> = associate
                .iter()
                .map(|f| eval_stream::ClusterSet::load(f, None).map_err(anyhow::Error::msg))
                .collect::<Result<_, _>>()?;
            let (assoc, learned) =
                commands::train_identity::learn_associations(&engine, &sets, min_writers, min_strength);
            if !sets.is_empty() {
                println!("{learned}");
            }
            // Frames list the units they have associations of when they are built: from here on
            // they are built with the associations just learned.
            engine.set_identity(IdentityModel {
                attributes: attributes.clone(),
                similarity: similarity.clone(),
                associations: assoc.clone(),
                ..Default::default()
            });
            let mut pairs = Vec::new();
            for file in &streams {
                let gold = eval_stream::GoldStream::load(file).map_err(anyhow::Error::msg)?;
                commands::train_identity::stream_pairs(&engine, &gold, &assoc, &mut pairs);
            }
            for file in &clusters {
                let set = eval_stream::ClusterSet::load(file, None).map_err(anyhow::Error::msg)?;
                commands::train_identity::cluster_pairs(&engine, &set, &assoc, &mut pairs);
            }
            let (mut model, mut summary) = commands::train_identity::fit(&pairs, l2, epochs);
            model.associations = assoc;
            model.attributes = attributes;
            model.similarity = similarity;
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
            create_parent(&out)?;
            let mut header = format!(
                "Question identity: weights of the pair model, written by `kotae train-identity`.\nTrained on: {}\n{summary}",
                sources.join(", ")
            );
            if !associate.is_empty() {
                let from: Vec<String> = associate.iter().map(|p| p.display().to_string()).collect();
                header += &format!("\nAssociations learned from: {}\n{learned}", from.join(", "));
            }
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
            create_parent(&out)?;
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
            runtime()?.block_on(async { demo::live(config, engine, &opts, serve::shutdown_signal()).await })?;
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
            let report = runtime()?.block_on(async { serve::run(&config, engine, serve::shutdown_signal()).await })?;
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
            stagger,
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
                stagger,
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

/// Creates the directory a model file is written into, when it has one.
fn create_parent(out: &std::path::Path) -> anyhow::Result<()> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    Ok(())
}
