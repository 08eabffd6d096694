//! Unit tests of the analyzer (`src/pipeline/mod.rs`).

use std::path::Path;

use super::*;

/// The dev lines' texts, with texts that are rejected and romaji questions between them.
fn texts(max_bytes: usize) -> Vec<String> {
    let dev = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/labelled/dev.jsonl"))
        .expect("dev lines");
    let mut texts: Vec<String> = dev
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["text"].as_str().expect("text").into())
        .collect();
    let odd = ["", "  \u{3000} ", &"あ".repeat(max_bytes / 3 + 1), "souryou ikura?", "M no zaiko mada aru?"];
    for (i, t) in odd.iter().cycle().take(40).enumerate() {
        texts.insert(i * 23 + i % 7, t.to_string());
    }
    texts
}

#[test]
fn a_batch_analyzed_stage_by_stage_is_analyzed_as_one_by_one() {
    let engine = Engine::new(PipelineConfig::default()).expect("engine");
    let texts = texts(engine.config.max_message_bytes);
    let mut one = engine.analyzer();
    let expected: Vec<String> = texts.iter().map(|t| format!("{:?}", one.analyze(t))).collect();
    assert!(expected.iter().any(|e| e.starts_with("Err(Empty")), "an empty text among them");
    assert!(expected.iter().any(|e| e.starts_with("Err(TooLarge")), "an oversize text among them");
    assert!(expected.iter().filter(|e| e.contains("frame: Some")).count() > 100, "questions among them");
    // Batches of one, of less than a stage's messages, of exactly that, past it, and all at once.
    for size in [1, 7, STAGED, STAGED + 1, texts.len()] {
        let mut batched = engine.analyzer();
        let got: Vec<String> = texts
            .chunks(size)
            .flat_map(|chunk| {
                let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
                batched.analyze_batch(&chunk)
            })
            .map(|a| format!("{a:?}"))
            .collect();
        assert_eq!(got.len(), expected.len());
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g, e, "batches of {size}, text {i}: {:?}", texts[i]);
        }
    }
}
