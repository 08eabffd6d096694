//! A stream's whole state as plain data, for cluster snapshots: the host queue, product and
//! catalogue in the form the SQLite journal restores them after a restart
//! ([`RestoredStream`]), plus what a restart does not keep and an exact replay needs: the
//! dedupe windows and clusters, the offset of question ids, the stream's time and its
//! moderation settings and held messages. Moderation counts (blocked, intents, the ticker) are
//! not kept.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use super::Streams;
use super::ctx::StreamCtx;
use crate::catalog::Catalog;
use crate::moderation::{Held, StreamSettings};
use crate::pipeline::dedupe::DedupeState;
use crate::store::RestoredStream;

/// One stream as a snapshot holds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamSnapshot {
    /// The stream's name.
    pub name: String,
    /// Questions (every state), product on screen, catalogue, and the highest question id
    /// issued or reserved.
    pub restored: RestoredStream,
    /// Added to dedupe's cluster numbers to make question ids.
    pub base: u32,
    /// Highest question id issued.
    pub max_id: u32,
    /// The stream's time: its newest message timestamp (ms).
    pub last_ts: u64,
    /// The dedupe stage's memory; `None` for a stream forgotten while idle, which keeps only
    /// where its ids continue and its catalogue.
    pub dedupe: Option<DedupeState>,
    /// What the stream's moderators set (`PUT /v1/streams/ID/settings`); `None`: the defaults.
    pub settings: Option<StreamSettings>,
    /// Messages held for a moderator, decided or not, oldest first.
    pub held: Vec<Held>,
}

impl Streams {
    /// Every stream whose name `pick` accepts, in memory or forgotten while idle.
    pub fn export(&self, pick: &dyn Fn(&str) -> bool) -> Vec<StreamSnapshot> {
        let mut out: Vec<StreamSnapshot> = self
            .streams
            .values()
            .filter(|c| pick(&c.name))
            .map(|c| {
                let mut questions: Vec<_> = c.queue.all().cloned().collect();
                questions.sort_unstable_by_key(|q| q.cluster);
                let catalog = c.state.catalog();
                StreamSnapshot {
                    name: c.name.to_string(),
                    restored: RestoredStream {
                        questions,
                        product: c.queue.current_product.clone(),
                        catalog: (!catalog.is_empty()).then(|| catalog.spec().clone()),
                        reserved: c.reserved.max(c.max_id),
                    },
                    base: c.base,
                    max_id: c.max_id,
                    last_ts: c.last_ts,
                    dedupe: Some(c.state.export_dedupe()),
                    settings: self.settings_of(&c.name),
                    held: self.held_of(&c.name),
                }
            })
            .collect();
        for (name, base) in self.evicted.iter().filter(|(n, _)| pick(n)) {
            let catalog = self.evicted_catalogs.get(name).map(|c| c.spec().clone());
            let restored = RestoredStream { reserved: *base, catalog, ..RestoredStream::default() };
            let (settings, held) = (self.settings_of(name), self.held_of(name));
            out.push(StreamSnapshot { name: name.to_string(), restored, settings, held, ..StreamSnapshot::default() });
        }
        out.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The stream's moderation settings, unless they are the defaults.
    fn settings_of(&self, name: &str) -> Option<StreamSettings> {
        let m = self.moderation.get(name)?;
        let s = m.lock().unwrap_or_else(|e| e.into_inner()).settings.clone();
        (s != StreamSettings::default()).then_some(s)
    }

    /// The stream's held messages, oldest first.
    fn held_of(&self, name: &str) -> Vec<Held> {
        self.moderation.get(name).map(|m| m.lock().unwrap_or_else(|e| e.into_inner()).export_held()).unwrap_or_default()
    }

    /// Forgets every stream whose name `pick` accepts, in memory or idle: before a snapshot
    /// of them is imported, or when this instance's copy of them can no longer be trusted.
    pub fn forget(&mut self, pick: &dyn Fn(&str) -> bool) {
        let gone: Vec<Arc<str>> = self.streams.keys().filter(|n| pick(n)).cloned().collect();
        for name in gone {
            if let Some(ctx) = self.streams.remove(&name) {
                self.settings.live_streams.fetch_sub(1, Ordering::Relaxed);
                for _ in 0..ctx.unjournaled.len() {
                    self.metrics.journal_lag.dec();
                }
            }
        }
        self.evicted.retain(|n, _| !pick(n));
        self.evicted_catalogs.retain(|n, _| !pick(n));
    }

    /// Takes a stream back from a snapshot, replacing what is in memory under its name.
    pub fn import(&mut self, snap: StreamSnapshot) {
        let name: Arc<str> = Arc::from(snap.name.as_str());
        self.forget(&|n| n == &*name);
        // Moderation settings decide verdicts, and held messages wait for a moderator: the
        // snapshot's replace whatever is here.
        let settings = snap.settings.unwrap_or_default();
        let m = if settings == StreamSettings::default() && snap.held.is_empty() {
            self.moderation.get(&name)
        } else {
            self.moderation.stream_for_change(&name)
        };
        if let Some(m) = m {
            let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
            m.settings = settings;
            m.import_held(snap.held);
        }
        let Some(dedupe) = snap.dedupe else {
            // Forgotten while idle: the single-instance restart path keeps exactly that.
            self.restore(name, snap.restored);
            return;
        };
        let s = &self.settings;
        let mut ctx = StreamCtx::new(name.clone(), &self.engine, &s.rank, s.locale, &self.clock);
        let st = snap.restored;
        ctx.continue_from(st.reserved.max(snap.max_id));
        ctx.base = snap.base;
        ctx.max_id = snap.max_id;
        ctx.last_ts = snap.last_ts;
        ctx.queue.current_product = st.product;
        if let Some(spec) = st.catalog
            && let Ok(c) = Catalog::compile(spec, &self.engine.config.normalize)
        {
            ctx.state.set_catalog(Arc::new(c));
        }
        for q in st.questions {
            ctx.queue.restore(q);
        }
        ctx.state.import_dedupe(dedupe);
        s.live_streams.fetch_add(1, Ordering::Relaxed);
        self.streams.insert(name, ctx);
    }
}
