#![warn(missing_docs)]
//! kotae: a real-time comment and Q&A moderation engine for Japanese live commerce.
//!
//! # Layout
//! - [`pipeline`]: the message pipeline — [`pipeline::normalize`], [`pipeline::tokenize`],
//!   [`pipeline::classify`] (stateless, fused per worker) and [`pipeline::dedupe`] (stateful).
//! - [`ingest`]: the sidecar protocol's frames and per-connection rate limits; and
//!   [`ingest::adapters`], platform adapters (Twitch IRC, YouTube live chat, Niconico NDGR)
//!   producing normalized chat messages and carrying moderation actions back.
//! - [`stream`]: the synchronous per-stream core: dedupe → moderation decision → host queue →
//!   journal records for a frame, host actions, the views host screens read; no threads.
//! - [`queue`]: the host queue: each stream's questions, their urgency and the ranked list.
//! - [`runtime`]: what runs where: the thread pool (analysis workers, `classify`'s workers), the
//!   stream shards (a lock each, and their tick thread), thread sizing, the one clock.
//! - [`store`]: the SQLite journal that restores open questions after a restart.
//! - [`server`]: `kotae serve`, the websocket sidecar: routes, sessions, auth and roles (axum
//!   extractors, as are the stream id and JSON bodies), the checks every request passes (hosts, origins, bounds), websocket upgrades under one frame
//!   budget, hot reload, shutdown.
//! - [`cluster`]: cluster mode: instances joined through NATS JetStream (partition leases,
//!   forwarding to a stream's owner, partition journals and their replay).
//! - [`metrics`]: Prometheus metrics as typed handles.
//! - [`moderation`]: per-stream moderation settings, held messages, blocked counts, the
//!   purchase-intent ticker and the moderators' audit log. The floor plan of the whole:
//!   `docs/architecture.md`.
//! - [`dictionary`]: keyword dictionaries: validation and the compiled automaton;
//!   [`dictionary::source`], the list format parsed once for the loader and the console, and
//!   where the files come from (a writable directory over the built-in lists);
//!   [`dictionary::builtin`], the lists and model built into the binary; [`dictionary::edit`],
//!   moderators' edits of the files.
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
//!   and its hostile soak, `adapt`), with progress lines on a terminal.

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
pub mod report;
pub mod runtime;
pub mod server;
pub mod store;
pub mod stream;
