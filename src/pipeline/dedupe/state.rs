//! A stream's dedupe state as plain data, so a cluster snapshot carries it: a new owner that
//! restores it and replays the journal after it clusters every later question exactly as the
//! old owner did (same cluster numbers, same repeats and copypasta), which a restart from the
//! host queue alone would not.

use serde::{Deserialize, Serialize};

use super::members::Members;
use super::{Askers, Cluster, Dedupe, Ids, Logged, RECENT, UserChain};

/// A cluster as kept: number, scope, packed member frames, askers, last time asked.
type ClusterState = (u32, u64, Vec<u64>, Vec<u64>, u64);

/// Everything [`Dedupe`] remembers, in the order it was built (the order matters: the index
/// drops its oldest ids first). Scratch buffers and eviction counters are not kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DedupeState {
    /// Number of the next message in the stream.
    seq: u64,
    /// The window's log, oldest first: `(ts, key hash, number of the user's previous message)`.
    log: Vec<(u64, u64, u32)>,
    /// Per user hash: the number of their last message and the length of its chain.
    users: Vec<(u64, u32, u32)>,
    /// Per key hash: the users who sent it and when, as `(user hash, message number)`.
    texts: Vec<(u64, Vec<(u64, u32)>)>,
    /// Per cluster number: its scope, packed member frames, askers and last time.
    clusters: Vec<ClusterState>,
    /// Per index key: the clusters holding it, oldest first.
    index: Vec<(u64, Vec<u32>)>,
    /// Per scope, its most recently asked clusters, the latest first (absent from snapshots
    /// taken before it was kept: rebuilt from the clusters' last times).
    #[serde(default)]
    pub(super) recent: Vec<(u64, Vec<u32>)>,
    next_id: u32,
    last_purge: u64,
    last_count_purge: u64,
}

impl Dedupe {
    /// What this stage remembers, as plain data.
    pub fn export(&self) -> DedupeState {
        let mut clusters: Vec<_> = self
            .clusters
            .iter()
            .map(|(id, c)| (*id, c.scope, c.members.words().to_vec(), c.askers.to_vec(), c.last_ts))
            .collect();
        clusters.sort_unstable_by_key(|c| c.0);
        let mut users: Vec<_> = self.users.iter().map(|(u, c)| (*u, c.last, c.len)).collect();
        users.sort_unstable();
        let mut texts: Vec<_> = self.texts.iter().map(|(k, s)| (*k, s.to_vec())).collect();
        texts.sort_unstable();
        let mut index: Vec<_> = self.index.iter().map(|(k, ids)| (*k, ids.to_vec())).collect();
        index.sort_unstable();
        let mut recent: Vec<_> = self.recent.iter().map(|(scope, ids)| (*scope, ids.to_vec())).collect();
        recent.sort_unstable();
        DedupeState {
            seq: self.window.seq,
            log: self.window.log.iter().map(|l| (l.ts, l.key, l.prev)).collect(),
            users,
            texts,
            clusters,
            index,
            recent,
            next_id: self.next_id,
            last_purge: self.last_purge,
            last_count_purge: self.last_count_purge,
        }
    }

    /// Takes back what [`Dedupe::export`] gave (this stage's configuration and model stay).
    /// A log longer than this configuration's `window_messages` keeps its newest messages.
    pub fn import(&mut self, s: DedupeState) {
        let cap = self.window.cap;
        let skip = s.log.len().saturating_sub(cap);
        self.window.seq = s.seq;
        self.window.log = s.log.into_iter().skip(skip).map(|(ts, key, prev)| Logged { ts, key, prev }).collect();
        self.users = s.users.into_iter().map(|(u, last, len)| (u, UserChain { last, len })).collect();
        self.texts = s.texts.into_iter().map(|(k, seen)| (k, seen.into_iter().collect())).collect();
        self.clusters = s
            .clusters
            .into_iter()
            .map(|(id, scope, words, askers, last_ts)| {
                (
                    id,
                    Cluster {
                        scope,
                        members: Members::from_words(words.into()),
                        askers: Askers::from_vec(askers),
                        last_ts,
                    },
                )
            })
            .collect();
        self.index = s.index.into_iter().map(|(k, ids)| (k, ids.into_iter().collect::<Ids>())).collect();
        self.recent =
            s.recent.into_iter().map(|(scope, ids)| (scope, ids.into_iter().take(RECENT).collect())).collect();
        if self.recent.is_empty() {
            // An older snapshot: the latest asked first, as they were touched.
            let mut by_time: Vec<(u64, u32, u64)> =
                self.clusters.iter().map(|(id, c)| (c.last_ts, *id, c.scope)).collect();
            by_time.sort_unstable();
            for (_, id, scope) in by_time {
                super::touch(&mut self.recent, scope, id);
            }
        }
        self.by_age.clear();
        self.next_id = s.next_id.max(1);
        self.last_purge = s.last_purge;
        self.last_count_purge = s.last_count_purge;
    }
}
