//! Tests of the report's pure parts.

use super::build::has_label;
use super::*;

#[test]
fn local_times_are_written_in_the_offset() {
    // 2026-11-22 03:03 UTC is 12:03 in Japan.
    assert_eq!(local_time(1_795_316_580_000, 540), "2026-11-22 12:03");
    assert_eq!(local_time(1_795_316_580_000, 0), "2026-11-22 03:03");
    assert_eq!(local_time(0, -60), "1969-12-31 23:00");
    assert_eq!(local_time(951_782_400_000, 0), "2000-02-29 00:00");
}

#[test]
fn labels_are_matched_whole() {
    assert!(has_label("question,purchase_intent", "purchase_intent"));
    assert!(!has_label("question_like", "question"));
    assert!(!has_label("", "question"));
}
