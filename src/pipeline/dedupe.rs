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

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;

use rustc_hash::{FxHashMap, FxHasher};

use super::frame::{Ask, Frame, FrameView};
use super::identity::IdentityModel;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::sync::Arc;

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

/// Index keys of a frame: a cluster is a candidate when it shares any of them.
fn keys<'a>(f: FrameView<'a>) -> impl Iterator<Item = u64> + 'a {
    f.concepts
        .iter()
        .chain(f.weak)
        .chain(f.topics)
        .chain(f.nouns)
        .chain(f.grams)
        .copied()
        .chain(f.slots.iter().map(|s| s[0] ^ s[1].rotate_left(17)))
}

/// Candidate clusters compared per question (those sharing the most keys).
const MAX_COMPARED: usize = 16;

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
    pub user: Option<&'a str>,
    pub ts: u64,
    /// Hash of the key view.
    pub key_hash: u64,
    /// Characters in the key view.
    pub key_chars: usize,
    pub is_question: bool,
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

/// A cluster's member frames in one allocation (a cluster's wordings are added rarely and read
/// on every candidate comparison). Per member: one header word holding the seven part lengths
/// (eight bits each: a part holds at most 255 entries) and the ask, then the parts, a slot
/// taking two words.
#[derive(Debug, Default)]
struct Members(Box<[u64]>);

/// Most entries one part of a packed member keeps.
const PART_MAX: usize = 255;

impl Members {
    fn push(&mut self, f: FrameView<'_>) {
        let cut = |p: &[u64]| p.len().min(PART_MAX);
        let slots = f.slots.len().min(PART_MAX);
        let parts = [f.concepts, f.weak, f.topics, f.nouns, f.preds, f.grams];
        let size = 1 + parts.iter().map(|p| cut(p)).sum::<usize>() + 2 * slots;
        let mut v = Vec::with_capacity(self.0.len() + size);
        v.extend_from_slice(&self.0);
        let mut header = f.ask.code() << 56;
        for (i, p) in parts.iter().enumerate() {
            header |= (cut(p) as u64) << (8 * i);
        }
        header |= (slots as u64) << 48;
        v.push(header);
        for p in parts {
            v.extend_from_slice(&p[..cut(p)]);
        }
        v.extend_from_slice(f.slots[..slots].as_flattened());
        self.0 = v.into_boxed_slice();
    }

    fn iter(&self) -> MemberIter<'_> {
        MemberIter(&self.0)
    }
}

struct MemberIter<'a>(&'a [u64]);

impl<'a> Iterator for MemberIter<'a> {
    type Item = FrameView<'a>;

    fn next(&mut self) -> Option<FrameView<'a>> {
        let (&header, mut rest) = self.0.split_first()?;
        let mut parts: [&[u64]; 6] = [&[]; 6];
        for (i, part) in parts.iter_mut().enumerate() {
            let (p, r) = rest.split_at_checked(((header >> (8 * i)) & 0xff) as usize)?;
            *part = p;
            rest = r;
        }
        let (slots, rest) = rest.split_at_checked(2 * ((header >> 48) & 0xff) as usize)?;
        self.0 = rest;
        let [concepts, weak, topics, nouns, preds, grams] = parts;
        Some(FrameView {
            concepts,
            weak,
            topics,
            slots: slots.as_chunks::<2>().0,
            nouns,
            preds,
            grams,
            ask: Ask::from_code(header >> 56),
        })
    }
}

struct Cluster {
    /// The scope all its questions share.
    scope: u64,
    /// Frames of the first [`MEMBERS`] distinct wordings.
    members: Members,
    askers: Vec<u64>,
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
    /// Candidates with the number of keys they share, best first.
    ranked: Vec<(u32, u32)>,
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
        for key in keys(sig).map(|k| scoped(k, scope)) {
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
            if c.last_ts + ttl < ts || c.scope != scope {
                continue;
            }
            // A question joins a cluster only if it names no value that one of its wordings
            // contradicts: through a wording without values (在庫ありますか), Mの黒 would
            // otherwise chain onto Lのベージュ.
            if c.members.iter().any(|m| super::identity::slots_conflict(m, sig)) {
                continue;
            }
            let s = c.members.iter().map(|m| self.identity.probability(m, sig)).fold(0.0, f32::max);
            if s > self.threshold && best.is_none_or(|(b, bid)| s > b || (s == b && *id > bid)) {
                best = Some((s, *id));
            }
        }
        if let Some((_, id)) = best
            && let Some(c) = self.clusters.get_mut(&id)
        {
            if !c.askers.contains(&asker) {
                // Grow by a quarter, not double: thousands of clusters each keep their askers.
                if c.askers.len() == c.askers.capacity() {
                    c.askers.reserve_exact((c.askers.len() / 4).max(2));
                }
                c.askers.push(asker);
            }
            c.last_ts = ts;
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
        self.clusters.insert(id, Cluster { scope, members, askers: vec![asker], last_ts: ts });
        ClusterRef { id, opened: true, askers: 1 }
    }

    fn evict_oldest(&mut self) {
        if let Some(oldest) = self.clusters.iter().min_by_key(|(id, c)| (c.last_ts, **id)).map(|(id, _)| *id) {
            self.remove_cluster(oldest);
            self.evictions.clusters += 1;
        }
    }

    fn remove_cluster(&mut self, id: u32) {
        if let Some(c) = self.clusters.remove(&id) {
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
mod tests {
    use super::*;

    fn sig(concepts: &[&str], slots: &[(&str, &str)], words: &[&str]) -> Frame {
        let mut s = Frame {
            concepts: concepts.iter().map(|c| hash_str(c)).collect(),
            slots: slots.iter().map(|(f, v)| [hash_str(f), hash_str(v)]).collect(),
            nouns: words.iter().map(|w| hash_str(w)).collect(),
            ..Frame::default()
        };
        super::super::frame::finish(&mut s);
        s
    }

    fn dedupe(config: &DedupeConfig) -> Dedupe {
        Dedupe::new(config, Arc::new(IdentityModel::default()))
    }

    fn ask<'a>(user: &'a str, scope: u64, frame: &'a Frame) -> DedupeInput<'a> {
        DedupeInput { user: Some(user), scope, frame: Some(frame), is_question: true, ..Default::default() }
    }

    #[test]
    fn a_question_never_joins_a_cluster_of_another_scope() {
        let mut d = dedupe(&DedupeConfig::default());
        let price = sig(&["price_q"], &[], &["値段"]);
        let p1 = d.process(&ask("a", 11, &price)).cluster.unwrap();
        let p2 = d.process(&ask("b", 22, &price)).cluster.unwrap();
        let p1_again = d.process(&ask("c", 11, &price)).cluster.unwrap();
        assert_ne!(p1.id, p2.id, "the same words about two products are two questions");
        assert_eq!(p1.id, p1_again.id);
    }

    #[test]
    fn slot_disagreement_separates() {
        let mut d = dedupe(&DedupeConfig::default());
        let black = sig(&["stock"], &[("color", "black"), ("size", "m")], &[]);
        let white = sig(&["stock"], &[("color", "white"), ("size", "m")], &[]);
        let a = d.process(&ask("a", 1, &black)).cluster.unwrap();
        let b = d.process(&ask("b", 1, &white)).cluster.unwrap();
        let c = d.process(&ask("c", 1, &black)).cluster.unwrap();
        assert_ne!(a.id, b.id);
        assert_eq!(a.id, c.id);
    }

    #[test]
    fn repeats_by_one_user_flood_but_questions_do_not() {
        let mut d = dedupe(&DedupeConfig::default());
        let input = DedupeInput { user: Some("u1"), ts: 0, key_hash: 7, key_chars: 4, ..Default::default() };
        let outs: Vec<_> = (0..3).map(|_| d.process(&input)).collect();
        assert_eq!(outs.iter().map(|o| o.repeats).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(outs[2].repeat_flood && !outs[1].repeat_flood);
        let q = DedupeInput { is_question: true, key_hash: 8, ..input };
        assert!((0..4).all(|_| !d.process(&q).repeat_flood));
    }

    #[test]
    fn copypasta_needs_distinct_users() {
        let mut d = dedupe(&DedupeConfig::default());
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
        let mut d = dedupe(&DedupeConfig::default());
        let s = sig(&["shipping"], &[], &["送料"]);
        let a = d.process(&DedupeInput { user: Some("a"), frame: Some(&s), is_question: true, ..Default::default() });
        let b = d.process(&DedupeInput { user: Some("a"), frame: Some(&s), is_question: true, ..Default::default() });
        let c = d.process(&DedupeInput { user: Some("b"), frame: Some(&s), is_question: true, ..Default::default() });
        assert!(a.cluster.unwrap().opened);
        assert_eq!(b.cluster.unwrap().askers, 1);
        assert_eq!(c.cluster.unwrap().askers, 2);
        assert_eq!(a.cluster.unwrap().id, c.cluster.unwrap().id);
    }

    #[test]
    fn packed_members_read_back_as_pushed() {
        let a = sig(&["stock", "size"], &[("color", "black")], &["ワンピース"]);
        let mut b = sig(&[], &[("num", "3"), ("size", "m")], &[]);
        b.preds = vec![5, 6];
        b.grams = vec![1, 2, 3];
        b.ask = super::super::frame::Ask::Show;
        let mut members = Members::default();
        members.push(a.view());
        members.push(Frame::default().view());
        members.push(b.view());
        let back: Vec<FrameView<'_>> = members.iter().collect();
        assert_eq!(back, [a.view(), Frame::default().view(), b.view()]);
    }

    #[test]
    fn a_busy_stream_keeps_at_most_window_messages_and_counts_what_left_early() {
        let cap = 100;
        let config = DedupeConfig { window_messages: NonZeroUsize::new(cap).unwrap(), ..Default::default() };
        let mut d = dedupe(&config);
        let messages = 20_000u64;
        for i in 0..messages {
            let user = format!("u{}", i % 700);
            // All within window_ms: only the count bounds the window.
            let input =
                DedupeInput { user: Some(&user), ts: i, key_hash: i % 3000, key_chars: 20, ..Default::default() };
            d.process(&input);
            let size = d.window_size();
            // The log holds the bound; users and texts also those of the last purge interval.
            let most = cap + cap / 4 + 1;
            assert!(size.messages <= cap, "{size:?} after {i}");
            assert!(size.users <= most && size.texts <= most && size.sightings <= most, "{size:?} after {i}");
        }
        assert_eq!(d.take_evictions(), Evictions { window: messages - cap as u64, clusters: 0 });
        assert_eq!(d.take_evictions(), Evictions::default(), "taken once");
    }

    #[test]
    fn a_repeat_beyond_window_messages_is_forgotten() {
        let run = |window_messages: usize| {
            let config =
                DedupeConfig { window_messages: NonZeroUsize::new(window_messages).unwrap(), ..Default::default() };
            let mut d = dedupe(&config);
            let says = |user, key_hash, ts| DedupeInput {
                user: Some(user),
                ts,
                key_hash,
                key_chars: 20,
                ..Default::default()
            };
            d.process(&says("a", 1, 0));
            d.process(&says("b", 2, 1));
            d.process(&says("c", 3, 2));
            let again = d.process(&says("a", 1, 3));
            (again.repeats, d.take_evictions().window)
        };
        // Each message leaves the log once `window_messages` newer ones were seen, and is counted.
        assert_eq!(run(3), (2, 1), "three messages back is inside a window of three");
        assert_eq!(run(2), (1, 2), "and outside a window of two");
    }

    #[test]
    fn clusters_over_max_clusters_are_forgotten_and_counted() {
        let config = DedupeConfig { max_clusters: 2, ..Default::default() };
        let mut d = dedupe(&config);
        for (i, topic) in ["shipping", "price", "stock"].into_iter().enumerate() {
            let s = sig(&[topic], &[], &[]);
            let q =
                DedupeInput { user: Some("a"), ts: i as u64, frame: Some(&s), is_question: true, ..Default::default() };
            assert!(d.process(&q).cluster.unwrap().opened);
        }
        assert_eq!(d.cluster_count(), 2);
        assert_eq!(d.take_evictions().clusters, 1);
    }
}
