//! `kotae classify`: JSON Lines in, one verdict line out per input line, in order.
//!
//! Threads: a reader cuts stdin into batches of lines; workers (one [`Analyzer`] each, on the
//! runtime's [`Pool`]) run the stateless stages on whole batches; the calling thread puts
//! batches back in order, runs each stream's stateful stage and writes the verdicts. Channels are bounded (`2 × workers` batches),
//! so a slow writer blocks the reader instead of buffering without limit.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, Write};
use std::sync::Arc;

use crossbeam_channel::bounded;

use crate::catalog::Catalog;
use crate::message::{InMessage, OutError, OutVerdict};
use crate::pipeline::{Analysis, Analyzer, Engine, Meta, StreamState};
use crate::runtime::pool::{Pool, PoolSpec};

/// Lines per batch handed to a worker.
const BATCH: usize = 256;

/// Counts of one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Input lines read, blank ones included: each gets one output line.
    pub lines: usize,
    /// Lines answered with a verdict.
    pub verdicts: usize,
    /// Lines answered with an error (blank, not UTF-8, not a message, over the size limit).
    pub errors: usize,
}

struct Batch {
    seq: u64,
    first_line: usize,
    /// The batch's lines back to back; each line is a range of it, or its length when too long.
    data: Vec<u8>,
    lines: Vec<Result<std::ops::Range<usize>, usize>>,
}

enum Item {
    Error { id: String, error: String },
    Done { id: String, msg: InMessage, analysis: Box<Analysis> },
}

/// Reads one line of at most `limit` bytes, appending it to `buf`; longer lines are consumed to
/// their end, appended to no more than `limit` bytes, and reported as `Err(length)`.
/// `Ok(None)` at end of input.
fn read_line_bounded(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Option<Result<(), usize>>> {
    let start = buf.len();
    let mut total = 0usize;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(if total == 0 {
                None
            } else if total > limit {
                Some(Err(total))
            } else {
                Some(Ok(()))
            });
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let content = if done { &chunk[..take - 1] } else { &chunk[..take] };
        if total + content.len() <= limit {
            buf.extend_from_slice(content);
        }
        total += content.len();
        input.consume(take);
        if done {
            if buf.len() > start && buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Some(if total > limit { Err(total) } else { Ok(()) }));
        }
    }
}

/// The line parsed with an empty `text`, when a missing `text` is all that is wrong with it (a
/// rare path: parsed again loosely, to echo the line's own id).
fn only_text_missing(line: &str) -> Option<InMessage> {
    let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).ok()?;
    if object.contains_key("text") {
        return None;
    }
    object.insert("text".into(), serde_json::Value::String(String::new()));
    serde_json::from_value(serde_json::Value::Object(object)).ok()
}

/// A line that is not a message: its id (the line number when it has none) and what is wrong.
struct LineError {
    id: String,
    error: String,
}

/// A line read as a message with its id, or the error it is answered with.
fn parse_line(line_no: usize, line: Result<&[u8], usize>, limit: usize) -> Result<(String, InMessage), LineError> {
    let fallback = || line_no.to_string();
    let bytes = match line {
        Ok(b) => b,
        Err(len) => {
            return Err(LineError {
                id: fallback(),
                error: format!("line is {len} bytes, over the size limit of {limit}"),
            });
        }
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return Err(LineError { id: fallback(), error: format!("invalid utf-8 at byte {}", e.valid_up_to()) });
        }
    };
    if text.trim().is_empty() {
        return Err(LineError { id: fallback(), error: "empty line".into() });
    }
    let msg: InMessage = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e)
            if e.is_data()
                && let Some(m) = only_text_missing(text) =>
        {
            return Err(LineError { id: m.id_or(fallback), error: "missing field `text`".into() });
        }
        Err(e) => return Err(LineError { id: fallback(), error: format!("invalid json: {e}") }),
    };
    let id = msg.id_or(fallback);
    if let Err(error) = msg.paid_money() {
        return Err(LineError { id, error });
    }
    Ok((id, msg))
}

/// A batch's lines answered in order: the messages analyzed together, stage by stage.
fn analyze_lines<'a>(
    analyzer: &mut Analyzer,
    first_line: usize,
    lines: impl Iterator<Item = Result<&'a [u8], usize>>,
    limit: usize,
) -> Vec<Item> {
    let parsed: Vec<Result<(String, InMessage), LineError>> =
        lines.enumerate().map(|(i, line)| parse_line(first_line + i, line, limit)).collect();
    let texts: Vec<&str> = parsed.iter().filter_map(|p| p.as_ref().ok()).map(|(_, m)| m.text.as_str()).collect();
    let mut analyses = analyzer.analyze_batch(&texts).into_iter();
    drop(texts);
    parsed
        .into_iter()
        .map(|p| match p {
            Err(LineError { id, error }) => Item::Error { id, error },
            Ok((id, msg)) => match analyses.next().expect("an analysis per parsed line") {
                Ok(analysis) => Item::Done { id, msg, analysis: Box::new(analysis) },
                Err(reject) => Item::Error { id, error: reject.to_string() },
            },
        })
        .collect()
}

/// Classifies every line of `input` onto `output`. Fails only when reading or writing fails.
pub fn run(
    engine: &Arc<Engine>,
    catalog: &Arc<Catalog>,
    input: impl BufRead + Send,
    output: impl Write,
    workers: usize,
) -> io::Result<Stats> {
    let workers = workers.max(1);
    let limit = engine.config.max_message_bytes;
    // Raw lines carry JSON around the text; escapes can triple it.
    let line_limit = (limit * 8).max(64 * 1024);
    let (done_tx, done_rx) = bounded::<(u64, usize, Vec<Item>)>(workers * 2);
    let spec = PoolSpec { name: "kotae-classify", threads: workers, queue: workers * 2, nice: 0 };
    let done = done_tx.clone();
    let pool = Pool::start(
        spec,
        || engine.analyzer(),
        move |analyzer: &mut Analyzer, batch: Batch| {
            let n = batch.lines.len();
            let lines = batch.lines.iter().map(|l| l.clone().map(|range| &batch.data[range]));
            let items = analyze_lines(analyzer, batch.first_line, lines, limit);
            let _ = done.send((batch.seq, n, items));
        },
    )?;
    let pool = &pool;
    let mut stats = Stats::default();
    let mut output = io::BufWriter::with_capacity(1 << 16, output);

    std::thread::scope(|scope| -> io::Result<()> {
        let reader = scope.spawn(move || -> io::Result<()> {
            // However the reader ends, the workers finish what it queued and stop, so the
            // verdict channel below closes.
            let _close = CloseOnDrop(pool);
            let mut input = input;
            let (mut seq, mut line_no) = (0u64, 0usize);
            loop {
                let mut lines = Vec::with_capacity(BATCH);
                let mut data = Vec::new();
                let first_line = line_no + 1;
                while lines.len() < BATCH {
                    let start = data.len();
                    match read_line_bounded(&mut input, &mut data, line_limit)? {
                        None => break,
                        Some(r) => {
                            line_no += 1;
                            lines.push(r.map(|()| start..data.len()).inspect_err(|_| data.truncate(start)));
                        }
                    }
                }
                if lines.is_empty() {
                    return Ok(());
                }
                let last = lines.len() < BATCH;
                if pool.send(Batch { seq, first_line, data, lines }).is_err() || last {
                    return Ok(());
                }
                seq += 1;
            }
        });
        drop(done_tx);
        let mut pending: BTreeMap<u64, Vec<Item>> = BTreeMap::new();
        let mut next = 0u64;
        let mut streams: HashMap<Option<String>, (StreamState, u64)> = HashMap::new();
        let mut write_err = None;
        let mut line = Vec::with_capacity(512);
        for (seq, _n, items) in done_rx {
            if write_err.is_some() {
                continue;
            }
            pending.insert(seq, items);
            while let Some(items) = pending.remove(&next) {
                next += 1;
                for item in items {
                    stats.lines += 1;
                    let res = match item {
                        Item::Error { id, error } => {
                            stats.errors += 1;
                            serde_json::to_writer(&mut output, &OutError { id, error })
                        }
                        Item::Done { id, msg, mut analysis } => {
                            stats.verdicts += 1;
                            if !streams.contains_key(&msg.stream) {
                                let mut state = engine.stream_state();
                                state.set_catalog(catalog.clone());
                                streams.insert(msg.stream.clone(), (state, 0));
                            }
                            let Some((state, last_ts)) = streams.get_mut(&msg.stream) else {
                                return Err(io::Error::other("stream state missing"));
                            };
                            let ts = msg.ts.unwrap_or(*last_ts);
                            *last_ts = ts;
                            let verdict = state.process_in_place(
                                Meta { user: msg.user.as_deref(), ts, product: msg.product.as_deref() },
                                &mut analysis,
                            );
                            line.clear();
                            line.push(b'{');
                            OutVerdict::new(id, msg.text.len(), msg.stream.as_deref(), &verdict)
                                .write_json_fields(&mut line);
                            line.push(b'}');
                            output.write_all(&line).map_err(serde_json::Error::io)
                        }
                    };
                    if let Err(e) = res.map_err(io::Error::from).and_then(|()| output.write_all(b"\n")) {
                        write_err = Some(e);
                        break;
                    }
                }
            }
        }
        if let Some(e) = write_err {
            return Err(e);
        }
        reader.join().map_err(|_| io::Error::other("reader thread panicked"))??;
        Ok(())
    })?;
    pool.join();
    output.flush()?;
    Ok(stats)
}

/// Closes a pool when dropped.
struct CloseOnDrop<'a, J: Send + 'static>(&'a Pool<J>);

impl<J: Send + 'static> Drop for CloseOnDrop<'_, J> {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_consumed_and_reported() {
        let data = format!("{}\nok\n", "x".repeat(100));
        let mut input = io::Cursor::new(data.into_bytes());
        let mut buf = Vec::new();
        assert_eq!(read_line_bounded(&mut input, &mut buf, 10).unwrap(), Some(Err(100)));
        assert_eq!(read_line_bounded(&mut input, &mut buf, 10).unwrap(), Some(Ok(())));
        assert_eq!(buf, b"ok");
        assert_eq!(read_line_bounded(&mut input, &mut buf, 10).unwrap(), None);
    }

    #[test]
    fn last_line_without_newline_is_read() {
        let mut input = io::Cursor::new(b"a\r\nb".to_vec());
        let mut buf = Vec::new();
        assert_eq!(read_line_bounded(&mut input, &mut buf, 10).unwrap(), Some(Ok(())));
        assert_eq!(buf, b"a");
        assert_eq!(read_line_bounded(&mut input, &mut buf, 10).unwrap(), Some(Ok(())));
        assert_eq!(buf, b"ab", "lines are appended");
    }

    #[test]
    fn a_line_missing_only_its_text_keeps_its_id() {
        assert_eq!(only_text_missing(r#"{"id":7,"user":"a"}"#).and_then(|m| m.id), Some(serde_json::json!(7)));
        assert!(only_text_missing(r#"{"id":"x","text":5}"#).is_none(), "the text is there, of the wrong type");
        assert!(only_text_missing(r#"{"id":"x","user":5}"#).is_none(), "something else is wrong too");
        assert!(only_text_missing(r#"["id"]"#).is_none(), "not an object");
    }
}
