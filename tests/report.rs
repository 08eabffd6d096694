//! `kotae report` on the journal of the bundled demo stream (a real `kotae demo` with a few
//! questions answered, pinned and dismissed): every number agrees with the journal, recounted
//! here with SQL; empty, missing and foreign journals get a clear error; a journal of the
//! previous schema is read, and migrated by the server, without loss.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use rusqlite::Connection;
use serde_json::{Value, json};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn kotae(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kotae")).args(args).current_dir(root()).output().expect("run kotae")
}

/// `kotae report` on `journal` for the demo stream; stdout (panics unless it succeeds).
fn report(journal: &Path, format: &str, extra: &[&str]) -> String {
    let mut args = vec!["report", "--journal", journal.to_str().unwrap(), "--stream", "demo", "--format", format];
    args.extend_from_slice(extra);
    let out = kotae(&args);
    assert!(out.status.success(), "kotae report failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// What the demo journal holds beyond the replay: the host's actions.
struct Demo {
    journal: PathBuf,
    answered_with_text: String,
    answered_aloud: String,
    pinned: String,
    dismissed: String,
}

const ANSWER: &str = "全国一律500円、5,000円以上で送料無料です";

/// Runs `kotae demo` once (it replays the bundled stream through a real server), answers two
/// questions (one with a text), pins one and dismisses one over the API, and stops it with
/// SIGTERM so the journal is complete.
fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let journal = dir.join("demo.db");
        let config = dir.join("kotae.toml");
        std::fs::write(
            &config,
            format!(
                "[pipeline.tokenize]\ncache_dir = {:?}\n[server]\nreload_dictionaries = false\n[server.journal]\npath = {:?}\n",
                root().join(".kotae"),
                journal
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_kotae"))
            .args(["--config", config.to_str().unwrap(), "demo"])
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kotae demo");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let addr = first
            .strip_prefix("kotae serve listening on http://")
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("{first}"))
            .to_string();
        for line in lines.by_ref() {
            if line.unwrap().starts_with("still serving") {
                break;
            }
        }
        let rt = tokio::runtime::Runtime::new().unwrap();
        let ids = rt.block_on(async {
            use kotae::commands::client::http;
            let (_, body) = http(&addr, "GET", "/v1/streams/demo/questions", None, None).await.unwrap();
            let list: Value = serde_json::from_str(&body).unwrap();
            let ids: Vec<String> =
                list["questions"].as_array().unwrap().iter().map(|q| q["id"].as_str().unwrap().to_string()).collect();
            let answer = json!({ "answer": ANSWER }).to_string();
            let act = |id: &str, action: &str| format!("/v1/streams/demo/questions/{id}/{action}");
            assert_eq!(http(&addr, "POST", &act(&ids[0], "answered"), None, Some(&answer)).await.unwrap().0, 200);
            assert_eq!(http(&addr, "POST", &act(&ids[1], "answered"), None, None).await.unwrap().0, 200);
            assert_eq!(http(&addr, "POST", &act(&ids[2], "pin"), None, None).await.unwrap().0, 200);
            assert_eq!(http(&addr, "POST", &act(&ids[3], "dismiss"), None, None).await.unwrap().0, 200);
            ids
        });
        assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
        for _ in lines.by_ref() {}
        assert!(child.wait().unwrap().success(), "kotae demo stops cleanly on SIGTERM");
        Demo {
            journal,
            answered_with_text: ids[0].clone(),
            answered_aloud: ids[1].clone(),
            pinned: ids[2].clone(),
            dismissed: ids[3].clone(),
        }
    })
}

/// `(product, n)` rows of a query, `NULL` products as `None`.
fn counts(conn: &Connection, sql: &str) -> BTreeMap<Option<String>, u64> {
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)? as u64)))
        .unwrap()
        .map(Result::unwrap)
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn per_product(report: &Value, field: &str) -> BTreeMap<Option<String>, u64> {
    report["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().map(str::to_string), p[field].as_u64().unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

const QUESTION: &str = "stream = 'demo' AND action = 'allow' AND instr(',' || labels || ',', ',question,') > 0";
const INTENT: &str = "stream = 'demo' AND action = 'allow' AND instr(',' || labels || ',', ',purchase_intent,') > 0";

#[test]
fn the_demo_report_agrees_with_the_journal_recounted_with_sql() {
    let demo = demo();
    let r: Value = serde_json::from_str(&report(&demo.journal, "json", &[])).unwrap();
    let conn = Connection::open(&demo.journal).unwrap();
    let one = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64;

    let t = &r["totals"];
    assert_eq!(t["messages"], one("SELECT count(*) FROM messages WHERE stream = 'demo'"));
    assert_eq!(t["messages"], 3303, "every message of the bundled stream is journaled");
    assert_eq!(t["questions"], one(&format!("SELECT count(*) FROM messages WHERE {QUESTION}")));
    assert_eq!(t["distinct_questions"], one(&format!("SELECT count(DISTINCT cluster) FROM messages WHERE {QUESTION}")));
    assert_eq!(t["purchase_intents"], one(&format!("SELECT count(*) FROM messages WHERE {INTENT}")));
    assert_eq!(t["blocked"], one("SELECT count(*) FROM messages WHERE stream = 'demo' AND action = 'block'"));
    assert_eq!(t["held"], one("SELECT count(*) FROM messages WHERE stream = 'demo' AND action = 'hold'"));
    assert_eq!(
        t["unanswered"],
        one("SELECT count(*) FROM questions WHERE stream = 'demo' AND state IN ('open', 'pinned')")
    );
    assert_eq!(t["answered"], 2);
    assert_eq!(t["dismissed"], 1);
    assert!(t["questions"].as_u64().unwrap() > 1000 && t["unanswered"].as_u64().unwrap() > 100, "{t}");

    // Per product, by the product each message is about.
    let by = |filter: &str, what: &str| {
        counts(&conn, &format!("SELECT product, {what} FROM messages WHERE {filter} GROUP BY product"))
    };
    assert_eq!(per_product(&r, "questions"), by(QUESTION, "count(*)"));
    assert_eq!(per_product(&r, "distinct_questions"), by(QUESTION, "count(DISTINCT cluster)"));
    assert_eq!(per_product(&r, "purchase_intents"), by(INTENT, "count(*)"));
    let products: Vec<&str> = r["products"].as_array().unwrap().iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(products, ["p1", "p2", "p3", "p4", "p5"], "the catalogue's products, in its order");
    assert_eq!(r["products"][0]["name"], "リネンシャツワンピース");
    assert!(per_product(&r, "questions").len() >= 5, "every product drew questions");

    // The follow-up list: every open question with its wordings, askers and product.
    let open: HashMap<String, (u64, Option<String>, String)> = conn
        .prepare("SELECT cluster, body FROM questions WHERE stream = 'demo' AND state IN ('open', 'pinned')")
        .unwrap()
        .query_map([], |row| {
            let body: Value = serde_json::from_str(&row.get::<_, String>(1)?).unwrap();
            let product = if body["shop"] == true { None } else { body["product"].as_str().map(str::to_string) };
            Ok((
                format!("q{}", row.get::<_, i64>(0)?),
                (body["askers"].as_u64().unwrap(), product, body["wordings"][0]["text"].as_str().unwrap().to_string()),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let listed = r["unanswered"].as_array().unwrap();
    assert_eq!(listed.len(), open.len());
    for q in listed {
        let (askers, product, first) = &open[q["id"].as_str().unwrap()];
        assert_eq!(
            (q["askers"].as_u64().unwrap(), q["product"].as_str().map(str::to_string)),
            (*askers, product.clone())
        );
        assert_eq!(q["question"].as_str().unwrap(), first);
        assert!(!q["wordings"].as_array().unwrap().is_empty());
    }
    let askers: Vec<u64> = listed.iter().map(|q| q["askers"].as_u64().unwrap()).collect();
    assert!(askers.windows(2).all(|w| w[0] >= w[1]), "most askers first");
    let pinned = listed.iter().find(|q| q["id"] == demo.pinned.as_str()).unwrap();
    assert_eq!(pinned["pinned"], true);
    assert!(listed.iter().all(|q| q["id"] != demo.dismissed.as_str()), "dismissed questions are not followed up");

    // Answered: with the answer text and the time it took.
    let answered = r["answered"].as_array().unwrap();
    let with_text = answered.iter().find(|a| a["id"] == demo.answered_with_text.as_str()).unwrap();
    assert_eq!(with_text["answer"], ANSWER);
    let aloud = answered.iter().find(|a| a["id"] == demo.answered_aloud.as_str()).unwrap();
    assert_eq!(aloud["answer"], Value::Null);
    let (first, at): (i64, i64) = conn
        .query_row(
            "SELECT json_extract(body, '$.first_ts'), json_extract(body, '$.at') FROM questions WHERE stream = 'demo' AND cluster = ?1",
            [demo.answered_with_text.trim_start_matches('q').parse::<i64>().unwrap()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(with_text["minutes_to_answer"].as_f64().unwrap(), ((at - first) as f64 / 6_000.0).round() / 10.0);
    let text: String = conn
        .query_row(
            "SELECT detail FROM host_actions WHERE stream = 'demo' AND action = 'answered' AND detail IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(text, ANSWER, "the answer text is journaled with the host action too");

    // The timeline: questions and purchase intents per minute and product.
    let mut minutes: BTreeMap<(u64, Option<String>), (u64, u64)> = BTreeMap::new();
    for row in r["timeline"].as_array().unwrap() {
        let key = (row["minute"].as_u64().unwrap(), row["product"].as_str().map(str::to_string));
        minutes.insert(key, (row["questions"].as_u64().unwrap(), row["purchase_intents"].as_u64().unwrap()));
    }
    let mut stmt = conn
        .prepare(
            "SELECT ts - ts % 60000, product,
                    sum(instr(',' || labels || ',', ',question,') > 0),
                    sum(instr(',' || labels || ',', ',purchase_intent,') > 0)
             FROM messages WHERE stream = 'demo' AND action = 'allow'
             GROUP BY 1, 2 HAVING sum(instr(',' || labels || ',', ',question,') > 0) + sum(instr(',' || labels || ',', ',purchase_intent,') > 0) > 0",
        )
        .unwrap();
    let recounted: BTreeMap<(u64, Option<String>), (u64, u64)> = stmt
        .query_map([], |r| {
            Ok(((r.get::<_, i64>(0)? as u64, r.get(1)?), (r.get::<_, i64>(2)? as u64, r.get::<_, i64>(3)? as u64)))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(minutes, recounted);
    assert!(minutes.len() > 20, "25 minutes of stream");

    // Blocked by category.
    let blocked = counts(
        &conn,
        "SELECT CASE WHEN instr(',' || labels || ',', ',abuse,') > 0 THEN 'abuse'
                     WHEN instr(',' || labels || ',', ',spam,') > 0 THEN 'spam' ELSE 'other' END, count(*)
         FROM messages WHERE stream = 'demo' AND action = 'block' GROUP BY 1",
    );
    let reported: BTreeMap<Option<String>, u64> = r["blocked"]["by_category"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (Some(k.clone()), v.as_u64().unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(reported, blocked);
    assert!(blocked.contains_key(&Some("spam".into())) && blocked.contains_key(&Some("abuse".into())), "{blocked:?}");

    // Topics per product: the asks naming each, over the journaled questions.
    let mut stmt = conn
        .prepare(
            "SELECT CASE WHEN json_extract(q.body, '$.shop') THEN NULL ELSE json_extract(q.body, '$.product') END,
                    t.value, sum(coalesce(json_extract(q.body, '$.topic_counts[' || t.key || ']'), 1))
             FROM questions q, json_each(q.body, '$.topics') t WHERE q.stream = 'demo' GROUP BY 1, 2",
        )
        .unwrap();
    let mut topics: HashMap<(Option<String>, String), u64> = HashMap::new();
    for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)? as u64))).unwrap() {
        let (p, t, n) = row.unwrap();
        topics.insert((p, t), n);
    }
    for p in r["products"].as_array().unwrap() {
        let id = p["id"].as_str().map(str::to_string);
        let listed = p["topics"].as_array().unwrap();
        assert!(!listed.is_empty(), "{p}");
        for t in listed {
            assert_eq!(t["count"].as_u64().unwrap(), topics[&(id.clone(), t["topic"].as_str().unwrap().to_string())]);
        }
        let best = topics.iter().filter(|((q, _), _)| *q == id).map(|(_, n)| *n).max().unwrap();
        assert_eq!(listed[0]["count"].as_u64().unwrap(), best, "most named first");
    }
}

#[test]
fn csv_and_html_hold_the_same_report() {
    let demo = demo();
    let r: Value = serde_json::from_str(&report(&demo.journal, "json", &[])).unwrap();
    let csv = report(&demo.journal, "csv", &[]);
    assert!(csv.starts_with("\u{feff}section,product_id,product,"), "a BOM, then the header");
    let rows = |section: &str| csv.lines().filter(|l| l.starts_with(&format!("{section},"))).count();
    assert_eq!(rows("unanswered") as u64, r["totals"]["unanswered"].as_u64().unwrap());
    assert_eq!(rows("answered"), 2);
    assert!(csv.contains(ANSWER.split(',').next().unwrap()), "the answer text is in the CSV");
    assert!(rows("timeline") > 20 && rows("blocked") >= 2 && rows("topic") >= 5);

    let html = report(&demo.journal, "html", &[]);
    assert!(html.starts_with("<!doctype html>\n<html lang=\"ja\">"));
    assert_eq!(
        html.matches("<svg class=\"chart\"").count(),
        r["products"].as_array().unwrap().len(),
        "one chart per product"
    );
    for id in ["p1", "p2", "p3", "p4", "p5"] {
        assert!(html.contains(&format!("<svg class=\"chart\" data-product=\"{id}\"")), "{id} has a chart");
    }
    assert!(html.contains("未回答の質問（フォローアップ用）"));
    for q in r["unanswered"].as_array().unwrap() {
        assert!(html.contains(&format!("<tr data-id=\"{}\">", q["id"].as_str().unwrap())));
    }
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"), "self-contained");
    assert!(html.contains("@page { size: A4"));
    let en = report(&demo.journal, "html", &["--locale", "en"]);
    assert!(en.contains("<html lang=\"en\">") && en.contains("Unanswered questions"));

    // Written to a file with --out.
    let out = demo.journal.with_file_name("report.html");
    let status = kotae(&[
        "report",
        "--journal",
        demo.journal.to_str().unwrap(),
        "--stream",
        "demo",
        "--format",
        "html",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(status.status.success() && status.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), html);
}

#[test]
fn a_report_compares_with_the_previous_one() {
    let demo = demo();
    let now: Value = serde_json::from_str(&report(&demo.journal, "json", &[])).unwrap();
    let mut before = now.clone();
    before["stream"] = json!("last-week");
    before["totals"]["questions"] = json!(1000);
    before["products"][0]["purchase_intents"] = json!(10);
    let previous = demo.journal.with_file_name("previous.json");
    std::fs::write(&previous, before.to_string()).unwrap();
    let r: Value =
        serde_json::from_str(&report(&demo.journal, "json", &["--compare", previous.to_str().unwrap()])).unwrap();
    let c = &r["comparison"];
    assert_eq!(c["previous_stream"], "last-week");
    let questions = c["totals"].as_array().unwrap().iter().find(|d| d["metric"] == "questions").unwrap();
    let n = now["totals"]["questions"].as_f64().unwrap();
    assert_eq!((questions["now"].as_f64(), questions["before"].as_f64()), (Some(n), Some(1000.0)));
    assert_eq!(questions["change"].as_f64(), Some(n - 1000.0));
    let p1 = c["products"].as_array().unwrap().iter().find(|p| p["id"] == "p1").unwrap();
    let intents = p1["deltas"].as_array().unwrap().iter().find(|d| d["metric"] == "purchase_intents").unwrap();
    assert_eq!(intents["before"], 10.0);
    let html = report(&demo.journal, "html", &["--compare", previous.to_str().unwrap()]);
    assert!(html.contains("<table id=\"compare\">") && html.contains("last-week"));

    // Not a report: a clear error.
    let bad = demo.journal.with_file_name("not-a-report.json");
    std::fs::write(&bad, "{\"questions\": 3}").unwrap();
    let out = kotae(&[
        "report",
        "--journal",
        demo.journal.to_str().unwrap(),
        "--stream",
        "demo",
        "--compare",
        bad.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("比較するレポート") && err.contains("not a kotae report in JSON"), "{err}");
}

/// Runs `kotae report` expecting it to fail; its stderr.
fn fails(journal: &Path, stream: &str) -> String {
    let out = kotae(&["report", "--journal", journal.to_str().unwrap(), "--stream", stream]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn empty_missing_or_foreign_journals_get_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    let err = fails(&missing, "demo");
    assert!(
        err.contains("がありません") && err.contains(&format!("journal {} does not exist", missing.display())),
        "{err}"
    );
    assert!(!missing.exists(), "a missing journal is not created");

    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let err = fails(&empty, "demo");
    assert!(err.contains("is not a kotae journal: the file is empty"), "{err}");

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "これはジャーナルではありません\n".repeat(100)).unwrap();
    let err = fails(&text, "demo");
    assert!(err.contains("is not a kotae journal") && err.contains("kotae のジャーナルではありません"), "{err}");

    // A journal the server created but nothing was written to, then one with another stream.
    let fresh = dir.path().join("fresh.db");
    let config = kotae::server::config::JournalConfig { path: fresh.clone(), ..Default::default() };
    let metrics = std::sync::Arc::new(kotae::metrics::Metrics::new());
    let (journal, _) = kotae::store::Journal::open(&config, metrics.clone()).unwrap();
    journal.close();
    let err = fails(&fresh, "demo");
    assert!(err.contains("has nothing for stream 'demo' (it holds no stream at all)"), "{err}");
    let (journal, _) = kotae::store::Journal::open(&config, metrics).unwrap();
    journal.sender().send(kotae::store::Record::Product { stream: "other-stream".into(), product: None });
    journal.close();
    let err = fails(&fresh, "demo");
    assert!(err.contains("(streams in it: other-stream)") && err.contains("記録のある配信: other-stream"), "{err}");
}

/// The schema journals were written with before messages recorded their product (and before
/// streams kept their catalogue).
const PREVIOUS_SCHEMA: &str = "
CREATE TABLE messages (
    stream TEXT NOT NULL, msg_id TEXT NOT NULL, ts INTEGER NOT NULL, user TEXT, text TEXT NOT NULL,
    action TEXT NOT NULL, labels TEXT NOT NULL, cluster INTEGER, written_at INTEGER NOT NULL);
CREATE TABLE questions (
    stream TEXT NOT NULL, cluster INTEGER NOT NULL, state TEXT NOT NULL, body TEXT NOT NULL,
    updated_at INTEGER NOT NULL, PRIMARY KEY (stream, cluster));
CREATE TABLE host_actions (
    stream TEXT NOT NULL, cluster INTEGER, action TEXT NOT NULL, at INTEGER NOT NULL, detail TEXT,
    written_at INTEGER NOT NULL);
CREATE TABLE streams (stream TEXT PRIMARY KEY, product TEXT);
";

/// Every row of every table, as text, in rowid order.
fn dump(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    for table in ["messages", "questions", "host_actions", "streams"] {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY rowid")).unwrap();
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let rows = stmt
            .query_map([], |r| {
                let mut cells = Vec::new();
                for (i, name) in names.iter().enumerate() {
                    let v: rusqlite::types::Value = r.get(i)?;
                    cells.push(format!("{name}={v:?}"));
                }
                Ok(format!("{table}: {}", cells.join(" ")))
            })
            .unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

#[test]
fn a_journal_of_the_previous_schema_is_reported_and_migrated_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(PREVIOUS_SCHEMA).unwrap();
    let t0 = 1_795_316_400_000i64;
    let messages = [
        ("m1", 0, "a", "送料いくらですか", "allow", "question", Some(1)),
        ("m2", 1, "b", "送料いくら？", "allow", "question", Some(1)),
        ("m3", 2, "c", "ポチった！", "allow", "purchase_intent", None),
        ("m4", 61, "d", "LINEで稼げる副業 http://x", "block", "spam", None),
        ("m5", 62, "e", "ブス", "block", "abuse", None),
        ("m6", 63, "f", "こんにちは", "allow", "", None),
    ];
    for (id, s, user, text, action, labels, cluster) in messages {
        conn.execute(
            "INSERT INTO messages VALUES ('old', ?1, ?2, ?3, ?4, ?5, ?6, ?7, 1)",
            rusqlite::params![id, t0 + s * 1000, user, text, action, labels, cluster],
        )
        .unwrap();
    }
    // A question body as journaled then: no `answer`, no `topic_counts`, no `shop`.
    let body = json!({"cluster": 1, "state": "open", "first_ts": t0, "last_ts": t0 + 1000, "askers": 2,
        "wordings": [{"user": "a", "text": "送料いくらですか", "ts": t0}, {"user": "b", "text": "送料いくら？", "ts": t0 + 1000}],
        "topics": ["shipping"], "product": null, "paid": 0, "intent": false, "asked_after_answer": 0});
    conn.execute("INSERT INTO questions VALUES ('old', 1, 'open', ?1, 1)", [body.to_string()]).unwrap();
    conn.execute("INSERT INTO host_actions VALUES ('old', NULL, 'product', ?1, 'p1', 1)", [t0]).unwrap();
    conn.execute("INSERT INTO streams VALUES ('old', 'p1')", []).unwrap();
    let before = dump(&conn);
    drop(conn);

    // Read as it is (the report never writes to the journal).
    let out = kotae(&["report", "--journal", path.to_str().unwrap(), "--stream", "old"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&r["totals"]["messages"], &r["totals"]["questions"], &r["totals"]["purchase_intents"]),
        (&json!(6), &json!(2), &json!(1))
    );
    assert_eq!(r["blocked"]["by_category"], json!({"abuse": 1, "spam": 1}));
    assert_eq!(r["unanswered"][0]["question"], "送料いくらですか");
    assert_eq!(r["products"][0]["id"], Value::Null, "no product recorded: counted under no product");
    assert_eq!(dump(&Connection::open(&path).unwrap()), before, "reporting changed nothing");

    // The server migrates it: every row stays, the new columns are there (NULL in old rows), and
    // the open question comes back.
    let config = kotae::server::config::JournalConfig { path: path.clone(), ..Default::default() };
    let (journal, restored) =
        kotae::store::Journal::open(&config, std::sync::Arc::new(kotae::metrics::Metrics::new())).unwrap();
    journal.close();
    let old = &restored.streams["old"];
    assert_eq!((old.questions.len(), old.product.as_deref()), (1, Some("p1")));
    assert_eq!(old.questions[0].answer, None);
    let conn = Connection::open(&path).unwrap();
    for (table, column, _) in kotae::store::ADDED_COLUMNS {
        let present: bool = conn
            .query_row("SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2", [table, column], |r| r.get(0))
            .unwrap();
        assert!(present, "{table}.{column} added");
    }
    let after: Vec<String> = dump(&conn)
        .into_iter()
        .map(|row| row.replace(" product=Null", "").replace(" catalog=Null", "").replace(" reserved=Integer(0)", ""))
        .collect();
    assert_eq!(after, before, "every row as it was");
    let out = kotae(&["report", "--journal", path.to_str().unwrap(), "--stream", "old"]);
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), r, "the same report after the migration");
}
