//! kotae: a real-time comment and Q&A moderation engine for Japanese live commerce.
//!
//! # Layout
//! - [`pipeline`]: the message pipeline — [`pipeline::normalize`], [`pipeline::tokenize`],
//!   [`pipeline::classify`] (stateless, fused per worker) and [`pipeline::dedupe`] (stateful).
//! - [`rank`]: question urgency and the host's ranked queue.
//! - [`ingest`]: the sidecar protocol's frames, per-connection rate limits, the worker pool; and
//!   [`ingest::adapters`], platform adapters (Twitch IRC, YouTube live chat, Niconico NDGR)
//!   producing normalized chat messages and carrying moderation actions back.
//! - [`queue`]: stream shards owning dedupe, clusters and host queues; host actions.
//! - [`store`]: the SQLite journal that restores open questions after a restart.
//! - [`server`]: `kotae serve`, the websocket sidecar: routes, sessions, auth and roles, the
//!   checks every request passes (hosts, origins, bounds), websocket upgrades under one frame
//!   budget, hot reload, shutdown.
//! - [`cluster`]: cluster mode: instances joined through NATS JetStream (partition leases,
//!   forwarding to a stream's owner, partition journals and their replay).
//! - [`metrics`]: Prometheus metrics as typed handles.
//! - [`moderation`]: per-stream moderation settings, held messages, blocked counts, the
//!   purchase-intent ticker and the moderators' audit log.
//! - [`dictionary`]: keyword dictionaries: parsing, validation, the compiled automaton; and
//!   [`dictionary::edit`], moderators' edits of the files.
//! - [`ipadic`]: building the Lindera IPADIC dictionary offline from Debian's sources.
//! - [`label`]: labels, label sets and actions.
//! - [`message`]: the JSON message and verdict shapes of the contracts.
//! - [`money`]: paid amounts with currency and exponent, ISO 4217 minor units, how amounts are
//!   written for the host, and the rate table ranking converts them with.
//! - [`config`]: `kotae.toml`, typed and validated.
//! - [`i18n`]: the message catalogue (Japanese and English) of everything people read.
//! - [`report`]: `kotae report`, the after-stream report read from the journal (JSON, CSV, HTML).
//! - [`alloc`]: the process allocator (mimalloc) and its memory settings.
//! - [`commands`]: the CLI commands (`classify`, `eval`, `train`, `demo`, `replay`, `bench-load`
//!   and its hostile soak, `adapt`).

pub mod alloc;
pub mod catalog;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod dictionary;
pub mod i18n;
pub mod ingest;
pub mod ipadic;
pub mod label;
pub mod message;
pub mod metrics;
pub mod moderation;
pub mod money;
pub mod pipeline;
pub mod queue;
pub mod rank;
pub mod report;
pub mod server;
pub mod store;
