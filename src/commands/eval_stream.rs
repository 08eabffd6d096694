//! `kotae eval-stream` and `kotae eval-clusters`: how well the host queue holds the questions
//! viewers asked, measured on gold-annotated streams and paraphrase sets.
//!
//! A gold stream is JSON Lines in time order (`{"id","ts","user","text","q"}`, `q` naming the
//! distinct question on every question line), a `*.products.json` catalogue with a schedule
//! (`shown_at_ms` from the stream start) and a `*.questions.json` saying which product each key is
//! about. The stream is replayed through the real stateful pipeline (analysis, the stream's
//! dedupe and clusters with its catalogue and the product on screen, the host queue), and the
//! queue is scored as DESIGN.md defines: a queue item's key is the key most of its lines carry;
//! a distinct question is *answered once* when the lines of it that reached the queue all went to
//! one item whose key is theirs.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, CatalogSpec, ProductSpec};
use crate::label::{Action, Label};
use crate::pipeline::{Analyzer, Engine, Meta, StreamState};
use crate::queue::{Asked, Queue, RankConfig};

/// One line of a gold stream.
#[derive(Debug, Clone, Deserialize)]
pub struct GoldLine {
    /// The line's id, unique in the stream: what ties a line to its queue item.
    pub id: String,
    /// When it was sent, Unix milliseconds; lines come in time order.
    pub ts: u64,
    /// The viewer who sent it.
    #[serde(default)]
    pub user: Option<String>,
    /// The message text.
    pub text: String,
    /// The distinct question this line asks, on question lines.
    #[serde(default)]
    pub q: Option<String>,
    /// Whole yen paid with it, when paid.
    #[serde(default)]
    pub paid: Option<u64>,
}

/// A product of a gold stream's schedule.
#[derive(Debug, Clone, Deserialize)]
pub struct ScheduledProduct {
    /// The product id; what `*.questions.json` names.
    pub id: String,
    /// The name the shop lists it under.
    pub name: String,
    /// When it goes on screen, in ms from the stream's start (the first line's time rounded down to
    /// the hour).
    pub shown_at_ms: u64,
    /// Short words viewers use for it.
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// A gold stream's `*.products.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct GoldSchedule {
    /// The stream's name, as the scores show it.
    pub stream: String,
    /// The products, each with when it goes on screen.
    pub products: Vec<ScheduledProduct>,
}

/// What a gold key is about (`*.questions.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct GoldQuestion {
    /// The product id the question is about; `None` for the shop.
    #[serde(default)]
    pub product: Option<String>,
}

/// A gold stream with its schedule and keys.
#[derive(Debug, Clone)]
pub struct GoldStream {
    /// The stream's lines, in time order.
    pub lines: Vec<GoldLine>,
    /// Its product schedule (`NAME.products.json`).
    pub schedule: GoldSchedule,
    /// What each gold key is about, by key (`NAME.questions.json`).
    pub questions: HashMap<String, GoldQuestion>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

impl GoldStream {
    /// Reads `NAME.jsonl` with `NAME.products.json` and `NAME.questions.json` beside it.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut lines = Vec::new();
        for (n, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            lines.push(serde_json::from_str(l).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?);
        }
        let sibling = |ext: &str| -> PathBuf {
            let s = path.to_string_lossy();
            PathBuf::from(s.strip_suffix(".jsonl").unwrap_or(&s).to_string() + ext)
        };
        Ok(Self {
            lines,
            schedule: read_json(&sibling(".products.json"))?,
            questions: read_json(&sibling(".questions.json"))?,
        })
    }

    /// The catalogue the shop would send.
    pub fn catalog(&self) -> CatalogSpec {
        CatalogSpec {
            products: self
                .schedule
                .products
                .iter()
                .map(|p| ProductSpec { id: p.id.clone(), name: p.name.clone(), keywords: p.keywords.clone() })
                .collect(),
        }
    }

    /// The product on screen at `ts`: the schedule counts from the stream's start, the first
    /// line's time rounded down to the hour.
    pub fn on_screen(&self, ts: u64) -> Option<&str> {
        let start = self.lines.first().map_or(0, |l| l.ts - l.ts % 3_600_000);
        let offset = ts.saturating_sub(start);
        self.schedule
            .products
            .iter()
            .filter(|p| p.shown_at_ms <= offset)
            .max_by_key(|p| p.shown_at_ms)
            .map(|p| p.id.as_str())
    }
}

/// The queue's figures on one gold stream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamScore {
    /// The stream's name, from its schedule.
    pub stream: String,
    /// Lines in the gold stream.
    pub lines: usize,
    /// Distinct gold keys: the questions a host would answer once each.
    pub distinct_questions: usize,
    /// Items the queue ended up with.
    pub queue_items: usize,
    /// Distinct questions that own at least one queue item.
    pub covered: f64,
    /// Distinct questions whose queued lines all went to one item of their own.
    pub answered_once: f64,
    /// Queue items per distinct question that reached the queue.
    pub items_per_question: f64,
    /// Items holding lines of several distinct questions.
    pub mixed_items: usize,
    /// Items holding questions about different products (the shop counting as one).
    pub cross_product_items: usize,
    /// Items whose lines are mostly not questions.
    pub noise_items: usize,
    /// Share of [`StreamScore::noise_items`] in all items.
    pub noise_share: f64,
    /// Question lines that reached the queue.
    pub question_line_recall: f64,
    /// Question lines that reached the queue, counted.
    pub question_lines_queued: usize,
    /// Lines with no gold key that reached the queue.
    pub non_question_lines_in_queue: usize,
    /// Question lines the stateful stage blocked.
    pub questions_blocked: usize,
    /// At each minute with an open question about the product on screen, whether the most-asked
    /// one is among the first three of the ranked list.
    pub on_screen_top3: f64,
    /// The gold keys answered once.
    #[serde(skip)]
    pub once: BTreeSet<String>,
}

/// What the replay kept for reading the failures (`-v`).
#[derive(Debug, Default)]
pub struct Trace {
    /// Per queue item: its lines `(gold key or "-", text, product)`.
    pub items: BTreeMap<u32, Vec<(String, String, Option<String>)>>,
    /// Per gold key: its lines `(item, text)`.
    pub keys: BTreeMap<String, Vec<(Option<u32>, String)>>,
}

/// Replays a gold stream through the stateful pipeline and scores the host queue.
pub fn score_stream(engine: &Arc<Engine>, rank: &RankConfig, gold: &GoldStream) -> (StreamScore, Trace) {
    let mut analyzer: Analyzer = engine.analyzer();
    let mut state: StreamState = engine.stream_state();
    match Catalog::compile(gold.catalog(), &engine.config.normalize) {
        Ok(c) => state.set_catalog(Arc::new(c)),
        Err(e) => eprintln!("kotae: the stream's catalogue is not used: {e}"),
    }
    let mut queue = Queue::new(rank);
    let mut item_of: HashMap<&str, u32> = HashMap::new();
    let mut blocked = 0;
    let (mut top3_hits, mut top3_moments) = (0usize, 0usize);
    let mut next_minute = gold.lines.first().map_or(0, |l| l.ts + 60_000);
    let mut trace = Trace::default();
    for line in &gold.lines {
        let on = gold.on_screen(line.ts);
        queue.current_product = on.map(str::to_string);
        while line.ts >= next_minute {
            if let Some(hit) = on_screen_in_top3(&queue, next_minute) {
                top3_moments += 1;
                top3_hits += usize::from(hit);
            }
            next_minute += 60_000;
        }
        let Ok(analysis) = analyzer.analyze(&line.text) else { continue };
        let v = state.process(Meta { user: line.user.as_deref(), ts: line.ts, product: on }, analysis);
        if line.q.is_some() && v.action == Action::Block {
            blocked += 1;
        }
        if let (Some(c), Action::Allow) = (v.cluster, v.action) {
            queue.observe(&Asked {
                cluster: c.id,
                askers: c.askers,
                user: line.user.as_deref(),
                text: &line.text,
                ts: line.ts,
                topics: &v.topics,
                product: v.about.product(),
                shop: v.about.is_shop(),
                paid: line.paid.filter(|&p| p > 0).map(crate::money::Money::yen),
                intent: v.labels.contains(Label::PurchaseIntent),
            });
            item_of.insert(&line.id, c.id);
            trace.items.entry(c.id).or_default().push((
                line.q.clone().unwrap_or_else(|| "-".into()),
                line.text.clone(),
                v.about.product().map(str::to_string),
            ));
        }
        if let Some(q) = &line.q {
            trace.keys.entry(q.clone()).or_default().push((item_of.get(line.id.as_str()).copied(), line.text.clone()));
        }
    }
    let score = score(gold, &item_of, blocked, (top3_hits, top3_moments));
    (score, trace)
}

/// Whether the most-asked open question about the product on screen ranks in the first three;
/// `None` when there is none.
fn on_screen_in_top3(queue: &Queue, now: u64) -> Option<bool> {
    let on = queue.current_product.as_deref()?;
    let ranked = queue.ranked(now);
    let best = ranked
        .iter()
        .enumerate()
        .filter(|(_, r)| r.question.product.as_deref() == Some(on) && !r.question.shop)
        .max_by_key(|(i, r)| (r.question.askers, std::cmp::Reverse(*i)))?;
    Some(best.0 < 3)
}

fn score(gold: &GoldStream, item_of: &HashMap<&str, u32>, blocked: usize, top3: (usize, usize)) -> StreamScore {
    let mut item_keys: HashMap<u32, BTreeMap<&str, usize>> = HashMap::new();
    for l in &gold.lines {
        if let Some(&item) = item_of.get(l.id.as_str()) {
            *item_keys.entry(item).or_default().entry(l.q.as_deref().unwrap_or("-")).or_default() += 1;
        }
    }
    // The key most of an item's lines carry (ties: the first in key order, as a stable choice).
    let majority = |item: u32| -> &str {
        item_keys[&item].iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map_or("-", |(k, _)| k)
    };
    let keys: HashSet<&str> = gold.lines.iter().filter_map(|l| l.q.as_deref()).collect();
    let (mut covered, mut frag, mut once) = (0, Vec::new(), BTreeSet::new());
    for k in &keys {
        let items: HashSet<u32> = gold
            .lines
            .iter()
            .filter(|l| l.q.as_deref() == Some(k))
            .filter_map(|l| item_of.get(l.id.as_str()).copied())
            .collect();
        let own = items.iter().any(|&i| majority(i) == *k);
        covered += usize::from(own);
        if own && items.len() == 1 {
            once.insert(k.to_string());
        }
        if !items.is_empty() {
            frag.push(items.len());
        }
    }
    let product_of = |k: &str| gold.questions.get(k).and_then(|q| q.product.clone()).unwrap_or_else(|| "shop".into());
    let noise = item_keys.keys().filter(|&&i| majority(i) == "-").count();
    let mixed = item_keys.values().filter(|m| m.keys().filter(|k| **k != "-").count() > 1).count();
    let cross = item_keys
        .values()
        .filter(|m| m.keys().filter(|k| **k != "-").map(|k| product_of(k)).collect::<HashSet<_>>().len() > 1)
        .count();
    let q_lines = gold.lines.iter().filter(|l| l.q.is_some()).count();
    let q_queued = gold.lines.iter().filter(|l| l.q.is_some() && item_of.contains_key(l.id.as_str())).count();
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { round(a as f64 / b as f64) };
    StreamScore {
        stream: gold.schedule.stream.clone(),
        lines: gold.lines.len(),
        distinct_questions: keys.len(),
        queue_items: item_keys.len(),
        covered: ratio(covered, keys.len()),
        answered_once: ratio(once.len(), keys.len()),
        items_per_question: if frag.is_empty() {
            0.0
        } else {
            round(frag.iter().sum::<usize>() as f64 / frag.len() as f64)
        },
        mixed_items: mixed,
        cross_product_items: cross,
        noise_items: noise,
        noise_share: ratio(noise, item_keys.len()),
        question_line_recall: ratio(q_queued, q_lines),
        question_lines_queued: q_queued,
        non_question_lines_in_queue: gold
            .lines
            .iter()
            .filter(|l| l.q.is_none() && item_of.contains_key(l.id.as_str()))
            .count(),
        questions_blocked: blocked,
        on_screen_top3: ratio(top3.0, top3.1),
        once,
    }
}

/// Where a second writer's file for `NAME.jsonl` is: `NAME{ext}` beside it, or in `dir` (for
/// streams kept outside this repository).
fn second_path(stream: &Path, dir: Option<&Path>, ext: &str) -> PathBuf {
    let name = stream.file_name().map_or_else(String::new, |n| n.to_string_lossy().to_string());
    let file = name.strip_suffix(".jsonl").unwrap_or(&name).to_string() + ext;
    match dir {
        Some(d) => d.join(file),
        None => stream.with_file_name(file),
    }
}

/// A second writer's keys for a gold stream's question lines (`NAME.second.tsv` beside it or in a
/// directory of its own: a header, then `id<TAB>key` per line, the key `SCOPE.name` with SCOPE a
/// product id or `shop`), written from the label rules, the catalogue and the question lines
/// alone, without the first writer's keys.
pub fn load_second_keys(stream: &Path, dir: Option<&Path>) -> Result<HashMap<String, String>, String> {
    read_second_file(&second_path(stream, dir, ".second.tsv"), "key", |key| Ok(key.to_string()))
}

/// Reads a second writer's `id<TAB>value` file (a header line first), each id once, each value
/// through `parse`; errors name the file and line.
fn read_second_file<T>(
    path: &Path,
    what: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<HashMap<String, T>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut values = HashMap::new();
    for (n, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
        let at = || format!("{}:{}", path.display(), n + 1);
        let (id, value) = line.split_once('\t').ok_or_else(|| format!("{}: expected `id<TAB>{what}`", at()))?;
        let value = parse(value.trim()).map_err(|e| format!("{}: {e}", at()))?;
        if values.insert(id.trim().to_string(), value).is_some() {
            return Err(format!("{}: {} given twice", at(), id.trim()));
        }
    }
    Ok(values)
}

/// How far two writers agree on which question lines a host answers once, scored as the queue is:
/// first the second writer's keys taken as the queue's items against the first writer's gold, then
/// the other way round. Every question line counts as queued, so this is identity alone, without
/// the question/non-question boundary: a ceiling no queue is expected to pass by much.
pub fn agreement(gold: &GoldStream, second: &HashMap<String, String>) -> Result<(StreamScore, StreamScore), String> {
    let index = |keys: &mut HashMap<String, u32>, k: &str| -> u32 {
        let n = keys.len() as u32;
        *keys.entry(k.to_string()).or_insert(n)
    };
    let (mut first_ids, mut second_ids) = (HashMap::new(), HashMap::new());
    let (mut as_first, mut as_second) = (HashMap::new(), HashMap::new());
    for l in &gold.lines {
        let (Some(q), Some(k)) = (&l.q, second.get(&l.id)) else {
            if l.q.is_some() {
                return Err(format!("{}: the second writer left {} unkeyed", gold.schedule.stream, l.id));
            }
            continue;
        };
        as_first.insert(l.id.as_str(), index(&mut first_ids, q));
        as_second.insert(l.id.as_str(), index(&mut second_ids, k));
    }
    let second_as_queue = score(gold, &as_second, 0, (0, 0));
    let mut swapped = gold.clone();
    for l in &mut swapped.lines {
        l.q = second.get(&l.id).filter(|_| l.q.is_some()).cloned();
    }
    swapped.questions = second
        .values()
        .map(|k| {
            let scope = k.split_once('.').map_or(k.as_str(), |(s, _)| s);
            let product = (scope != "shop").then(|| scope.to_string());
            (k.clone(), GoldQuestion { product })
        })
        .collect();
    let first_as_queue = score(&swapped, &as_first, 0, (0, 0));
    Ok((second_as_queue, first_as_queue))
}

/// A second writer's reading of which lines of a gold stream ask the host something
/// (`NAME.second-questions.tsv` beside it: a header, then `id<TAB>yes|no` for every line), made
/// from the label rules, the catalogue and the whole chat, without the first writer's labels.
/// `None` when the stream has no such file.
pub fn load_second_questions(stream: &Path, dir: Option<&Path>) -> Result<Option<HashMap<String, bool>>, String> {
    let path = second_path(stream, dir, ".second-questions.tsv");
    if !path.exists() {
        return Ok(None);
    }
    let marks = read_second_file(&path, "yes|no", |mark| match mark {
        "yes" => Ok(true),
        "no" => Ok(false),
        other => Err(format!("`{other}` is neither yes nor no")),
    })?;
    Ok(Some(marks))
}

/// Question lines found against the first writer's: (lines taken, of which questions, questions
/// in all). For a second person's marks, or for the queue's lines (from its score).
pub fn question_lines(gold: &GoldStream, marks: &HashMap<String, bool>) -> Result<(usize, usize, usize), String> {
    let (mut taken, mut right, mut all) = (0, 0, 0);
    for l in &gold.lines {
        let Some(&mark) = marks.get(&l.id) else {
            return Err(format!("{}: the second writer left {} unmarked", gold.schedule.stream, l.id));
        };
        all += usize::from(l.q.is_some());
        taken += usize::from(mark);
        right += usize::from(mark && l.q.is_some());
    }
    Ok((taken, right, all))
}

/// As [`question_lines`], for the lines the queue took.
pub fn queued_lines(gold: &GoldStream, queue: &StreamScore) -> (usize, usize, usize) {
    let all = gold.lines.iter().filter(|l| l.q.is_some()).count();
    let right = queue.question_lines_queued;
    (right + queue.non_question_lines_in_queue, right, all)
}

/// Which of the first writer's questions the queue and a second person each answer once:
/// (both, the queue only, the person only, neither).
pub fn joint(queue: &StreamScore, person: &StreamScore) -> [usize; 4] {
    let mut n = [0; 4];
    for k in queue.once.union(&person.once) {
        n[match (queue.once.contains(k), person.once.contains(k)) {
            (true, true) => 0,
            (true, false) => 1,
            _ => 2,
        }] += 1;
    }
    n[3] = queue.distinct_questions - n[0] - n[1] - n[2];
    n
}

/// `kotae eval-stream --second-writer` on one stream: the second writer's keys scored both ways,
/// which questions the queue and the person each answer once, and, when the person also marked
/// the lines, the question lines each took. One JSON object, or lines for people.
pub fn second_writer_report(
    engine: &Arc<Engine>,
    rank: &RankConfig,
    file: &Path,
    dir: Option<&Path>,
    json: bool,
) -> Result<String, String> {
    let gold = GoldStream::load(file)?;
    let (second_as_queue, first_as_queue) = agreement(&gold, &load_second_keys(file, dir)?)?;
    let (queue, _) = score_stream(engine, rank, &gold);
    let [both, queue_only, person_only, neither] = joint(&queue, &second_as_queue);
    let marked = match load_second_questions(file, dir)? {
        Some(marks) => Some(question_lines(&gold, &marks)?),
        None => None,
    };
    let queued = queued_lines(&gold, &queue);
    if json {
        let counts = |(taken, questions, of): (usize, usize, usize)| serde_json::json!({"taken": taken, "questions": questions, "of": of});
        return Ok(serde_json::json!({
            "second_as_queue": second_as_queue,
            "first_as_queue": first_as_queue,
            "queue": queue,
            "answered_once_by": {"both": both, "queue_only": queue_only, "second_writer_only": person_only, "neither": neither},
            "question_lines": {"queue": counts(queued), "second_writer": marked.map(counts)},
        })
        .to_string());
    }
    let lines = |(taken, right, all): (usize, usize, usize)| {
        format!("{taken} lines, {right} of the {all} question lines and {} others", taken - right)
    };
    let stream = &queue.stream;
    let mut out = vec![
        format_agreement(&second_as_queue, "second writer's keys as the queue"),
        format_agreement(&first_as_queue, "first writer's keys as the queue"),
        format!(
            "{stream}: of {} questions, answered once by the queue and the second writer {both}, the queue only {queue_only}, the second writer only {person_only}, neither {neither}",
            queue.distinct_questions
        ),
    ];
    out.push(match marked {
        Some(m) => {
            format!("{stream}: question lines: the queue took {}; the second writer marked {}", lines(queued), lines(m))
        }
        None => format!("{stream}: question lines: the queue took {}", lines(queued)),
    });
    Ok(out.join("\n"))
}

/// One direction of [`agreement`] as a line for people.
pub fn format_agreement(s: &StreamScore, direction: &str) -> String {
    format!(
        "{} ({direction}): {} distinct questions → {} items; answered once {:.3}, items per question {:.2}, \
         items mixing questions {}, mixing products {}",
        s.stream,
        s.distinct_questions,
        s.queue_items,
        s.answered_once,
        s.items_per_question,
        s.mixed_items,
        s.cross_product_items
    )
}

/// Prints, for reading failures: gold keys split over several items or missing, and items that
/// mix keys or hold no question.
pub fn print_trace(trace: &Trace) {
    for (k, lines) in &trace.keys {
        let items: HashSet<Option<u32>> = lines.iter().map(|(i, _)| *i).collect();
        if items.len() > 1 || items.contains(&None) {
            println!("SPLIT {k}");
            for (i, t) in lines {
                // The item's scope: the product its lines were about, or the shop.
                let scope = i.and_then(|i| trace.items.get(&i)?.first()?.2.as_deref()).unwrap_or("-");
                println!("    {} [{scope}] {t}", i.map_or("-".into(), |i| format!("q{i}")));
            }
        }
    }
    for (item, lines) in &trace.items {
        let keys: HashSet<&str> = lines.iter().map(|(k, _, _)| k.as_str()).collect();
        if keys.len() > 1 || keys.contains("-") {
            println!("MIXED q{item}");
            for (k, t, p) in lines {
                println!("    {k} [{}] {t}", p.as_deref().unwrap_or("-"));
            }
        }
    }
}

/// A paraphrase cluster: texts a host would answer once, asked while `on_screen` was shown.
#[derive(Debug, Clone)]
pub struct ParaCluster {
    /// The cluster's id in the file.
    pub id: String,
    /// The product on screen while they were asked; `None` for none.
    pub on_screen: Option<String>,
    /// The wordings, each sent as one viewer's message.
    pub texts: Vec<String>,
}

/// A near-miss pair: alike in words, different answers.
#[derive(Debug, Clone)]
pub struct NearMiss {
    /// One side: its text and, when given, the product on screen as it is asked.
    pub a: (String, Option<String>),
    /// The other side, alike.
    pub b: (String, Option<String>),
}

/// A paraphrase set with its near-miss pairs and, when given, its catalogue.
#[derive(Debug, Clone, Default)]
pub struct ClusterSet {
    /// The paraphrase clusters, in file order.
    pub clusters: Vec<ParaCluster>,
    /// The near-miss pairs, from the cluster file or the near-miss file beside it.
    pub near: Vec<NearMiss>,
    /// The set's catalogue (`products.json` beside the file), when there is one.
    pub catalog: Option<CatalogSpec>,
}

impl ClusterSet {
    /// Reads a cluster file in any of the shapes the fixtures use: one cluster per line
    /// (`{"cluster","texts",["on_screen"]}`) followed by `{"near_miss":[…]}` lines whose sides
    /// are strings or `{"text","on_screen"}`; or one text per line (`{"cluster","text"}`) with
    /// the near misses (`{"a","b"}`) in a second file. A `products.json` beside it is the
    /// catalogue.
    pub fn load(path: &Path, near_path: Option<&Path>) -> Result<Self, String> {
        let mut set = ClusterSet::default();
        let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
        let mut read = |p: &Path, set: &mut ClusterSet| -> Result<(), String> {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            for (n, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let v: serde_json::Value =
                    serde_json::from_str(l).map_err(|e| format!("{}:{}: {e}", p.display(), n + 1))?;
                let side = |s: &serde_json::Value| -> Option<(String, Option<String>)> {
                    match s {
                        serde_json::Value::String(t) => Some((t.clone(), None)),
                        o => Some((o["text"].as_str()?.to_string(), o["on_screen"].as_str().map(str::to_string))),
                    }
                };
                if let Some(pair) = v["near_miss"].as_array() {
                    if let (Some(a), Some(b)) = (pair.first().and_then(side), pair.get(1).and_then(side)) {
                        set.near.push(NearMiss { a, b });
                    }
                } else if let (Some(a), Some(b)) = (v["a"].as_str(), v["b"].as_str()) {
                    set.near.push(NearMiss { a: (a.into(), None), b: (b.into(), None) });
                } else if let Some(id) = v["cluster"].as_str() {
                    let on = v["on_screen"].as_str().map(str::to_string);
                    let texts: Vec<String> = match (v["texts"].as_array(), v["text"].as_str()) {
                        (Some(ts), _) => ts.iter().filter_map(|t| t.as_str().map(str::to_string)).collect(),
                        (None, Some(t)) => vec![t.to_string()],
                        _ => return Err(format!("{}:{}: a cluster without texts", p.display(), n + 1)),
                    };
                    let i = *by_id.entry(id.to_string()).or_insert_with(|| {
                        set.clusters.push(ParaCluster { id: id.to_string(), on_screen: on.clone(), texts: Vec::new() });
                        set.clusters.len() - 1
                    });
                    set.clusters[i].texts.extend(texts);
                } else {
                    return Err(format!("{}:{}: neither a cluster nor a near-miss pair", p.display(), n + 1));
                }
            }
            Ok(())
        };
        read(path, &mut set)?;
        // `x/paraphrases.jsonl` keeps its near misses in `x/near_miss.jsonl`.
        let sibling = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.contains("paraphrases"))
            .map(|n| path.with_file_name(n.replace("paraphrases", "near_miss")));
        if let Some(np) = near_path.map(Path::to_path_buf).or(sibling.filter(|p| p.exists())) {
            read(&np, &mut set)?;
        }
        let products = path.with_file_name("products.json");
        if products.exists() {
            set.catalog = Some(read_json(&products)?);
        }
        Ok(set)
    }
}

/// How a cluster set fared: paraphrase pairs that shared an item, near-miss pairs kept apart.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterScore {
    /// Clusters in the set.
    pub clusters: usize,
    /// Texts across all clusters.
    pub texts: usize,
    /// Pairs of texts within one cluster.
    pub paraphrase_pairs: usize,
    /// Share of those pairs that went to the same queue item.
    pub together: f64,
    /// Near-miss pairs in the set.
    pub near_miss_pairs: usize,
    /// Share of near-miss pairs that went to different items (or were not questions at all).
    pub apart: f64,
    /// Pairs from different clusters that shared an item.
    pub wrong_merges: usize,
    /// Paraphrase texts not seen as questions.
    pub not_questions: usize,
    /// How well the identity model tells the set's pairs of one question from pairs of
    /// different questions within one scope, whatever its threshold (area under the ROC curve).
    pub pair_auc: f64,
}

/// Scores a cluster set: all paraphrases as one stream, clusters interleaved round-robin as in a
/// live chat, each text sent with its product on screen; each near-miss pair as its own stream.
/// With `verbose`, prints the pairs that failed.
pub fn score_clusters(engine: &Arc<Engine>, set: &ClusterSet, verbose: bool) -> ClusterScore {
    let catalog = set.catalog.clone().map(|c| match Catalog::compile(c, &engine.config.normalize) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("kotae: the set's catalogue is not used: {e}");
            Catalog::empty()
        }
    });
    let mut analyzer = engine.analyzer();
    let fresh = || {
        let mut s = engine.stream_state();
        if let Some(c) = &catalog {
            s.set_catalog(c.clone());
        }
        s
    };
    let cluster_of = |state: &mut StreamState, a: &mut Analyzer, text: &str, user: &str, on: Option<&str>| {
        a.analyze(text)
            .ok()
            .and_then(|x| state.process(Meta { user: Some(user), ts: 0, product: on }, x).cluster.map(|c| c.id))
    };
    let mut state = fresh();
    let mut order: Vec<(usize, usize)> = Vec::new();
    let longest = set.clusters.iter().map(|c| c.texts.len()).max().unwrap_or(0);
    for round in 0..longest {
        for (ci, c) in set.clusters.iter().enumerate() {
            if round < c.texts.len() {
                order.push((ci, round));
            }
        }
    }
    let mut ids: HashMap<(usize, usize), Option<u32>> = HashMap::new();
    for (n, &(ci, ti)) in order.iter().enumerate() {
        let c = &set.clusters[ci];
        ids.insert(
            (ci, ti),
            cluster_of(&mut state, &mut analyzer, &c.texts[ti], &format!("u{n}"), c.on_screen.as_deref()),
        );
    }
    let (mut pairs, mut together, mut wrong) = (0, 0, 0);
    let all: Vec<(usize, usize)> = order.clone();
    for (x, &(ci, ti)) in all.iter().enumerate() {
        for &(cj, tj) in &all[x + 1..] {
            let (a, b) = (ids[&(ci, ti)], ids[&(cj, tj)]);
            let same = a.is_some() && a == b;
            if ci == cj {
                pairs += 1;
                together += usize::from(same);
            } else if same {
                wrong += 1;
                if verbose {
                    println!("WRONG MERGE {} / {}", set.clusters[ci].texts[ti], set.clusters[cj].texts[tj]);
                }
            }
        }
    }
    if verbose {
        for (ci, c) in set.clusters.iter().enumerate() {
            let line: Vec<String> = (0..c.texts.len())
                .map(|ti| format!("{}:{}", ids[&(ci, ti)].map_or("-".into(), |i| i.to_string()), c.texts[ti]))
                .collect();
            println!("{} {}", c.id, line.join(" | "));
        }
    }
    let apart = set
        .near
        .iter()
        .filter(|n| {
            let mut state = fresh();
            let a = cluster_of(&mut state, &mut analyzer, &n.a.0, "a", n.a.1.as_deref());
            let b = cluster_of(&mut state, &mut analyzer, &n.b.0, "b", n.b.1.as_deref());
            let ok = a.is_none() || a != b;
            if verbose && !ok {
                println!(
                    "MERGED {} [{}] / {} [{}]",
                    n.a.0,
                    n.a.1.as_deref().unwrap_or("-"),
                    n.b.0,
                    n.b.1.as_deref().unwrap_or("-")
                );
            }
            ok
        })
        .count();
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    ClusterScore {
        clusters: set.clusters.len(),
        texts: order.len(),
        paraphrase_pairs: pairs,
        together: if pairs == 0 { 0.0 } else { round(together as f64 / pairs as f64) },
        near_miss_pairs: set.near.len(),
        apart: if set.near.is_empty() { 0.0 } else { round(apart as f64 / set.near.len() as f64) },
        wrong_merges: wrong,
        not_questions: ids.values().filter(|i| i.is_none()).count(),
        pair_auc: {
            let model = engine.identity();
            let mut labelled = Vec::new();
            super::train_identity::cluster_pairs(engine, set, &model.associations, &mut labelled);
            round(super::train_identity::auc(&model, &labelled))
        },
    }
}

/// One stream's figures as a line for people.
pub fn format_score(s: &StreamScore) -> String {
    format!(
        "{}: {} lines, {} distinct questions → {} queue items; answered once {:.3}, covered {:.3}, items per question {:.2}, \
         items mixing questions {}, mixing products {}, without a question {} ({:.1}%), question lines queued {:.3}, \
         non-question lines queued {}, questions blocked {}, on-screen top question in the first three {:.3}",
        s.stream,
        s.lines,
        s.distinct_questions,
        s.queue_items,
        s.answered_once,
        s.covered,
        s.items_per_question,
        s.mixed_items,
        s.cross_product_items,
        s.noise_items,
        s.noise_share * 100.0,
        s.question_line_recall,
        s.non_question_lines_in_queue,
        s.questions_blocked,
        s.on_screen_top3
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream of six question lines: `a` (three lines) and `b` (two) about p1, `s` about the shop.
    fn gold() -> GoldStream {
        let line = |id: &str, q: &str| GoldLine {
            id: id.into(),
            ts: 1_000,
            user: None,
            text: id.into(),
            q: Some(q.into()),
            paid: None,
        };
        let mut lines =
            vec![line("1", "a"), line("2", "a"), line("3", "a"), line("4", "b"), line("5", "b"), line("6", "s")];
        lines.push(GoldLine { q: None, ..line("7", "-") });
        let question = |p: Option<&str>| GoldQuestion { product: p.map(str::to_string) };
        GoldStream {
            lines,
            schedule: GoldSchedule { stream: "t".into(), products: vec![] },
            questions: [
                ("a".into(), question(Some("p1"))),
                ("b".into(), question(Some("p1"))),
                ("s".into(), question(None)),
            ]
            .into_iter()
            .collect(),
        }
    }

    fn keys(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(i, k)| (i.to_string(), k.to_string())).collect()
    }

    #[test]
    fn a_second_writer_who_groups_alike_agrees_fully_whatever_the_names() {
        let second =
            keys(&[("1", "p1.x"), ("2", "p1.x"), ("3", "p1.x"), ("4", "p1.y"), ("5", "p1.y"), ("6", "shop.z")]);
        let (second_as_queue, first_as_queue) = agreement(&gold(), &second).unwrap();
        for s in [&second_as_queue, &first_as_queue] {
            assert_eq!(s.answered_once, 1.0);
            assert_eq!(s.items_per_question, 1.0);
            assert_eq!((s.mixed_items, s.cross_product_items, s.noise_items), (0, 0, 0));
        }
    }

    #[test]
    fn a_split_counts_against_one_direction_and_a_merge_against_the_other() {
        // The second writer splits `a` and merges `b` with the shop's `s` (under p1).
        let second = keys(&[("1", "p1.x"), ("2", "p1.x"), ("3", "p1.w"), ("4", "p1.y"), ("5", "p1.y"), ("6", "p1.y")]);
        let (second_as_queue, first_as_queue) = agreement(&gold(), &second).unwrap();
        // a split over two items; b's item also holds s, whose key is not the majority: b once,
        // a and s not.
        assert_eq!(second_as_queue.answered_once, 0.333);
        assert_eq!(second_as_queue.mixed_items, 1);
        assert_eq!(second_as_queue.cross_product_items, 1, "p1's b and the shop's s share an item");
        // The other way round, the first writer's `a` item mixes x and w, and p1.y spans two items.
        assert_eq!(first_as_queue.distinct_questions, 3);
        assert_eq!(first_as_queue.mixed_items, 1);
        assert_eq!(first_as_queue.answered_once, 0.333, "x is answered once (a's majority); w and y are not");
    }

    #[test]
    fn the_joint_count_says_who_answered_which_question_once() {
        let gold = gold();
        let whole = keys(&[("1", "p1.x"), ("2", "p1.x"), ("3", "p1.x"), ("4", "p1.y"), ("5", "p1.y"), ("6", "shop.z")]);
        let split = keys(&[("1", "p1.x"), ("2", "p1.x"), ("3", "p1.w"), ("4", "p1.y"), ("5", "p1.y"), ("6", "p1.y")]);
        let (person, _) = agreement(&gold, &whole).unwrap();
        let (queue, _) = agreement(&gold, &split).unwrap();
        // The person answers a, b and s once; the "queue" only b.
        assert_eq!(joint(&queue, &person), [1, 0, 2, 0]);
        assert_eq!(joint(&person, &queue), [1, 2, 0, 0]);
        assert_eq!(joint(&queue, &queue), [1, 0, 0, 2]);
    }

    #[test]
    fn question_marks_count_the_lines_taken_against_the_question_lines() {
        let gold = gold();
        let mut marks: HashMap<String, bool> = gold.lines.iter().map(|l| (l.id.clone(), l.q.is_some())).collect();
        assert_eq!(question_lines(&gold, &marks).unwrap(), (6, 6, 6));
        marks.insert("7".into(), true);
        marks.insert("1".into(), false);
        assert_eq!(question_lines(&gold, &marks).unwrap(), (6, 5, 6), "one missed, one other taken");
        marks.remove("3");
        assert!(question_lines(&gold, &marks).unwrap_err().contains("3"));
    }

    #[test]
    fn a_second_writers_file_is_beside_the_stream_or_in_the_directory_given() {
        let stream = Path::new("a/b/s4.jsonl");
        assert_eq!(second_path(stream, None, ".second.tsv"), Path::new("a/b/s4.second.tsv"));
        assert_eq!(
            second_path(stream, Some(Path::new("c")), ".second-questions.tsv"),
            Path::new("c/s4.second-questions.tsv")
        );
    }

    #[test]
    fn an_unkeyed_question_line_is_an_error() {
        let second = keys(&[("1", "p1.x"), ("2", "p1.x"), ("3", "p1.x"), ("4", "p1.y"), ("5", "p1.y")]);
        let e = agreement(&gold(), &second).unwrap_err();
        assert!(e.contains("6"), "{e}");
    }
}
