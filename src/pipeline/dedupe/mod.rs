//! Stateful, in-order deduplication for one stream: per-user repeats, cross-user copypasta and
//! question clusters (lines a host would answer once share a cluster id).
//!
//! A question's [`Frame`] is computed by the stateless stage (what it asks about, its exclusive
//! values, the kind of ask: see [`super::frame`]) and its scope (a product or the shop) by the
//! stream's state. A question joins the cluster of its scope whose closest member the identity
//! model ([`super::identity`]) rates as the same question, so `Mの在庫` and `Mの着丈` (different
//! concepts), `黒M` and `白M` (different colour) and the price of two products stay apart.
//!
//! Memory per stream is bounded by counts as well as times: the repeat and copypasta window
//! holds at most [`DedupeConfig::window_messages`] messages, a cluster at most [`MEMBERS`]
//! wordings packed into one allocation, the stream at most [`DedupeConfig::max_clusters`]
//! clusters. What the counts cut short is reported by [`Dedupe::take_evictions`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;

use rustc_hash::{FxHashMap, FxHasher};

use super::frame::{Frame, FrameView};
use super::identity::IdentityModel;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::sync::Arc;

mod askers;
mod members;
mod state;
use askers::Askers;
use members::Members;
pub use state::DedupeState;

/// Configuration of the dedupe stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DedupeConfig {
    /// How far back repeats and copypasta are looked for, in milliseconds.
    #[serde(default = "DedupeConfig::default_window")]
    pub window_ms: u64,
    /// How far back repeats and copypasta are looked for, in messages of the stream: the window
    /// is the last `window_ms` or the last `window_messages` messages, whichever is shorter.
    /// Bounds a busy stream's memory; messages leaving the window early are counted in
    /// `kotae_dedupe_evicted_total{what="window"}`.
    #[serde(default = "DedupeConfig::default_window_messages")]
    pub window_messages: NonZeroUsize,
    /// The same user sending the same non-question text this many times in the window is a flood.
    #[serde(default = "DedupeConfig::default_repeat")]
    pub repeat_flood: u32,
    /// The same text (at least `copypasta_min_chars` long) from this many distinct users is copypasta.
    #[serde(default = "DedupeConfig::default_copypasta_users")]
    pub copypasta_users: u32,
    /// Shortest text considered for copypasta, in characters of the key view.
    #[serde(default = "DedupeConfig::default_copypasta_chars")]
    pub copypasta_min_chars: usize,
    /// Probability above which the identity model's two questions are one cluster (0–1);
    /// unset, the threshold in the model file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_threshold: Option<f32>,
    /// Clusters older than this (since their last question) are not joined any more, in ms.
    #[serde(default = "DedupeConfig::default_cluster_ttl")]
    pub cluster_ttl_ms: u64,
    /// Upper bound on clusters remembered per stream; the least recently asked are forgotten
    /// (counted in `kotae_dedupe_evicted_total{what="cluster"}`).
    #[serde(default = "DedupeConfig::default_max_clusters")]
    pub max_clusters: usize,
}

impl DedupeConfig {
    fn default_window() -> u64 {
        60_000
    }
    fn default_window_messages() -> NonZeroUsize {
        NonZeroUsize::new(1024).unwrap_or(NonZeroUsize::MIN)
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
            window_messages: Self::default_window_messages(),
            repeat_flood: Self::default_repeat(),
            copypasta_users: Self::default_copypasta_users(),
            copypasta_min_chars: Self::default_copypasta_chars(),
            cluster_threshold: None,
            cluster_ttl_ms: Self::default_cluster_ttl(),
            max_clusters: Self::default_max_clusters(),
        }
    }
}

/// Puts cluster `id` first among its scope's recent clusters.
fn touch(recent: &mut FxHashMap<u64, SmallVec<[u32; RECENT]>>, scope: u64, id: u32) {
    let list = recent.entry(scope).or_default();
    list.retain(|r| *r != id);
    if list.len() == RECENT {
        list.pop();
    }
    list.insert(0, id);
}

/// Index keys of a frame: what it names ([`named_keys`]) and what it asks about, the
/// attribute model's reading and its runner-up ([`attribute_key`]).
fn keys<'a>(f: FrameView<'a>) -> impl Iterator<Item = u64> + 'a {
    named_keys(f).chain([f.attribute.id, f.attribute.second].into_iter().filter(|&id| id != 0).map(attribute_key))
}

/// The keys of what a frame names: a cluster is a candidate when it shares any of them.
fn named_keys<'a>(f: FrameView<'a>) -> impl Iterator<Item = u64> + 'a {
    f.concepts
        .iter()
        .chain(f.weak)
        .chain(f.topics)
        .chain(f.nouns)
        .chain(f.grams)
        .copied()
        .chain(f.slots.iter().map(|s| s[0] ^ s[1].rotate_left(17)))
}

/// The index key of an attribute class, apart from the hashes of words and concepts.
fn attribute_key(id: u16) -> u64 {
    const SEED: u64 = 0x6174_7472_6962_7574;
    SEED ^ u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// How sure the attribute model must be of what a question asks about for that alone to find
/// its candidates.
const ATTRIBUTE_SURE: f32 = 0.5;

/// The key a question looks up when it shares nothing it names with any cluster: what it asks
/// about, if the attribute model is sure of it. ダウンの洗い方 names only its product, which
/// the scope takes away, and still asks what 洗える？ asked (a cluster whose wordings were read
/// so, first or second, comes up). Looked up always, or for unsure readings (romaji, words the
/// model never saw), it sets questions beside clusters that share nothing with them but the
/// kind of question, and the wrong merges of the cluster sets nearly double.
fn fallback_key(f: FrameView<'_>) -> Option<u64> {
    (f.attribute.id != 0 && f.attribute.p >= ATTRIBUTE_SURE).then(|| attribute_key(f.attribute.id))
}

/// Candidate clusters compared per question (those sharing the most keys).
const MAX_COMPARED: usize = 8;

/// The most recently asked clusters of a scope that a question looks at whatever it names:
/// one whose first wording reads like it ([`READS_ALIKE`]) is compared too. Paraphrases that
/// share no word (汁もれしませんか / カレー入れたら漏れる？) find each other so, while the
/// question is live.
const RECENT: usize = 8;

/// The cosine of two questions' learned vectors ([`super::similarity`]) above which a recent
/// cluster is compared though it shares no key with the question.
const READS_ALIKE: f32 = 0.5;

/// Clusters remembered per index key: a common key (a topic every question shares) would
/// otherwise make each question compare against every cluster. The oldest are dropped.
const INDEX_CAP: usize = 16;

/// Cluster ids of one index key; most keys name one to four clusters, kept inline.
type Ids = SmallVec<[u32; 4]>;

fn push_capped(ids: &mut Ids, id: u32) {
    if ids.len() >= INDEX_CAP {
        ids.remove(0);
    }
    ids.push(id);
}

/// An index key within a scope: clusters of other scopes never come up as candidates.
fn scoped(key: u64, scope: u64) -> u64 {
    key ^ scope.rotate_left(29)
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
    /// Question-identity scope (a product, the shop): clusters never join across scopes.
    pub scope: u64,
    /// The sender; without one, no repeat or copypasta is counted for the message.
    pub user: Option<&'a str>,
    /// When it was sent, Unix milliseconds; the window is measured in this clock.
    pub ts: u64,
    /// Hash of the key view.
    pub key_hash: u64,
    /// Characters in the key view.
    pub key_chars: usize,
    /// Labelled question: never a repeat flood (viewers ask again when unanswered).
    pub is_question: bool,
    /// Labelled purchase intent: never a repeat flood (a viewer may order twice).
    pub is_purchase: bool,
    /// Present on questions.
    pub frame: Option<&'a Frame>,
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

/// What the count bounds made a stream forget before its time, since last taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evictions {
    /// Messages that left the repeat/copypasta window by `window_messages` within `window_ms`.
    pub window: u64,
    /// Clusters forgotten by `max_clusters` (a question joining one later opens a new cluster).
    pub clusters: u64,
}

/// Member signatures kept per cluster for matching (a new question is compared to each).
pub const MEMBERS: usize = 8;

struct Cluster {
    /// The scope all its questions share.
    scope: u64,
    /// Frames of the first [`MEMBERS`] distinct wordings.
    members: Members,
    askers: Askers,
    last_ts: u64,
}

/// A user's sighting of a text in the window: the user's hash and the message's number in the
/// stream (low 32 bits; sightings never live 2³² messages).
type Seen = (u64, u32);

/// Most texts per user looked at for repeats (the user's last ones).
const USER_RECENT: usize = 16;

/// One message in the window's log.
#[derive(Debug, Clone, Copy)]
struct Logged {
    ts: u64,
    key: u64,
    /// Number of the same user's previous message (meaningless for the user's oldest).
    prev: u32,
}

/// A user's recent texts: the last `len` messages of the chain that ends at `last` (the
/// messages a per-user queue of at most [`USER_RECENT`] would hold, without the queue).
#[derive(Debug, Clone, Copy)]
struct UserChain {
    last: u32,
    len: u32,
}

/// The window: message numbers and the last `window_messages` messages, which every sighting
/// refers to by number (4 bytes, not a time and a key).
struct Window {
    ms: u64,
    /// Number of the message being processed.
    seq: u64,
    /// The last `window_messages` messages, oldest first.
    log: VecDeque<Logged>,
    cap: usize,
}

impl Window {
    /// Message `seen`, while it is among the last `window_messages` before the current one.
    fn get(&self, seen: u32) -> Option<&Logged> {
        let age = (self.seq as u32).wrapping_sub(seen) as usize;
        if age == 0 {
            return None;
        }
        self.log.len().checked_sub(age).and_then(|i| self.log.get(i))
    }

    /// Whether message `seen` is still among the last `window_messages` messages.
    fn counted(&self, seen: u32) -> bool {
        self.get(seen).is_some()
    }

    /// Whether message `seen` is within the window of a message at `ts`.
    fn contains(&self, seen: u32, ts: u64) -> bool {
        self.get(seen).is_some_and(|m| m.ts.saturating_add(self.ms) >= ts)
    }
}

/// Per-stream dedupe state. One owner; not shared.
pub struct Dedupe {
    config: DedupeConfig,
    window: Window,
    /// Recent texts per user, as chains through the window's log.
    users: FxHashMap<u64, UserChain>,
    /// Recent distinct users per text: `key hash → [(user hash, number of their first send)]`.
    texts: FxHashMap<u64, SmallVec<[Seen; 2]>>,
    clusters: FxHashMap<u32, Cluster>,
    /// Inverted index: frame key (within its scope) → clusters containing it.
    index: FxHashMap<u64, Ids>,
    /// Whether two frames are one question.
    identity: Arc<IdentityModel>,
    /// Probability above which they are.
    threshold: f32,
    next_id: u32,
    last_purge: u64,
    /// Message number of the last purge of what left the window by count.
    last_count_purge: u64,
    evictions: Evictions,
    candidates: Vec<u32>,
    /// Candidates with the number of keys they share, best first, then the recent clusters
    /// that read alike (0 keys).
    ranked: Vec<(u32, u32)>,
    /// Per scope, its [`RECENT`] most recently asked clusters, the latest first.
    recent: FxHashMap<u64, SmallVec<[u32; RECENT]>>,
    /// The clusters by when they were last asked, the least recent first, for evicting at
    /// `max_clusters`: empty until the stream first reaches it, then every ask adds an entry
    /// and entries a later ask or a removal outdated are skipped when they come up.
    by_age: BinaryHeap<Reverse<(u64, u32)>>,
}

/// How much a stream's repeat/copypasta window holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSize {
    /// Messages in the log (at most `window_messages`).
    pub messages: usize,
    /// Users with recent texts.
    pub users: usize,
    /// Texts with recent senders.
    pub texts: usize,
    /// (user, text) sightings behind `texts`.
    pub sightings: usize,
}

impl Dedupe {
    /// A stage for one stream with an empty window; `identity` decides which questions share a
    /// cluster (its threshold unless `cluster_threshold` is set).
    pub fn new(config: &DedupeConfig, identity: Arc<IdentityModel>) -> Self {
        let cap = config.window_messages.get();
        Self {
            threshold: config.cluster_threshold.unwrap_or(identity.threshold),
            identity,
            config: config.clone(),
            // Exactly the bound (plus the message being added): a doubling deque would reserve
            // up to twice that per stream. Larger bounds grow as messages come.
            window: Window { ms: config.window_ms, seq: 0, log: VecDeque::with_capacity(cap.min(1 << 16) + 1), cap },
            users: FxHashMap::default(),
            texts: FxHashMap::default(),
            clusters: FxHashMap::default(),
            index: FxHashMap::default(),
            next_id: 1,
            last_purge: 0,
            last_count_purge: 0,
            evictions: Evictions::default(),
            candidates: Vec::new(),
            ranked: Vec::new(),
            recent: FxHashMap::default(),
            by_age: BinaryHeap::new(),
        }
    }

    /// Number of clusters currently remembered.
    pub fn cluster_count(&self) -> usize {
        self.clusters.len()
    }

    /// What the repeat/copypasta window holds now.
    pub fn window_size(&self) -> WindowSize {
        WindowSize {
            messages: self.window.log.len(),
            users: self.users.len(),
            texts: self.texts.len(),
            sightings: self.texts.values().map(|u| u.len()).sum(),
        }
    }

    /// What the count bounds forgot early since the last call.
    pub fn take_evictions(&mut self) -> Evictions {
        std::mem::take(&mut self.evictions)
    }

    /// Processes one message, in stream order.
    pub fn process(&mut self, input: &DedupeInput<'_>) -> DedupeOutcome {
        let ts = input.ts;
        if ts >= self.last_purge + self.config.window_ms {
            self.purge(ts);
        } else if self.window.seq >= self.last_count_purge + (self.window.cap as u64 / 4).max(1) {
            self.purge_counted();
        }
        let mut out = DedupeOutcome::default();
        let seq = self.window.seq as u32;
        let user = input.user.map(hash_str);
        let mut prev = seq;
        if let Some(u) = user {
            let window = &self.window;
            let chain = self.users.entry(u).or_insert(UserChain { last: seq, len: 0 });
            // The user's recent messages, newest first, as far as they are still logged.
            let (mut nums, mut keys) = ([0u32; USER_RECENT], [0u64; USER_RECENT]);
            let mut n = 0;
            let mut at = chain.last;
            while n < (chain.len as usize).min(USER_RECENT) {
                let Some(m) = window.get(at) else { break };
                (nums[n], keys[n]) = (at, m.key);
                n += 1;
                at = m.prev;
            }
            // Forget from the oldest while it is out of the window, or to make room for this one.
            while n > 0 && (!window.contains(nums[n - 1], ts) || n >= USER_RECENT) {
                n -= 1;
            }
            out.repeats = 1 + keys[..n].iter().filter(|&&k| k == input.key_hash).count() as u32;
            prev = chain.last;
            *chain = UserChain { last: seq, len: n as u32 + 1 };
            out.repeat_flood = !input.is_question && !input.is_purchase && out.repeats >= self.config.repeat_flood;
            if input.key_chars >= self.config.copypasta_min_chars {
                let users = self.texts.entry(input.key_hash).or_default();
                users.retain(|&mut (_, n)| window.contains(n, ts));
                if !users.iter().any(|&(x, _)| x == u) {
                    users.push((u, seq));
                }
                out.copypasta = users.len() as u32 >= self.config.copypasta_users;
            }
        }
        if let Some(frame) = input.frame {
            out.cluster = Some(self.cluster(input.scope, frame.view(), user.unwrap_or(input.key_hash ^ ts), ts));
        }
        self.window.log.push_back(Logged { ts, key: input.key_hash, prev });
        if self.window.log.len() > self.window.cap
            && let Some(oldest) = self.window.log.pop_front()
            && oldest.ts.saturating_add(self.window.ms) >= ts
        {
            self.evictions.window += 1;
        }
        self.window.seq += 1;
        out
    }

    fn cluster(&mut self, scope: u64, sig: FrameView<'_>, asker: u64, ts: u64) -> ClusterRef {
        self.candidates.clear();
        for key in named_keys(sig).map(|k| scoped(k, scope)) {
            if let Some(ids) = self.index.get(&key) {
                self.candidates.extend(ids.iter().copied());
            }
        }
        if self.candidates.is_empty()
            && let Some(ids) = fallback_key(sig).and_then(|k| self.index.get(&scoped(k, scope)))
        {
            self.candidates.extend(ids.iter().copied());
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
        // Then the scope's recent clusters whose first wording reads like it, if not among
        // those already; the pair model weighs both lists together.
        let mut alike: SmallVec<[(u32, u32); RECENT]> = SmallVec::new();
        if !sig.vector.is_empty()
            && let Some(recent) = self.recent.get(&scope)
        {
            let ranked = &self.ranked;
            alike.extend(
                recent
                    .iter()
                    .filter(|&&id| !ranked.iter().any(|&(_, r)| r == id))
                    .filter(|&id| {
                        self.clusters
                            .get(id)
                            .and_then(|c| c.members.iter().next())
                            .is_some_and(|first| super::similarity::cosine(first.vector, sig.vector) >= READS_ALIKE)
                    })
                    .map(|&id| (0, id)),
            );
        }
        self.ranked.extend(alike);
        let best = self.best_of(&self.ranked, scope, sig, ts);
        if let Some((_, id)) = best
            && let Some(c) = self.clusters.get_mut(&id)
        {
            c.askers.insert(asker);
            c.last_ts = ts;
            touch(&mut self.recent, scope, id);
            let askers = c.askers.len() as u32;
            if c.members.iter().count() < MEMBERS && !c.members.iter().any(|m| m == sig) {
                c.members.push(sig);
                for key in keys(sig).map(|k| scoped(k, scope)) {
                    let ids = self.index.entry(key).or_default();
                    if !ids.contains(&id) {
                        push_capped(ids, id);
                    }
                }
            }
            self.aged(ts, id);
            return ClusterRef { id, opened: false, askers };
        }
        if self.clusters.len() >= self.config.max_clusters {
            self.evict_oldest();
        }
        let id = self.next_id;
        self.next_id += 1;
        for key in keys(sig).map(|k| scoped(k, scope)) {
            push_capped(self.index.entry(key).or_default(), id);
        }
        let mut members = Members::default();
        members.push(sig);
        self.clusters.insert(id, Cluster { scope, members, askers: Askers::one(asker), last_ts: ts });
        self.aged(ts, id);
        touch(&mut self.recent, scope, id);
        ClusterRef { id, opened: true, askers: 1 }
    }

    /// The candidate (`(keys shared, id)`) whose closest wording is likeliest the same question
    /// as `sig`, above the threshold, with that probability.
    fn best_of(&self, candidates: &[(u32, u32)], scope: u64, sig: FrameView<'_>, ts: u64) -> Option<(f32, u32)> {
        let ttl = self.config.cluster_ttl_ms;
        // Every candidate is looked up, and its first wording read, before any is compared:
        // the clusters and their wordings lie all over the heap, and so their cache misses
        // overlap instead of coming one after another.
        let live: SmallVec<[(u32, &Cluster); MAX_COMPARED + RECENT]> = candidates
            .iter()
            .filter_map(|(_, id)| self.clusters.get(id).map(|c| (*id, c)))
            .filter(|(_, c)| c.last_ts + ttl >= ts && c.scope == scope)
            .collect();
        std::hint::black_box(live.iter().fold(0u64, |x, (_, c)| x ^ c.members.words().first().copied().unwrap_or(0)));
        let mut best: Option<(f32, u32)> = None;
        for &(id, c) in &live {
            // Below the best so far a wording's exact probability does not matter.
            let floor = super::identity::log_odds(best.map_or(self.threshold, |(b, _)| b.max(self.threshold)));
            // A question joins a cluster only if it names no value that one of its wordings
            // contradicts: through a wording without values (在庫ありますか), Mの黒 would
            // otherwise chain onto Lのベージュ. Otherwise its closest wording decides. One pass
            // over the packed wordings does both.
            let mut s = 0.0f32;
            let mut conflict = false;
            for m in c.members.iter() {
                if super::identity::slots_conflict(m, sig) {
                    conflict = true;
                    break;
                }
                s = s.max(self.identity.probability_over(m, sig, floor));
            }
            if conflict {
                continue;
            }
            if s > self.threshold && best.is_none_or(|(b, bid)| s > b || (s == b && id > bid)) {
                best = Some((s, id));
            }
        }
        best
    }

    /// Notes that cluster `id` was asked at `ts`, once the stream keeps the clusters' order.
    /// Entries outdated by later asks are dropped when they outnumber the clusters.
    fn aged(&mut self, ts: u64, id: u32) {
        if self.by_age.is_empty() {
            return;
        }
        self.by_age.push(Reverse((ts, id)));
        if self.by_age.len() > 2 * self.clusters.len() + 64 {
            self.rebuild_ages();
        }
    }

    /// Puts every cluster in [`Dedupe::by_age`] once, as last asked, and nothing else.
    fn rebuild_ages(&mut self) {
        self.by_age = self.clusters.iter().map(|(id, c)| Reverse((c.last_ts, *id))).collect();
    }

    /// Forgets the least recently asked cluster (of two asked at the same time, the older).
    /// A scan of every cluster per new cluster would make a stream at its bound pay for all it
    /// remembers on each new question, so the order is kept in [`Dedupe::by_age`].
    fn evict_oldest(&mut self) {
        if self.by_age.is_empty() {
            self.rebuild_ages();
        }
        while let Some(Reverse((ts, id))) = self.by_age.pop() {
            if self.clusters.get(&id).is_some_and(|c| c.last_ts == ts) {
                self.remove_cluster(id);
                self.evictions.clusters += 1;
                return;
            }
        }
    }

    fn remove_cluster(&mut self, id: u32) {
        if let Some(c) = self.clusters.remove(&id) {
            if let Some(recent) = self.recent.get_mut(&c.scope) {
                recent.retain(|r| *r != id);
                if recent.is_empty() {
                    self.recent.remove(&c.scope);
                }
            }
            for key in c.members.iter().flat_map(keys).map(|k| scoped(k, c.scope)) {
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
        self.purge_counted();
        let window = &self.window;
        self.users.retain(|_, c| window.contains(c.last, ts));
        self.texts.retain(|_, users| users.iter().any(|&(_, n)| window.contains(n, ts)));
        let ttl = self.config.cluster_ttl_ms;
        let stale: Vec<u32> = self.clusters.iter().filter(|(_, c)| c.last_ts + ttl < ts).map(|(id, _)| *id).collect();
        for id in stale {
            self.remove_cluster(id);
        }
    }

    /// Forgets users and sightings older than the last `window_messages` messages. They would
    /// be skipped anyway; dropping them keeps a fast stream's memory to its last messages. Only
    /// the count decides here (times are checked against each message's own time).
    fn purge_counted(&mut self) {
        self.last_count_purge = self.window.seq;
        let window = &self.window;
        self.users.retain(|_, c| window.counted(c.last));
        self.texts.retain(|_, users| {
            users.retain(|&mut (_, n)| window.counted(n));
            !users.is_empty()
        });
    }
}

#[cfg(test)]
mod tests;
