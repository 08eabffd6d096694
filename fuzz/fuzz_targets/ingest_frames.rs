//! Ingest websocket frames: the depth-unlimited JSON check and element split, then the frame
//! parser with its size limits (ids, users, text, batch) and the invisible-text check.
#![no_main]

use kotae::ingest::json::{Scan, scan};
use kotae::ingest::{FrameLimits, Item, parse_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let limits = FrameLimits { max_batch: 16, max_message_bytes: 64, max_id_bytes: 16, max_user_bytes: 16 };
    let scanned = scan(text);
    if let Ok(Scan::Array(elements)) = &scanned {
        for r in elements {
            // Element ranges lie inside the text, on character boundaries, in order.
            assert!(r.start <= r.end && r.end <= text.len());
            assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
            assert!(scan(&text[r.clone()]).is_ok(), "an element of valid JSON is valid JSON");
        }
    }
    // Where serde_json can judge (it stops at 128 levels), it agrees.
    if text.bytes().filter(|b| *b == b'[' || *b == b'{').count() < 100 {
        let serde = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
        assert_eq!(scanned.is_ok(), serde, "{text:?}");
    }
    let items = parse_frame(text, 1, &limits);
    assert!(!items.is_empty(), "every frame gets at least one outcome");
    assert!(items.len() <= limits.max_batch.max(1));
    for item in &items {
        if let Item::Parsed(m) = item {
            assert!(m.text.len() <= limits.max_message_bytes);
            assert!(m.user.as_ref().is_none_or(|u| u.len() <= limits.max_user_bytes));
            assert!(!kotae::message::is_blank(&m.text));
            assert!(kotae::ingest::message_id(m).len() <= limits.max_id_bytes);
        }
    }
});
