//! How alike two questions read, learned: every unit of a question (its concepts, words, kind
//! of ask and the one- and two-character n-grams of the whole message, the units the attribute
//! model reads) has a vector, and a question's vector is the sum of its units', scaled to
//! length 1. Two wordings of one question point the same way; the pair model reads the cosine
//! as one feature among its others (`similar` in [`super::identity`]).
//!
//! The vectors are learned (`kotae train-similarity`) from the training writers' paraphrase
//! clusters: within each writer's set, every text's vector is pulled toward the other wordings
//! of its cluster and away from the set's other texts, near misses included (a softmax over the
//! set, several right answers). The attribute model reads one of 48 attributes; this reads
//! finer: two questions about one attribute can still point apart (a coupon's code, whether
//! coupons combine), and a wording nobody listed finds its paraphrases through the units they
//! share with the wordings the writers used for one another.
//!
//! The model file (`model/similarity.tsv`) has a `dim` row, then one row per unit with its
//! vector (`n:ゴム<TAB>0.12 -0.30 …`); a unit no row names adds nothing. A question's vector is
//! kept as signed bytes, eight to a word, in its frame and in a cluster's packed members.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use super::attribute::{ask_hashes, feature_hash, frame_units};
use super::frame::{Ask, FrameView};

/// A problem with a similarity model file, with its place.
#[derive(Debug, thiserror::Error)]
#[error("similarity model {path}:{line}: {message}")]
pub struct SimilarityError {
    /// The file.
    pub path: PathBuf,
    /// Its line (1-based; 0 for the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The learned unit vectors (empty: no model, every question's vector empty).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimilarityModel {
    dim: usize,
    by_hash: FxHashMap<u64, u32>,
    /// One row of `dim` values per unit, in file order.
    rows: Vec<f32>,
    /// The units' names, in row order (for writing the file).
    names: Vec<String>,
    /// The hash of each kind of ask's unit (`a:show`), by its code.
    asks: Vec<u64>,
}

/// Most dimensions a vector may have: its words are counted in a byte of the packed member.
pub const MAX_DIM: usize = 8 * 255;

/// Whether vectors may have `dim` dimensions: a multiple of 8 (a packed word's bytes), at most
/// [`MAX_DIM`].
pub fn valid_dim(dim: usize) -> bool {
    dim > 0 && dim.is_multiple_of(8) && dim <= MAX_DIM
}

/// Scale of a vector's signed bytes: a component of 1 is 127.
const SCALE: f32 = 127.0;

impl SimilarityModel {
    fn new(dim: usize, names: Vec<String>, rows: Vec<f32>) -> Result<Self, String> {
        if !valid_dim(dim) {
            return Err(format!("dim {dim} is not a multiple of 8 between 8 and {MAX_DIM}"));
        }
        let mut by_hash = FxHashMap::default();
        for (i, name) in names.iter().enumerate() {
            let h = feature_hash(name).ok_or_else(|| format!("'{name}' is not c:, w:, n: or a: and a name"))?;
            if by_hash.insert(h, i as u32).is_some() {
                return Err(format!("'{name}' appears twice"));
            }
        }
        let asks = ask_hashes();
        Ok(Self { dim, by_hash, rows, names, asks })
    }

    /// Whether there is no model.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The vectors' dimensions.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Units with a vector.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// The sum of the rows of the units found and its length; `None` when no unit is known.
    fn sum(&self, hashes: impl Iterator<Item = u64>) -> Option<(Vec<f32>, f32)> {
        let mut v = vec![0.0f32; self.dim];
        let mut found = false;
        for h in hashes {
            if let Some(&r) = self.by_hash.get(&h) {
                let start = r as usize * self.dim;
                for (s, w) in v.iter_mut().zip(&self.rows[start..start + self.dim]) {
                    *s += w;
                }
                found = true;
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        (found && norm > 0.0).then_some((v, norm))
    }

    /// A frame's vector, packed as signed bytes eight to a word into `out` (emptied first; left
    /// empty when the model knows none of its units). `ngrams` are the message's n-gram hashes.
    pub fn embed(&self, f: FrameView<'_>, ngrams: &[u64], out: &mut Vec<u64>) {
        out.clear();
        if self.is_empty() {
            return;
        }
        let ask = (f.ask != Ask::Unknown).then(|| self.asks[f.ask.code() as usize]);
        let units = frame_units(f).chain(ngrams);
        if let Some((v, norm)) = self.sum(units.copied().chain(ask)) {
            pack(&v, norm, out);
        }
    }

    /// The unit vector of named features (training and its checks).
    pub fn vector_of(&self, features: &[String]) -> Option<Vec<f32>> {
        let (v, norm) = self.sum(features.iter().filter_map(|f| feature_hash(f)))?;
        Some(v.iter().map(|x| x / norm).collect())
    }

    /// Reads a model file (see the module's documentation).
    pub fn load(path: &Path) -> Result<Self, SimilarityError> {
        let err = |line: usize, message: String| SimilarityError { path: path.into(), line, message };
        let file = std::fs::File::open(path).map_err(|e| err(0, e.to_string()))?;
        let mut dim = None;
        let (mut names, mut rows) = (Vec::new(), Vec::new());
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| err(n + 1, e.to_string()))?;
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, values) = line.split_once('\t').ok_or_else(|| err(n + 1, "expected name<TAB>values".into()))?;
            if name == "dim" {
                let d: usize = values.trim().parse().map_err(|e| err(n + 1, format!("{e}")))?;
                if !valid_dim(d) {
                    return Err(err(n + 1, format!("dim {d} is not a multiple of 8 between 8 and {MAX_DIM}")));
                }
                dim = Some(d);
                continue;
            }
            let d = dim.ok_or_else(|| err(n + 1, "a vector before the 'dim' row".into()))?;
            let before = rows.len();
            // Split on bytes: a model holds close to a million numbers, and a string split
            // searches for a character.
            for v in values.as_bytes().split(|&b| b == b' ') {
                let x = match parse_decimal(v) {
                    Some(x) => x,
                    None => {
                        let v = String::from_utf8_lossy(v);
                        v.parse().map_err(|e| err(n + 1, format!("'{v}': {e}")))?
                    }
                };
                if !x.is_finite() {
                    return Err(err(n + 1, format!("'{}' is not a finite number", String::from_utf8_lossy(v))));
                }
                rows.push(x);
            }
            if rows.len() - before != d {
                return Err(err(n + 1, format!("{} values, dim is {d}", rows.len() - before)));
            }
            names.push(name.to_string());
        }
        let dim = dim.ok_or_else(|| err(0, "no 'dim' row".into()))?;
        rows.shrink_to_fit();
        Self::new(dim, names, rows).map_err(|m| err(0, m))
    }

    /// Writes the model file, with a header saying where it came from.
    pub fn save(&self, path: &Path, header: &str) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for line in header.lines() {
            writeln!(out, "# {line}")?;
        }
        writeln!(out, "dim\t{}", self.dim)?;
        for (name, row) in self.names.iter().zip(self.rows.chunks(self.dim)) {
            let values: Vec<String> = row.iter().map(|x| format!("{x:.3}")).collect();
            writeln!(out, "{name}\t{}", values.join(" "))?;
        }
        out.flush()
    }
}

/// A number as the model file writes it (`-0.123`: a sign, digits, a point, at most four
/// decimals), read without the general parser: a model holds close to a million of them.
/// `None` for anything else, which the general parser then reads.
fn parse_decimal(v: &[u8]) -> Option<f32> {
    let (negative, digits) = match v.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, v),
    };
    let point = digits.iter().position(|&b| b == b'.')?;
    let (whole, fraction) = (&digits[..point], &digits[point + 1..]);
    if whole.is_empty() || whole.len() > 6 || fraction.is_empty() || fraction.len() > 4 {
        return None;
    }
    let mut n: u32 = 0;
    for &b in whole.iter().chain(fraction) {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(b - b'0');
    }
    let x = n as f32 / [1.0, 10.0, 100.0, 1000.0, 10000.0][fraction.len()];
    Some(if negative { -x } else { x })
}

/// A vector divided by its length `norm`, as signed bytes eight to a word.
fn pack(v: &[f32], norm: f32, out: &mut Vec<u64>) {
    for chunk in v.chunks(8) {
        let mut w = 0u64;
        for (i, x) in chunk.iter().map(|x| x / norm).enumerate() {
            // Rounded half away from zero; the cast saturates at ±127 (a unit vector stays within).
            let b = (x * SCALE + 0.5f32.copysign(x)) as i8;
            w |= u64::from(b as u8) << (8 * i);
        }
        out.push(w);
    }
}

/// The cosine of two packed vectors, at least 0 (pointing apart says no more than pointing
/// across); 0 when either is empty or their sizes differ (a model reloaded with another `dim`).
pub fn cosine(a: &[u64], b: &[u64]) -> f32 {
    if a.is_empty() || a.len() != b.len() {
        return 0.0;
    }
    let dot = dot_i8(a, b);
    (dot as f32 / (SCALE * SCALE)).clamp(0.0, 1.0)
}

/// The dot product of two packed vectors of the same length (signed bytes, eight to a word).
fn dot_i8(a: &[u64], b: &[u64]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_add_epi32, _mm_cmpgt_epi8, _mm_loadu_si128, _mm_madd_epi16, _mm_setzero_si128,
            _mm_storeu_si128, _mm_unpackhi_epi8, _mm_unpacklo_epi8,
        };
        let pairs = a.len().min(b.len()) / 2;
        let mut lanes = [0i32; 4];
        // SAFETY: SSE2 is part of every x86_64 processor; each load reads the two words at
        // 2i and 2i + 1, within both slices (i < pairs), unaligned loads allowed.
        unsafe {
            let zero = _mm_setzero_si128();
            let mut acc = zero;
            for i in 0..pairs {
                let x = _mm_loadu_si128(a.as_ptr().add(2 * i).cast::<__m128i>());
                let y = _mm_loadu_si128(b.as_ptr().add(2 * i).cast::<__m128i>());
                // Bytes widened to 16 bits with their signs, multiplied, summed in pairs.
                let (sx, sy) = (_mm_cmpgt_epi8(zero, x), _mm_cmpgt_epi8(zero, y));
                acc = _mm_add_epi32(acc, _mm_madd_epi16(_mm_unpacklo_epi8(x, sx), _mm_unpacklo_epi8(y, sy)));
                acc = _mm_add_epi32(acc, _mm_madd_epi16(_mm_unpackhi_epi8(x, sx), _mm_unpackhi_epi8(y, sy)));
            }
            _mm_storeu_si128(lanes.as_mut_ptr().cast::<__m128i>(), acc);
        }
        let tail = a[2 * pairs..].iter().zip(&b[2 * pairs..]).map(|(x, y)| dot_word(*x, *y));
        lanes.iter().sum::<i32>() + tail.sum::<i32>()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        a.iter().zip(b).map(|(x, y)| dot_word(*x, *y)).sum()
    }
}

/// The dot product of one word of each vector.
fn dot_word(x: u64, y: u64) -> i32 {
    let (x, y) = (x.to_le_bytes(), y.to_le_bytes());
    (0..8).map(|i| i32::from(x[i] as i8) * i32::from(y[i] as i8)).sum()
}

/// One text to learn from: the cluster it belongs to (unique across all sets) and its units.
#[derive(Debug, Clone)]
pub struct Example {
    /// Its cluster; a near miss's side is a cluster of its own.
    pub cluster: u32,
    /// Its feature names (as [`super::attribute::feature_names`] writes them).
    pub features: Vec<String>,
}

/// Settings of a fit.
#[derive(Debug, Clone, Copy)]
pub struct Fit {
    /// Dimensions of the vectors (a multiple of 8).
    pub dim: usize,
    /// Passes over the sets.
    pub epochs: usize,
    /// A unit gets a vector when at least this many texts name it.
    pub min_count: usize,
    /// How sharply the softmax over a set reads the cosines.
    pub scale: f32,
    /// Adagrad's step.
    pub rate: f32,
}

impl Default for Fit {
    fn default() -> Self {
        Self { dim: 64, epochs: 8, min_count: 2, scale: 10.0, rate: 0.2 }
    }
}

/// A deterministic start for a unit's vector: small values from its index (no two units alike).
fn start_value(row: usize, d: usize) -> f32 {
    let mut x = (row as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (d as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    // Uniform in ±0.17: about the spread of a normal start of 0.1.
    ((x >> 11) as f32 / (1u64 << 53) as f32 - 0.5) * 0.34
}

/// Fits the vectors on sets of examples, one set per writer: each text is pulled toward the
/// other texts of its cluster and pushed from the rest of its set.
pub fn train(sets: &[Vec<Example>], fit: Fit) -> SimilarityModel {
    let dim = fit.dim;
    // The units named by at least `min_count` texts, in name order; names a frame hashes alike
    // (w:NG, w:ng) are one unit, written under the first.
    let mut count: FxHashMap<u64, (usize, &str)> = FxHashMap::default();
    for e in sets.iter().flatten() {
        for f in &e.features {
            if let Some(h) = feature_hash(f) {
                let entry = count.entry(h).or_insert((0, f.as_str()));
                entry.0 += 1;
                entry.1 = entry.1.min(f.as_str());
            }
        }
    }
    let mut names: Vec<&str> = count.values().filter(|&&(c, _)| c >= fit.min_count).map(|&(_, n)| n).collect();
    names.sort_unstable();
    let index: FxHashMap<u64, usize> =
        names.iter().enumerate().filter_map(|(i, n)| Some((feature_hash(n)?, i))).collect();
    let mut rows: Vec<f32> = (0..names.len() * dim).map(|k| start_value(k / dim, k % dim)).collect();
    let mut squares = vec![1e-6f32; names.len()];
    // Each set's texts as row lists; texts naming no known unit teach nothing.
    let sets: Vec<Vec<(u32, Vec<usize>)>> = sets
        .iter()
        .map(|s| {
            s.iter()
                .map(|e| {
                    let mut rows: Vec<usize> =
                        e.features.iter().filter_map(|f| index.get(&feature_hash(f)?).copied()).collect();
                    rows.sort_unstable();
                    rows.dedup();
                    (e.cluster, rows)
                })
                .filter(|(_, r): &(u32, Vec<usize>)| !r.is_empty())
                .collect()
        })
        .collect();
    let mut order: Vec<usize> = (0..sets.len()).collect();
    for epoch in 0..fit.epochs {
        // A different order every pass, the same every run.
        order.sort_by_key(|&i| (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(epoch as u32 * 7 + 1));
        for &s in &order {
            step(&sets[s], &mut rows, &mut squares, dim, fit);
        }
    }
    let names = names.into_iter().map(str::to_string).collect();
    SimilarityModel::new(dim, names, rows).expect("trained names are features")
}

/// One step on one writer's set: a softmax over the set's other texts for every text with a
/// paraphrase in it, the loss the share of its paraphrases.
fn step(set: &[(u32, Vec<usize>)], rows: &mut [f32], squares: &mut [f32], dim: usize, fit: Fit) {
    let n = set.len();
    if n < 2 {
        return;
    }
    // Each text's sum (scaled by the root of its size), its length and its unit vector.
    let mut sums = vec![0.0f32; n * dim];
    let mut norms = vec![0.0f32; n];
    for (i, (_, units)) in set.iter().enumerate() {
        let v = &mut sums[i * dim..(i + 1) * dim];
        let k = 1.0 / (units.len() as f32).sqrt();
        for &r in units {
            for (s, w) in v.iter_mut().zip(&rows[r * dim..(r + 1) * dim]) {
                *s += w * k;
            }
        }
        norms[i] = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-8);
    }
    let unit: Vec<f32> = sums.iter().enumerate().map(|(k, x)| x / norms[k / dim]).collect();
    let row = |m: &[f32], i: usize| -> Vec<f32> { m[i * dim..(i + 1) * dim].to_vec() };
    let anchors: Vec<usize> = (0..n).filter(|&i| (0..n).any(|j| j != i && set[j].0 == set[i].0)).collect();
    if anchors.is_empty() {
        return;
    }
    // d(loss)/d(score) for every pair, then the gradient on the unit vectors.
    let mut grad_unit = vec![0.0f32; n * dim];
    let per = 1.0 / anchors.len() as f32;
    for &i in &anchors {
        let ui = row(&unit, i);
        let mut scores: Vec<f32> = (0..n)
            .map(|j| {
                if j == i {
                    f32::NEG_INFINITY
                } else {
                    fit.scale * ui.iter().zip(&unit[j * dim..(j + 1) * dim]).map(|(a, b)| a * b).sum::<f32>()
                }
            })
            .collect();
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0;
        for s in &mut scores {
            *s = (*s - max).exp();
            total += *s;
        }
        let p: Vec<f32> = scores.iter().map(|s| s / total).collect();
        let same: f32 = (0..n).filter(|&j| j != i && set[j].0 == set[i].0).map(|j| p[j]).sum::<f32>().max(1e-12);
        for j in 0..n {
            if j == i {
                continue;
            }
            let q = if set[j].0 == set[i].0 { p[j] / same } else { 0.0 };
            let g = (p[j] - q) * per * fit.scale;
            if g == 0.0 {
                continue;
            }
            // score = scale · uᵢ·uⱼ: both vectors move.
            for d in 0..dim {
                grad_unit[i * dim + d] += g * unit[j * dim + d];
                grad_unit[j * dim + d] += g * unit[i * dim + d];
            }
        }
    }
    // Through the scaling to length 1 and the sum, onto the rows (Adagrad, one rate per row).
    for (i, (_, units)) in set.iter().enumerate() {
        let u = &unit[i * dim..(i + 1) * dim];
        let gu = &grad_unit[i * dim..(i + 1) * dim];
        let along: f32 = u.iter().zip(gu).map(|(a, b)| a * b).sum();
        let k = 1.0 / (units.len() as f32).sqrt();
        let gv: Vec<f32> = u.iter().zip(gu).map(|(a, b)| (b - a * along) / norms[i] * k).collect();
        let mean_square = gv.iter().map(|x| x * x).sum::<f32>() / dim as f32;
        if mean_square == 0.0 {
            continue;
        }
        for &r in units {
            squares[r] += mean_square;
            let step = fit.rate / squares[r].sqrt();
            for (w, g) in rows[r * dim..(r + 1) * dim].iter_mut().zip(&gv) {
                *w -= step * g;
            }
        }
    }
}

/// How well the vectors tell pairs of one cluster from pairs of two, whatever the cut: the
/// share of (same, different) pairs whose same pair is the closer (ties count half).
pub fn pair_auc(model: &SimilarityModel, examples: &[Example]) -> f64 {
    let vectors: Vec<Option<Vec<f32>>> = examples.iter().map(|e| model.vector_of(&e.features)).collect();
    let (mut same, mut different) = (Vec::new(), Vec::new());
    for i in 0..examples.len() {
        for j in i + 1..examples.len() {
            let c = match (&vectors[i], &vectors[j]) {
                (Some(a), Some(b)) => a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>(),
                _ => 0.0,
            };
            if examples[i].cluster == examples[j].cluster { same.push(c) } else { different.push(c) }
        }
    }
    if same.is_empty() || different.is_empty() {
        return 0.5;
    }
    let mut all: Vec<(f32, bool)> =
        same.iter().map(|&c| (c, true)).chain(different.iter().map(|&c| (c, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Mann–Whitney: the same pairs' ranks, ties sharing their mean rank.
    let mut rank_sum = 0.0f64;
    let mut k = 0;
    while k < all.len() {
        let mut end = k;
        while end < all.len() && all[end].0 == all[k].0 {
            end += 1;
        }
        let mean_rank = (k + 1 + end) as f64 / 2.0;
        rank_sum += mean_rank * all[k..end].iter().filter(|x| x.1).count() as f64;
        k = end;
    }
    let (s, d) = (same.len() as f64, different.len() as f64);
    (rank_sum - s * (s + 1.0) / 2.0) / (s * d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(cluster: u32, features: &[&str]) -> Example {
        Example { cluster, features: features.iter().map(|s| s.to_string()).collect() }
    }

    /// Two writers' sets where 横幅 and 端から端 ask one thing and 奥行き and 深さ another, the
    /// wordings of one question sharing no unit but the kind of ask, which other questions share.
    fn sets() -> Vec<Vec<Example>> {
        let set = |base: u32| {
            vec![
                ex(base, &["n:横幅", "a:amount"]),
                ex(base, &["n:端か", "n:から", "a:amount"]),
                ex(base + 1, &["n:奥行", "a:amount"]),
                ex(base + 1, &["n:深さ", "a:amount"]),
                ex(base + 2, &["n:在庫", "a:exists"]),
                ex(base + 2, &["n:残っ", "a:exists"]),
            ]
        };
        vec![set(1), set(4)]
    }

    #[test]
    fn paraphrases_sharing_no_unit_end_closer_than_near_misses() {
        let fit = Fit { dim: 16, epochs: 60, ..Default::default() };
        let m = train(&sets(), fit);
        let v = |f: &[&str]| m.vector_of(&f.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let wide = v(&["n:横幅"]);
        let edge = v(&["n:端か", "n:から"]);
        let deep = v(&["n:奥行"]);
        assert!(dot(&wide, &edge) > dot(&wide, &deep) + 0.3, "{} {}", dot(&wide, &edge), dot(&wide, &deep));
        // Before any pass, the start tells them apart no better.
        let m0 = train(&sets(), Fit { epochs: 0, ..fit });
        let v0 = |f: &[&str]| m0.vector_of(&f.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let (w0, e0, d0) = (v0(&["n:横幅"]), v0(&["n:端か", "n:から"]), v0(&["n:奥行"]));
        assert!(dot(&w0, &e0) < dot(&w0, &d0) + 0.3);
        // Each writer's set on its own (cluster numbers are the writer's).
        for set in sets() {
            assert!(pair_auc(&m, &set) > pair_auc(&m0, &set), "{} {}", pair_auc(&m, &set), pair_auc(&m0, &set));
        }
    }

    #[test]
    fn the_file_s_decimals_read_as_the_general_parser_reads_them() {
        for v in ["0.123", "-0.123", "12.5", "-3.0", "0.0005", "-0.0001", "7.1234"] {
            assert_eq!(parse_decimal(v.as_bytes()), Some(v.parse::<f32>().unwrap()), "{v}");
        }
        for v in ["1e-3", ".5", "5.", "1.23456", "-", "1.2.3", "a.1", "1234567.1", "+1.0"] {
            assert_eq!(parse_decimal(v.as_bytes()), None, "{v}");
        }
    }

    proptest::proptest! {
        /// The vector dot product is the plain one, for every length and sign (-128 included).
        #[test]
        fn the_dot_product_is_the_bytes_products_summed(words in proptest::collection::vec(proptest::prelude::any::<(u64, u64)>(), 0..20)) {
            let (a, b): (Vec<u64>, Vec<u64>) = words.into_iter().unzip();
            let plain: i32 = a.iter().zip(&b).map(|(x, y)| dot_word(*x, *y)).sum();
            proptest::prop_assert_eq!(dot_i8(&a, &b), plain);
        }
    }

    #[test]
    fn packed_vectors_keep_their_cosine() {
        let m = train(&sets(), Fit { dim: 16, epochs: 20, ..Default::default() });
        let a = m.vector_of(&["n:横幅".to_string(), "a:amount".to_string()]).unwrap();
        let b = m.vector_of(&["n:端か".to_string()]).unwrap();
        let (mut pa, mut pb) = (Vec::new(), Vec::new());
        pack(&a, 1.0, &mut pa);
        pack(&b, 1.0, &mut pb);
        assert_eq!(pa.len(), 2);
        let exact = a.iter().zip(&b).map(|(x, y)| x * y).sum::<f32>().max(0.0);
        assert!((cosine(&pa, &pb) - exact).abs() < 0.03, "{} {exact}", cosine(&pa, &pb));
        assert!((cosine(&pa, &pa) - 1.0).abs() < 0.03);
        assert_eq!(cosine(&pa, &[]), 0.0);
        assert_eq!(cosine(&pa, &pb[..1]), 0.0);
    }

    #[test]
    fn a_saved_model_reads_back_and_a_bad_line_is_named() {
        let m = train(&sets(), Fit { dim: 8, epochs: 5, ..Default::default() });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("similarity.tsv");
        m.save(&path, "test").unwrap();
        let back = SimilarityModel::load(&path).unwrap();
        assert_eq!((back.dim(), back.len()), (8, m.len()));
        let f = ["n:横幅".to_string(), "a:amount".to_string()];
        let (a, b) = (m.vector_of(&f).unwrap(), back.vector_of(&f).unwrap());
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 0.01));

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let broken = format!("{}\n{}\nn:幅\t0.1 0.2\n", lines[0], lines[1]);
        std::fs::write(&path, broken).unwrap();
        let e = SimilarityModel::load(&path).unwrap_err().to_string();
        assert!(e.contains(":3:") && e.contains("2 values, dim is 8"), "{e}");
        std::fs::write(&path, "dim\t12\n").unwrap();
        let e = SimilarityModel::load(&path).unwrap_err().to_string();
        assert!(e.contains(":1:") && e.contains("multiple of 8"), "{e}");
        std::fs::write(&path, "dim\t8\nn:幅\t0.1 x 0 0 0 0 0 0\n").unwrap();
        let e = SimilarityModel::load(&path).unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("'x'"), "{e}");
        std::fs::write(&path, "dim\t8\nz:幅\t0 0 0 0 0 0 0 0\n").unwrap();
        let e = SimilarityModel::load(&path).unwrap_err().to_string();
        assert!(e.contains("is not c:, w:, n: or a:"), "{e}");
    }
}
