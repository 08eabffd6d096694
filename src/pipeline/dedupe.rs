//! Stateful, in-order deduplication for one stream: per-user repeats, cross-user copypasta and
//! question clusters (lines a host would answer once share a cluster id).
//!
//! A question's [`Signature`] is computed by the stateless stage: the concepts the `synonyms` and
//! `topics` dictionaries name in it (`size_m`, `stock`, `shipping`), its slot values (product
//! number 3番, colour, size) and its remaining content words. Two questions join when their
//! weighted overlap reaches [`DedupeConfig::cluster_threshold`] and no slot disagrees, so
//! `Mの在庫` and `Mの着丈` (different topic) or `黒M` and `白M` (different colour) stay apart.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHasher};
use serde::{Deserialize, Serialize};

/// Configuration of the dedupe stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DedupeConfig {
    /// How far back repeats and copypasta are looked for, in milliseconds.
    #[serde(default = "DedupeConfig::default_window")]
    pub window_ms: u64,
    /// The same user sending the same non-question text this many times in the window is a flood.
    #[serde(default = "DedupeConfig::default_repeat")]
    pub repeat_flood: u32,
    /// The same text (at least `copypasta_min_chars` long) from this many distinct users is copypasta.
    #[serde(default = "DedupeConfig::default_copypasta_users")]
    pub copypasta_users: u32,
    /// Shortest text considered for copypasta, in characters of the key view.
    #[serde(default = "DedupeConfig::default_copypasta_chars")]
    pub copypasta_min_chars: usize,
    /// Similarity above which two questions are one cluster (0–1).
    #[serde(default = "DedupeConfig::default_threshold")]
    pub cluster_threshold: f32,
    /// Clusters older than this (since their last question) are not joined any more, in ms.
    #[serde(default = "DedupeConfig::default_cluster_ttl")]
    pub cluster_ttl_ms: u64,
    /// Upper bound on clusters remembered per stream; the least recently asked are forgotten.
    #[serde(default = "DedupeConfig::default_max_clusters")]
    pub max_clusters: usize,
}

impl DedupeConfig {
    fn default_window() -> u64 {
        60_000
    }
    fn default_repeat() -> u32 {
        3
    }
    fn default_copypasta_users() -> u32 {
        3
    }
    fn default_copypasta_chars() -> usize {
        12
    }
    fn default_threshold() -> f32 {
        0.5
    }
    fn default_cluster_ttl() -> u64 {
        30 * 60_000
    }
    fn default_max_clusters() -> usize {
        4096
    }
}

impl Default for DedupeConfig {
    fn default() -> Self {
        Self {
            window_ms: Self::default_window(),
            repeat_flood: Self::default_repeat(),
            copypasta_users: Self::default_copypasta_users(),
            copypasta_min_chars: Self::default_copypasta_chars(),
            cluster_threshold: Self::default_threshold(),
            cluster_ttl_ms: Self::default_cluster_ttl(),
            max_clusters: Self::default_max_clusters(),
        }
    }
}

/// What a question is about, for clustering.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signature {
    /// Fine concept hashes (`synonyms` sections), sorted and unique.
    pub concepts: Vec<u64>,
    /// Coarse topic hashes (`topics` sections), sorted and unique.
    pub topics: Vec<u64>,
    /// Slot `(family, value)` hashes: values of one family exclude each other.
    pub slots: Vec<(u64, u64)>,
    /// Noun hashes not covered by a concept, sorted and unique: they name what is asked about.
    pub words: Vec<u64>,
    /// Other content words (verbs, adjectives): mostly phrasing, so they weigh little.
    pub phrasing: Vec<u64>,
}

impl Signature {
    pub fn clear(&mut self) {
        self.concepts.clear();
        self.topics.clear();
        self.slots.clear();
        self.words.clear();
        self.phrasing.clear();
    }

    /// Sorts and deduplicates after filling.
    pub fn finish(&mut self) {
        for v in [&mut self.concepts, &mut self.topics, &mut self.words, &mut self.phrasing] {
            v.sort_unstable();
            v.dedup();
        }
        self.slots.sort_unstable();
        self.slots.dedup();
    }

    pub fn is_empty(&self) -> bool {
        self.concepts.is_empty()
            && self.topics.is_empty()
            && self.slots.is_empty()
            && self.words.is_empty()
            && self.phrasing.is_empty()
    }

    /// Similarity in 0–1; 0 when a slot disagrees.
    pub fn similarity(&self, other: &Signature) -> f32 {
        let disagree = |a: &Signature, b: &Signature| {
            a.slots.iter().any(|&(fam, val)| {
                let mut theirs = b.slots.iter().filter(|s| s.0 == fam).peekable();
                theirs.peek().is_some() && !theirs.any(|s| s.1 == val)
            })
        };
        if disagree(self, other) || disagree(other, self) {
            return 0.0;
        }
        // The same fine concepts and slots is the same question however it is worded, unless
        // both also name other things and none of them alike (土曜日 vs 日曜日 指定).
        if !self.concepts.is_empty() && self.concepts == other.concepts && self.slots == other.slots {
            let disjoint_nouns =
                !self.words.is_empty() && !other.words.is_empty() && overlap(&self.words, &other.words).0 == 0;
            if !disjoint_nouns {
                return 1.0;
            }
        }
        // Both name what they ask, and nothing in common: different questions (price vs stock of 1番L).
        if !self.concepts.is_empty() && !other.concepts.is_empty() && overlap(&self.concepts, &other.concepts).0 == 0 {
            return 0.0;
        }
        // Otherwise a weighted overlap: fine concepts say what is asked, coarse topics only hint,
        // nouns name things, other words are mostly phrasing.
        const CONCEPT: f32 = 2.0;
        const TOPIC: f32 = 0.5;
        const SLOT: f32 = 2.0;
        const WORD: f32 = 1.5;
        const PHRASING: f32 = 0.3;
        let (ci, cu) = overlap(&self.concepts, &other.concepts);
        let (ti, tu) = overlap(&self.topics, &other.topics);
        let (wi, wu) = overlap(&self.words, &other.words);
        let (pi, pu) = overlap(&self.phrasing, &other.phrasing);
        let si = self.slots.iter().filter(|s| other.slots.contains(s)).count();
        let su = self.slots.len() + other.slots.len() - si;
        let inter =
            ci as f32 * CONCEPT + ti as f32 * TOPIC + wi as f32 * WORD + pi as f32 * PHRASING + si as f32 * SLOT;
        let union =
            cu as f32 * CONCEPT + tu as f32 * TOPIC + wu as f32 * WORD + pu as f32 * PHRASING + su as f32 * SLOT;
        if union == 0.0 { 0.0 } else { inter / union }
    }

    /// Keys for the inverted index: a cluster is a candidate when it shares any of them.
    fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.concepts
            .iter()
            .chain(&self.topics)
            .chain(&self.words)
            .copied()
            .chain(self.slots.iter().map(|s| s.0 ^ s.1.rotate_left(17)))
    }
}

/// Candidate clusters compared per question (those sharing the most keys).
const MAX_COMPARED: usize = 16;

/// Clusters remembered per index key: a common key (a topic every question shares) would
/// otherwise make each question compare against every cluster. The oldest are dropped.
const INDEX_CAP: usize = 16;

fn push_capped(ids: &mut Vec<u32>, id: u32) {
    if ids.len() >= INDEX_CAP {
        ids.remove(0);
    }
    ids.push(id);
}

fn overlap(a: &[u64], b: &[u64]) -> (usize, usize) {
    let (mut i, mut j, mut inter) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    (inter, a.len() + b.len() - inter)
}

/// Stable 64-bit hash of a string (FxHash: fast, not keyed, fine for in-process maps).
pub fn hash_str(s: &str) -> u64 {
    let mut h = FxHasher::default();
    s.hash(&mut h);
    h.finish()
}

/// What the stateless stage hands the dedupe stage about one message.
#[derive(Debug, Clone, Default)]
pub struct DedupeInput<'a> {
    pub user: Option<&'a str>,
    pub ts: u64,
    /// Hash of the key view.
    pub key_hash: u64,
    /// Characters in the key view.
    pub key_chars: usize,
    pub is_question: bool,
    pub is_purchase: bool,
    /// Present on questions.
    pub signature: Option<&'a Signature>,
}

/// The dedupe stage's findings for one message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DedupeOutcome {
    /// How many times this user sent this text within the window, this one included.
    pub repeats: u32,
    /// A flood by repetition (non-question repeated `repeat_flood` times).
    pub repeat_flood: bool,
    /// The same text came from `copypasta_users` distinct users in the window.
    pub copypasta: bool,
    /// Cluster of a question.
    pub cluster: Option<ClusterRef>,
}

/// A question's cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterRef {
    /// Per-stream cluster number (shown as `q<id>`).
    pub id: u32,
    /// Whether this question opened the cluster.
    pub opened: bool,
    /// Distinct askers so far (a repeat by the same user does not count twice).
    pub askers: u32,
}

/// Member signatures kept per cluster for matching (a new question is compared to each).
const MEMBERS: usize = 8;

struct Cluster {
    id: u32,
    /// Signatures of the first [`MEMBERS`] distinct wordings.
    members: Vec<Signature>,
    askers: Vec<u64>,
    last_ts: u64,
}

/// Per-stream dedupe state. One owner; not shared.
pub struct Dedupe {
    config: DedupeConfig,
    /// Recent texts per user: `(key hash, ts)`, newest last.
    recent: FxHashMap<u64, VecDeque<(u64, u64)>>,
    /// Recent distinct users per text: `key hash → [(user hash, ts)]`.
    texts: FxHashMap<u64, Vec<(u64, u64)>>,
    clusters: FxHashMap<u32, Cluster>,
    /// Inverted index: signature key → clusters containing it.
    index: FxHashMap<u64, Vec<u32>>,
    next_id: u32,
    last_purge: u64,
    candidates: Vec<u32>,
    /// Candidates with the number of keys they share, best first.
    ranked: Vec<(u32, u32)>,
}

impl Dedupe {
    pub fn new(config: &DedupeConfig) -> Self {
        Self {
            config: config.clone(),
            recent: FxHashMap::default(),
            texts: FxHashMap::default(),
            clusters: FxHashMap::default(),
            index: FxHashMap::default(),
            next_id: 1,
            last_purge: 0,
            candidates: Vec::new(),
            ranked: Vec::new(),
        }
    }

    /// Number of clusters currently remembered.
    pub fn cluster_count(&self) -> usize {
        self.clusters.len()
    }

    /// Processes one message, in stream order.
    pub fn process(&mut self, input: &DedupeInput<'_>) -> DedupeOutcome {
        let ts = input.ts;
        if ts >= self.last_purge + self.config.window_ms {
            self.purge(ts);
        }
        let mut out = DedupeOutcome::default();
        let window = self.config.window_ms;
        let user = input.user.map(hash_str);
        if let Some(u) = user {
            let recent = self.recent.entry(u).or_default();
            while recent.front().is_some_and(|&(_, t)| t + window < ts) || recent.len() >= 16 {
                recent.pop_front();
            }
            out.repeats = 1 + recent.iter().filter(|&&(k, _)| k == input.key_hash).count() as u32;
            recent.push_back((input.key_hash, ts));
            out.repeat_flood = !input.is_question && !input.is_purchase && out.repeats >= self.config.repeat_flood;
            if input.key_chars >= self.config.copypasta_min_chars {
                let users = self.texts.entry(input.key_hash).or_default();
                users.retain(|&(_, t)| t + window >= ts);
                if !users.iter().any(|&(x, _)| x == u) {
                    users.push((u, ts));
                }
                out.copypasta = users.len() as u32 >= self.config.copypasta_users;
            }
        }
        if let Some(sig) = input.signature {
            out.cluster = Some(self.cluster(sig, user.unwrap_or(input.key_hash ^ ts), ts));
        }
        out
    }

    fn cluster(&mut self, sig: &Signature, asker: u64, ts: u64) -> ClusterRef {
        self.candidates.clear();
        for key in sig.keys() {
            if let Some(ids) = self.index.get(&key) {
                self.candidates.extend(ids.iter().copied());
            }
        }
        // Rank candidates by how many keys they share and compare only the best few: a cluster
        // sharing one common topic with this question is rarely the one it belongs to.
        self.candidates.sort_unstable();
        self.ranked.clear();
        for run in self.candidates.chunk_by(|a, b| a == b) {
            self.ranked.push((run.len() as u32, run[0]));
        }
        self.ranked.sort_unstable_by(|a, b| b.cmp(a));
        self.ranked.truncate(MAX_COMPARED);
        let ttl = self.config.cluster_ttl_ms;
        let mut best: Option<(f32, u32)> = None;
        for (_, id) in &self.ranked {
            let Some(c) = self.clusters.get(id) else { continue };
            if c.last_ts + ttl < ts {
                continue;
            }
            let s = c.members.iter().map(|m| m.similarity(sig)).fold(0.0, f32::max);
            if s > self.config.cluster_threshold && best.is_none_or(|(b, bid)| s > b || (s == b && *id > bid)) {
                best = Some((s, *id));
            }
        }
        if let Some((_, id)) = best
            && let Some(c) = self.clusters.get_mut(&id)
        {
            if !c.askers.contains(&asker) {
                c.askers.push(asker);
            }
            c.last_ts = ts;
            let askers = c.askers.len() as u32;
            if c.members.len() < MEMBERS && !c.members.contains(sig) {
                c.members.push(sig.clone());
                for key in sig.keys() {
                    let ids = self.index.entry(key).or_default();
                    if !ids.contains(&id) {
                        push_capped(ids, id);
                    }
                }
            }
            return ClusterRef { id, opened: false, askers };
        }
        if self.clusters.len() >= self.config.max_clusters {
            self.evict_oldest();
        }
        let id = self.next_id;
        self.next_id += 1;
        for key in sig.keys() {
            push_capped(self.index.entry(key).or_default(), id);
        }
        self.clusters.insert(id, Cluster { id, members: vec![sig.clone()], askers: vec![asker], last_ts: ts });
        ClusterRef { id, opened: true, askers: 1 }
    }

    fn evict_oldest(&mut self) {
        if let Some(oldest) = self.clusters.values().min_by_key(|c| (c.last_ts, c.id)).map(|c| c.id) {
            self.remove_cluster(oldest);
        }
    }

    fn remove_cluster(&mut self, id: u32) {
        if let Some(c) = self.clusters.remove(&id) {
            for key in c.members.iter().flat_map(|m| m.keys()) {
                if let Some(ids) = self.index.get_mut(&key) {
                    ids.retain(|x| *x != id);
                    if ids.is_empty() {
                        self.index.remove(&key);
                    }
                }
            }
        }
    }

    /// Forgets what fell out of the windows, so memory stays bounded by recent traffic.
    fn purge(&mut self, ts: u64) {
        self.last_purge = ts;
        let window = self.config.window_ms;
        self.recent.retain(|_, r| r.back().is_some_and(|&(_, t)| t + window >= ts));
        self.texts.retain(|_, users| users.iter().any(|&(_, t)| t + window >= ts));
        let ttl = self.config.cluster_ttl_ms;
        let stale: Vec<u32> = self.clusters.values().filter(|c| c.last_ts + ttl < ts).map(|c| c.id).collect();
        for id in stale {
            self.remove_cluster(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(concepts: &[&str], slots: &[(&str, &str)], words: &[&str]) -> Signature {
        let mut s = Signature {
            concepts: concepts.iter().map(|c| hash_str(c)).collect(),
            topics: Vec::new(),
            phrasing: Vec::new(),
            slots: slots.iter().map(|(f, v)| (hash_str(f), hash_str(v))).collect(),
            words: words.iter().map(|w| hash_str(w)).collect(),
        };
        s.finish();
        s
    }

    #[test]
    fn slot_disagreement_separates() {
        let black = sig(&["stock"], &[("color", "black"), ("size", "m")], &[]);
        let white = sig(&["stock"], &[("color", "white"), ("size", "m")], &[]);
        assert_eq!(black.similarity(&white), 0.0);
        assert!(black.similarity(&black.clone()) > 0.99);
    }

    #[test]
    fn repeats_by_one_user_flood_but_questions_do_not() {
        let mut d = Dedupe::new(&DedupeConfig::default());
        let input = DedupeInput { user: Some("u1"), ts: 0, key_hash: 7, key_chars: 4, ..Default::default() };
        let outs: Vec<_> = (0..3).map(|_| d.process(&input)).collect();
        assert_eq!(outs.iter().map(|o| o.repeats).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(outs[2].repeat_flood && !outs[1].repeat_flood);
        let q = DedupeInput { is_question: true, key_hash: 8, ..input };
        assert!((0..4).all(|_| !d.process(&q).repeat_flood));
    }

    #[test]
    fn copypasta_needs_distinct_users() {
        let mut d = Dedupe::new(&DedupeConfig::default());
        let mut last = DedupeOutcome::default();
        for (i, user) in ["a", "b", "c"].iter().enumerate() {
            last = d.process(&DedupeInput {
                user: Some(user),
                ts: i as u64,
                key_hash: 99,
                key_chars: 20,
                ..Default::default()
            });
        }
        assert!(last.copypasta);
    }

    #[test]
    fn same_asker_counts_once_in_a_cluster() {
        let mut d = Dedupe::new(&DedupeConfig::default());
        let s = sig(&["shipping"], &[], &["送料"]);
        let a =
            d.process(&DedupeInput { user: Some("a"), signature: Some(&s), is_question: true, ..Default::default() });
        let b =
            d.process(&DedupeInput { user: Some("a"), signature: Some(&s), is_question: true, ..Default::default() });
        let c =
            d.process(&DedupeInput { user: Some("b"), signature: Some(&s), is_question: true, ..Default::default() });
        assert!(a.cluster.unwrap().opened);
        assert_eq!(b.cluster.unwrap().askers, 1);
        assert_eq!(c.cluster.unwrap().askers, 2);
        assert_eq!(a.cluster.unwrap().id, c.cluster.unwrap().id);
    }
}
