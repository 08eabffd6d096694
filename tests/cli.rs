//! The `kotae classify` and `kotae eval` contracts, driven through the real binary.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn kotae(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kotae"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kotae");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn classify(input: &[u8]) -> Vec<Value> {
    let out = kotae(&["classify"], input);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn labels(v: &Value) -> Vec<&str> {
    v["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect()
}

#[test]
fn one_verdict_per_line_in_order_with_ids_echoed() {
    let input = "{\"text\":\"これって敏感肌でも使えますか\",\"id\":\"m1\"}\n{\"text\":\"ポチった！\"}\n{\"text\":\"LINE交換しよ ID:abc123\",\"id\":7}\n{\"text\":\"こんばんは〜\"}\n";
    let out = classify(input.as_bytes());
    let ids: Vec<&str> = out.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["m1", "2", "7", "4"]);
    assert_eq!(labels(&out[0]), ["question"]);
    assert!(out[0]["cluster"].is_string());
    assert_eq!(labels(&out[1]), ["purchase_intent"]);
    assert!(out[1].get("cluster").is_none(), "clusters are for questions only");
    assert_eq!(labels(&out[2]), ["spam"]);
    assert_eq!(out[2]["action"], "block");
    assert_eq!(labels(&out[3]), ["other"]);
    assert_eq!(out[3]["action"], "allow");
    for key in ["question", "purchase_intent", "spam", "abuse"] {
        assert!(out[0]["scores"][key].is_number());
    }
}

#[test]
fn reasons_carry_byte_spans_into_the_original_text() {
    let text = "ＬＩＮＥ追加してね";
    let out = classify(format!("{{\"text\":\"{text}\"}}\n").as_bytes());
    let reasons = out[0]["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty());
    for r in reasons {
        let (s, e) = (r["span"][0].as_u64().unwrap() as usize, r["span"][1].as_u64().unwrap() as usize);
        assert!(s <= e && e <= text.len() && text.is_char_boundary(s) && text.is_char_boundary(e), "{r}");
    }
    let line = reasons.iter().find(|r| r["rule"] == "ja.spam.line_contact").expect("line rule fires");
    let (s, e) = (line["span"][0].as_u64().unwrap() as usize, line["span"][1].as_u64().unwrap() as usize);
    assert_eq!(&text[s..e], "ＬＩＮＥ");
}

#[test]
fn bad_lines_get_errors_and_processing_goes_on() {
    let mut input = Vec::new();
    input.extend_from_slice(b"{\"text\": \"Mmore\"\n"); // invalid JSON
    input.extend_from_slice(b"{\"id\":\"x\",\"user\":\"a\"}\n"); // no text
    input.extend_from_slice(format!("{{\"text\":\"{}\"}}\n", "あ".repeat(400_000)).as_bytes()); // 1.2 MB line
    input.extend_from_slice(b"{\"text\":\"\xff\xfe\"}\n"); // invalid UTF-8
    input.extend_from_slice(b"\n"); // empty line
    input.extend_from_slice(format!("{{\"text\":\"{}\"}}\n", "い".repeat(2000)).as_bytes()); // 6 KB text, over the message limit
    input.extend_from_slice("{\"text\":\"送料いくらですか\"}".as_bytes()); // last line, no newline
    let out = classify(&input);
    assert_eq!(out.len(), 7, "one line out per line in");
    let errors: Vec<(&str, &str)> =
        out[..6].iter().map(|v| (v["id"].as_str().unwrap(), v["error"].as_str().expect("error line"))).collect();
    assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), ["1", "x", "3", "4", "5", "6"]);
    assert!(errors[0].1.starts_with("invalid json"), "{errors:?}");
    assert!(errors[1].1.contains("missing field `text`"), "{errors:?}");
    assert!(errors[2].1.contains("over the size limit"), "{errors:?}");
    assert!(errors[3].1.contains("invalid utf-8"), "{errors:?}");
    assert!(errors[4].1.contains("empty"), "{errors:?}");
    assert!(errors[5].1.contains("over the limit"), "{errors:?}");
    assert_eq!(labels(&out[6]), ["question"]);
}

#[test]
fn empty_input_gives_empty_output() {
    assert!(classify(b"").is_empty());
}

/// A copy of the shipped dictionaries (and model) in a temporary directory.
fn dictionary_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("dictionaries/ja");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txt") {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::create_dir(dir.path().join("model")).unwrap();
    std::fs::copy(src.join("model/ja.tsv"), dir.path().join("model/ja.tsv")).unwrap();
    std::fs::copy(src.join("model/identity.tsv"), dir.path().join("model/identity.tsv")).unwrap();
    dir
}

#[test]
fn a_term_a_moderator_adds_takes_effect_without_recompiling() {
    let line = "{\"text\":\"ぴよぴよ商会で検討してね\"}\n";
    let before = kotae(&["classify"], line.as_bytes());
    let before: Value = serde_json::from_slice(&before.stdout).unwrap();
    assert_eq!(labels(&before), ["other"]);
    let dir = dictionary_copy();
    let spam = dir.path().join("spam.txt");
    let text = std::fs::read_to_string(&spam)
        .unwrap()
        .replace("[other_shop => spam]\n", "[other_shop => spam]\nぴよぴよ商会\n");
    std::fs::write(&spam, text).unwrap();
    let after = kotae(&["--dict", dir.path().to_str().unwrap(), "classify"], line.as_bytes());
    assert!(after.status.success(), "{}", String::from_utf8_lossy(&after.stderr));
    let after: Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(labels(&after), ["spam"]);
    assert!(after["reasons"].as_array().unwrap().iter().any(|r| r["rule"] == "ja.spam.other_shop"));
}

#[test]
fn a_broken_dictionary_is_reported_with_file_and_line() {
    let dir = dictionary_copy();
    let broken = dir.path().join("abuse.txt");
    let mut text = std::fs::read_to_string(&broken).unwrap();
    text.push_str("[oops\nバカ | loud\n");
    std::fs::write(&broken, text).unwrap();
    let lines = std::fs::read_to_string(&broken).unwrap().lines().count();
    let out = kotae(&["--dict", dir.path().to_str().unwrap(), "classify"], b"{\"text\":\"hi\"}\n");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("abuse.txt:{}: section header must end with ']'", lines - 1)), "{err}");
    assert!(err.contains(&format!("abuse.txt:{lines}: unknown flag 'loud'")), "{err}");
}

#[test]
fn repeated_questions_share_a_cluster_and_different_ones_do_not() {
    let lines = ["送料いくらですか", "送料っていくら？", "Mの在庫ありますか", "Mの着丈は？"]
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{{\"text\":\"{t}\",\"user\":\"u{i}\"}}\n"))
        .collect::<String>();
    let out = classify(lines.as_bytes());
    let c: Vec<&str> = out.iter().map(|v| v["cluster"].as_str().unwrap()).collect();
    assert_eq!(c[0], c[1]);
    assert_ne!(c[2], c[3]);
    assert_ne!(c[0], c[2]);
}

#[test]
fn eval_json_has_the_contract_shape() {
    let out = kotae(&["eval", "--json", "fixtures/labelled/test.jsonl"], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    for label in ["question", "purchase_intent", "spam", "abuse"] {
        for k in ["precision", "recall", "f1", "support"] {
            assert!(report["labels"][label][k].is_number(), "{label}.{k}");
        }
    }
    assert!(report["micro_f1"].is_number() && report["macro_f1"].is_number());
}
