//! Per-stage and end-to-end throughput on the fixture messages (labelled lines plus the demo
//! stream), single-threaded, with bare Lindera segmentation measured on the same messages in the
//! same run as the baseline. `cargo bench --bench pipeline`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lindera::mode::Mode;
use lindera::segmenter::Segmenter;

use kotae::pipeline::normalize::{NormalizeConfig, Normalized, Normalizer};
use kotae::pipeline::{Engine, Meta, PipelineConfig};

fn messages() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for file in ["fixtures/labelled/dev.jsonl", "fixtures/labelled/test.jsonl", "fixtures/streams/demo.jsonl"] {
        for line in std::fs::read_to_string(root.join(file)).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            out.push(v["text"].as_str().unwrap().to_string());
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let msgs = messages();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = PipelineConfig { dictionaries: Some(root.join("dictionaries/ja")), ..PipelineConfig::default() };
    let engine = Engine::new(config.clone()).unwrap();
    let dictionary = kotae::ipadic::load(&config.tokenize.cache_dir).unwrap();
    let mut worker = Segmenter::new(Mode::Normal, dictionary, None).into_worker();

    let mut g = c.benchmark_group("stage");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.bench_function("lindera_bare_segment", |b| {
        b.iter(|| {
            let mut n = 0;
            for m in &msgs {
                n += worker.segment(m).map_or(0, |t| t.len());
            }
            black_box(n)
        })
    });
    let mut normalizer = Normalizer::new(&NormalizeConfig::default());
    let mut norm = Normalized::default();
    g.bench_function("normalize", |b| {
        b.iter(|| {
            for m in &msgs {
                normalizer.process(m, &mut norm);
            }
            black_box(norm.key.as_str().len())
        })
    });
    let mut analyzer = engine.analyzer();
    g.bench_function("normalize_tokenize_classify", |b| {
        b.iter(|| {
            let mut n = 0;
            for m in &msgs {
                n += analyzer.analyze(m).map_or(0, |a| a.classification.labels.iter().count());
            }
            black_box(n)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("end_to_end");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    // Senders as a platform names them: 300 viewers taking turns.
    let users: Vec<String> = (0..300).map(|u| format!("u{u}")).collect();
    g.bench_function("pipeline_with_dedupe", |b| {
        b.iter(|| {
            let mut state = engine.stream_state();
            let mut n = 0;
            for (i, m) in msgs.iter().enumerate() {
                if let Ok(a) = analyzer.analyze(m) {
                    let user = &users[i % users.len()];
                    n += state.process(Meta { user: Some(user), ts: i as u64 * 100, product: None }, a).repeats;
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
