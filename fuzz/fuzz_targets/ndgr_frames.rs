//! Niconico NDGR streams: varint length-delimited framing over arbitrary chunking, then protobuf
//! decoding of each frame as a segment message and as a view entry.
#![no_main]

use kotae::ingest::adapters::ndgr::{self, ChunkedEntry, FrameReader};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else { return };
    let mut reader = FrameReader::new();
    let cx = ndgr::Context { stream: "fuzz", live_id: "lv1", received_at_ms: 0, backfill: false };
    for piece in rest.chunks(usize::from(chunk).max(1)) {
        reader.push(piece);
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    let _ = ndgr::chat_from_frame(&frame, cx);
                    let _ = ChunkedEntry::decode(frame);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
