//! The `kotae` command line: the options and subcommands [`Cli`] parses (part of the binary,
//! not of the library).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use kotae::commands;
use kotae::pipeline::classify::TrainOptions;

#[derive(Parser)]
#[command(name = "kotae", version, about = "Real-time comment and Q&A moderation for Japanese live commerce")]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "KOTAE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Dictionary directory (overrides the configuration).
    #[arg(long, global = true)]
    pub dict: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
        /// Also score a second writer's keys (`NAME.second.tsv` beside the stream) against the
        /// first's, both ways, and count which questions the queue and that person each answer
        /// once: how far two people agree.
        #[arg(long, conflicts_with = "verbose")]
        second_writer: bool,
        /// Where the second writers' files are, when not beside the streams.
        #[arg(long, requires = "second_writer")]
        second_dir: Option<PathBuf>,
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
    /// Learn the vectors that say how alike two questions read (`model/similarity.tsv`), from
    /// paraphrase clusters, one writer each: wordings of one question pulled together, the
    /// rest of the writer's set (near misses included) pushed away.
    TrainSimilarity {
        /// Cluster files, one writer each.
        #[arg(required = true, num_args = 1..)]
        sets: Vec<PathBuf>,
        /// Where to write the model (default: model/similarity.tsv in the dictionary directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Dimensions of the vectors (a multiple of 8).
        #[arg(long, default_value_t = kotae::pipeline::similarity::Fit::default().dim)]
        dim: usize,
        #[arg(long, default_value_t = kotae::pipeline::similarity::Fit::default().epochs)]
        epochs: usize,
        /// A unit gets a vector when at least this many texts name it.
        #[arg(long, default_value_t = kotae::pipeline::similarity::Fit::default().min_count)]
        min_count: usize,
        /// Also report the pair AUC of held-out writers: the writers split into this many
        /// folds, each fold's writers measured under vectors learned from the others.
        #[arg(long)]
        cv: Option<usize>,
    },
    /// Fit the attribute model (what a question asks about: price, stock, washing…) on
    /// paraphrase clusters tagged by hand (`attributes.jsonl` beside each cluster file).
    TrainAttributes {
        /// Cluster files, one writer each, with `attributes.jsonl` beside each.
        #[arg(required = true, num_args = 1..)]
        sets: Vec<PathBuf>,
        /// Where to write the model (default: model/attributes.tsv in the dictionary directory).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value_t = 0.0001)]
        l2: f32,
        #[arg(long, default_value_t = 30)]
        epochs: usize,
        /// Weights smaller than this are left out of the file.
        #[arg(long, default_value_t = 0.1)]
        prune: f32,
        /// Also report leave-one-writer-out accuracy (each writer's texts predicted by a model
        /// fitted on the others).
        #[arg(long)]
        cv: bool,
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
        /// Cluster sets to learn associations from (words paraphrases use for one another),
        /// each by its own writer; kept apart from the pairs the weights are fitted on.
        #[arg(long, num_args = 1..)]
        associate: Vec<PathBuf>,
        /// An association is kept when at least this many of those writers used it.
        #[arg(long, default_value_t = 2)]
        min_writers: usize,
        /// And when at least this share of the pairs setting its two side by side were one
        /// question.
        #[arg(long, default_value_t = 0.3)]
        min_strength: f32,
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
        /// At a set rate, spread the connections over a frame's interval (connection c of n starts
        /// c/n of it late) instead of sending every connection's frames at the same instants.
        #[arg(long)]
        stagger: bool,
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
pub enum By {
    /// The line's `writer` (its file's name when it has none).
    Writer,
}
