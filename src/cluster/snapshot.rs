//! Partition snapshots in the JetStream stream `{PREFIX}_snapshots`: the owner writes one every
//! `snapshot_interval_ms` (when the partition's journal moved), and a new owner restores the
//! newest and replays only the journal records after the sequence it covers.
//!
//! A snapshot is JSON ([`Snapshot`]: the journal sequence, then each stream in the form
//! [`crate::stream::StreamSnapshot`], whose queue part is the single-instance restart form),
//! cut into chunks under NATS's 1 MB message limit, then a head on `{prefix}.snap.P.head` naming
//! the chunks' slot, id, count, length and FNV-1a checksum. Each subject keeps its last message
//! only. There are two slots of chunk subjects (`{prefix}.snap.P.N` and `{prefix}.snap.P.b.N`),
//! and a snapshot is written into the slot the head does not name, head last: a writer dying
//! halfway (killed while it wrote) leaves the head and the chunks it names whole, and the next
//! owner restores that snapshot. A head whose chunks do not match it (two writers at once, or
//! damage) counts as unreadable (`kotae_cluster_snapshot_errors_total{op="read"}`) and the new
//! owner replays the whole journal instead. Nothing is lost either way: the journal is the record.

use async_nats::jetstream;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Node, random_token};
use crate::stream::StreamSnapshot;

/// Bytes per chunk: NATS's default `max_payload` is 1 MB, headers included.
const CHUNK: usize = 512 * 1024;

/// The header naming the snapshot a chunk belongs to.
const ID_HEADER: &str = "Kotae-Snapshot";

/// A partition's state as of journal sequence `seq`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Snapshot {
    /// The last `KOTAE_inputs` sequence of the partition the state includes.
    pub seq: u64,
    /// Every stream of the partition the owner knew.
    pub streams: Vec<StreamSnapshot>,
}

/// What the head of a snapshot says about its chunks.
#[derive(Debug, Serialize, Deserialize)]
struct Head {
    /// The slot of chunk subjects holding them (0 for heads written before there were two).
    #[serde(default)]
    slot: u8,
    id: String,
    seq: u64,
    chunks: u32,
    bytes: u64,
    fnv: u64,
}

/// The JetStream stream holding snapshots (`{prefix}.snap.P.…`).
pub(super) fn snapshot_stream(prefix: &str) -> String {
    format!("{}_snapshots", prefix.to_ascii_uppercase())
}

/// The stream's configuration: the last message per subject, nothing else.
pub(super) fn stream_config(prefix: &str, replicas: usize) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: snapshot_stream(prefix),
        subjects: vec![format!("{prefix}.snap.>")],
        max_messages_per_subject: 1,
        num_replicas: replicas,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Node {
    fn snap_subject(&self, p: u32, part: &str) -> String {
        format!("{}.snap.{p}.{part}", self.config.prefix)
    }

    /// The subject of chunk `i` in `slot`.
    fn chunk_subject(&self, p: u32, slot: u8, i: u32) -> String {
        match slot {
            0 => self.snap_subject(p, &i.to_string()),
            _ => self.snap_subject(p, &format!("b.{i}")),
        }
    }

    /// The head of partition `p`'s newest snapshot, if one was written.
    async fn snapshot_head(&self, stream: &jetstream::stream::Stream, p: u32) -> Result<Option<Head>, String> {
        use jetstream::stream::LastRawMessageErrorKind;
        match stream.get_last_raw_message_by_subject(&self.snap_subject(p, "head")).await {
            Ok(m) => serde_json::from_slice(&m.payload).map(Some).map_err(|e| format!("snapshot head: {e}")),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Writes partition `p`'s snapshot, chunks first and head last, each acknowledged;
    /// returns its size in bytes.
    pub(super) async fn save_snapshot(&self, p: u32, snap: &Snapshot) -> Result<usize, String> {
        let body = serde_json::to_vec(snap).map_err(|e| e.to_string())?;
        let stream = self.js.get_stream(snapshot_stream(&self.config.prefix)).await.map_err(|e| e.to_string())?;
        // The slot the newest head does not name (a head that cannot be read names none).
        let slot = match self.snapshot_head(&stream, p).await {
            Ok(Some(head)) => 1 - head.slot.min(1),
            _ => 0,
        };
        let id = random_token();
        let mut chunks = 0u32;
        for chunk in body.chunks(CHUNK) {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(ID_HEADER, id.as_str());
            let subject = self.chunk_subject(p, slot, chunks);
            let ack = self
                .js
                .publish_with_headers(subject, headers, Bytes::copy_from_slice(chunk))
                .await
                .map_err(|e| e.to_string())?;
            ack.await.map_err(|e| e.to_string())?;
            chunks += 1;
        }
        let head = Head { slot, id, seq: snap.seq, chunks, bytes: body.len() as u64, fnv: fnv(&body) };
        let head = serde_json::to_vec(&head).map_err(|e| e.to_string())?;
        let ack = self.js.publish(self.snap_subject(p, "head"), Bytes::from(head)).await.map_err(|e| e.to_string())?;
        ack.await.map_err(|e| e.to_string())?;
        Ok(body.len())
    }

    /// Partition `p`'s newest snapshot; `None` when none was written. An error means one
    /// exists and cannot be read whole.
    pub(super) async fn load_snapshot(&self, p: u32) -> Result<Option<Snapshot>, String> {
        let stream = self.js.get_stream(snapshot_stream(&self.config.prefix)).await.map_err(|e| e.to_string())?;
        let Some(head) = self.snapshot_head(&stream, p).await? else { return Ok(None) };
        let mut body = Vec::with_capacity(usize::try_from(head.bytes).unwrap_or(0).min(64 << 20));
        for i in 0..head.chunks {
            let m = stream
                .get_last_raw_message_by_subject(&self.chunk_subject(p, head.slot, i))
                .await
                .map_err(|e| format!("snapshot chunk {i}: {e}"))?;
            if m.headers.get(ID_HEADER).map(AsRef::<str>::as_ref) != Some(head.id.as_str()) {
                return Err(format!("snapshot chunk {i} belongs to another snapshot"));
            }
            body.extend_from_slice(&m.payload);
        }
        if body.len() as u64 != head.bytes || fnv(&body) != head.fnv {
            return Err(format!("snapshot of {} bytes does not match its head's length or checksum", body.len()));
        }
        let snap: Snapshot = serde_json::from_slice(&body).map_err(|e| format!("snapshot: {e}"))?;
        if snap.seq != head.seq {
            return Err("snapshot sequence differs from its head's".into());
        }
        Ok(Some(snap))
    }
}
