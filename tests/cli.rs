//! The `kotae classify` and `kotae eval` contracts, driven through the real binary.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn kotae(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kotae"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // The tokenizer cache of the checkout; no moderator edits over the built-in lists.
        .env("KOTAE_CACHE", Path::new(env!("CARGO_MANIFEST_DIR")).join(".kotae"))
        .env("XDG_DATA_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-no-edits"))
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
    // `ja.spam.contact_word` holds the bare word; `ja.spam.line_contact`, asking to add it.
    let line = reasons.iter().find(|r| r["rule"] == "ja.spam.contact_word").expect("line rule fires");
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

#[test]
fn a_missing_model_stops_start_up_and_check() {
    let dir = dictionary_copy();
    std::fs::remove_file(dir.path().join("model/ja.tsv")).unwrap();
    let dict = dir.path().to_str().unwrap();
    for command in ["classify", "check"] {
        let out = kotae(&["--dict", dict, command], b"{\"text\":\"hi\"}\n");
        assert_eq!(out.status.code(), Some(64), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("model/ja.tsv") && err.contains("No such file"), "{command}: {err}");
    }
    let out = kotae(&["--dict", dict, "classify"], b"{\"text\":\"hi\"}\n");
    assert!(out.stdout.is_empty(), "no verdict from rules alone");
}

#[test]
fn abuse_verdicts_carry_their_category_and_severity_decides_the_action() {
    let out = classify("{\"text\":\"殺すぞ\"}\n{\"text\":\"詐欺じゃん\"}\n{\"text\":\"送料いくら\"}\n".as_bytes());
    assert_eq!((out[0]["abuse_category"].as_str(), out[0]["action"].as_str()), (Some("threat"), Some("block")));
    assert_eq!((out[1]["abuse_category"].as_str(), out[1]["action"].as_str()), (Some("fraud"), Some("hold")));
    assert!(out[2].get("abuse_category").is_none());
}

#[test]
fn explain_shows_the_character_ngrams_that_mattered() {
    let out = kotae(&["explain", "ぶ💢す過ぎて無理"], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ngrams = e["ngrams"].as_array().unwrap();
    assert!(!ngrams.is_empty(), "{e}");
    assert!(ngrams.iter().all(|g| g["name"].as_str().unwrap().starts_with("c:") && g["weights"].is_array()));
    assert!(ngrams.iter().any(|g| g["name"] == "c:ぶす"), "the letters across the emoji: {ngrams:?}");
    assert_eq!(e["category"], "appearance");
}

/// Labelled lines of three writers in a temporary directory, one file each.
fn three_writers() -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        ("送料いくらですか", "question"),
        ("Mサイズありますか", "question"),
        ("ポチった", "purchase_intent"),
        ("カートに入れました", "purchase_intent"),
        ("LINE交換しよ ID:abc123", "spam"),
        ("殺すぞ", "abuse"),
        ("こんばんは", "other"),
        ("かわいい", "other"),
    ];
    let mut files = Vec::new();
    for w in ["w-a", "w-b", "w-c"] {
        let body: String = lines
            .iter()
            .map(|(t, l)| format!("{{\"text\":\"{t}{w}\",\"labels\":[\"{l}\"],\"writer\":\"{w}\"}}\n"))
            .collect();
        let path = dir.path().join(format!("{w}.jsonl"));
        std::fs::write(&path, body).unwrap();
        files.push(path.to_str().unwrap().to_string());
    }
    (dir, files)
}

#[test]
fn eval_by_writer_reports_each_writer_and_the_worst() {
    let (_dir, files) = three_writers();
    let args: Vec<&str> =
        ["eval", "--json", "--by", "writer"].into_iter().chain(files.iter().map(|f| f.as_str())).collect();
    let out = kotae(&args, b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["lines"], 24);
    for w in ["w-a", "w-b", "w-c"] {
        assert_eq!(report["writers"][w]["lines"], 8, "{report}");
        assert!(report["writers"][w]["labels"]["question"]["f1"].is_number());
    }
    for label in ["question", "purchase_intent", "spam", "abuse"] {
        let worst = report["worst"][label]["writer"].as_str().unwrap();
        assert!(worst.starts_with("w-"), "{label}: {worst}");
    }
    let table = kotae(&["eval", "--by", "writer", &files[0], &files[1]], b"");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("F1 by writer") && table.contains("worst writer"), "{table}");
}

#[test]
fn train_cv_by_writer_predicts_each_writer_with_a_model_of_the_others() {
    let (_dir, files) = three_writers();
    let dict = dictionary_copy();
    let model = dict.path().join("model/ja.tsv");
    let before = std::fs::read(&model).unwrap();
    let args: Vec<&str> = ["--dict", dict.path().to_str().unwrap(), "train", "--cv-by", "writer", "--json"]
        .into_iter()
        .chain(files.iter().map(|f| f.as_str()))
        .collect();
    let out = kotae(&args, b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["writers"].as_object().unwrap().len(), 3, "{report}");
    assert!(report["worst"]["question"]["f1"].is_number());
    assert_eq!(std::fs::read(&model).unwrap(), before, "cross-validation writes no model");
}

#[test]
fn a_trained_model_lists_its_ngrams_and_passes_check() {
    let (_dir, files) = three_writers();
    let dict = dictionary_copy();
    let d = dict.path().to_str().unwrap();
    let args: Vec<&str> =
        ["--dict", d, "train", "--min-ngram-count", "2"].into_iter().chain(files.iter().map(|f| f.as_str())).collect();
    let out = kotae(&args, b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let model = std::fs::read_to_string(dict.path().join("model/ja.tsv")).unwrap();
    assert!(model.lines().any(|l| l.starts_with("c:")), "character n-gram rows");
    assert!(model.lines().any(|l| l.starts_with("# feature\tquestion\tpurchase_intent\tspam\tabuse\tinsult")));
    let check = kotae(&["--dict", d, "check"], b"");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(String::from_utf8_lossy(&check.stdout).contains("character n-grams"));
}

/// A configuration file that listens beyond loopback may leave its tokens to the environment
/// (a Kubernetes Secret): they count when the file is validated.
#[test]
fn tokens_from_the_environment_satisfy_a_file_listening_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kotae.toml");
    std::fs::write(&config, "[server]\nlisten = \"0.0.0.0:7878\"\n").unwrap();
    let run = |tokens: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kotae"));
        c.args(["--config", config.to_str().unwrap(), "check"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("KOTAE_CACHE", Path::new(env!("CARGO_MANIFEST_DIR")).join(".kotae"))
            .env("XDG_DATA_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-no-edits"))
            .env_remove("KOTAE_INGEST_TOKENS")
            .env_remove("KOTAE_HOST_TOKENS");
        if tokens {
            c.env("KOTAE_INGEST_TOKENS", "ingest-token-from-env-01")
                .env("KOTAE_HOST_TOKENS", "host-token-from-env-0001");
        }
        c.output().unwrap()
    };
    let without = run(false);
    assert_eq!(without.status.code(), Some(64), "{}", String::from_utf8_lossy(&without.stderr));
    let with = run(true);
    assert!(with.status.success(), "{}", String::from_utf8_lossy(&with.stderr));
}

/// `KOTAE_LOG_FORMAT=json`: every log line is a JSON object.
#[test]
fn logs_are_json_lines_when_asked() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kotae"))
        .arg("classify")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("KOTAE_CACHE", Path::new(env!("CARGO_MANIFEST_DIR")).join(".kotae"))
        .env("XDG_DATA_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-no-edits"))
        .env("KOTAE_LOG", "info")
        .env("KOTAE_LOG_FORMAT", "json")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"{\"text\":\"hi\"}\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.trim().is_empty(), "an info line is logged");
    for line in stderr.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
}
