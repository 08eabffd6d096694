//! Property tests of the wire parsers the adapters run on untrusted bytes: they never panic,
//! and what they produce keeps its invariants. The same entry points are fuzzed in `fuzz/`.

use kotae::ingest::adapters::chat::Fragment;
use kotae::ingest::adapters::irc::{self, Context};
use kotae::ingest::adapters::ndgr::{self, FrameReader};
use proptest::prelude::*;

const CX: Context<'static> = Context { stream: "s", received_at_ms: 0, seq: 0 };

/// IRC-looking lines: mostly the structural characters, some CJK and escapes.
fn irc_line() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("@".to_string()),
            Just(";".to_string()),
            Just("=".to_string()),
            Just(" ".to_string()),
            Just(":".to_string()),
            Just("\\".to_string()),
            Just("\\s".to_string()),
            Just("PRIVMSG #c :".to_string()),
            Just("id=x;".to_string()),
            Just("emotes=25:0-4,6-99/1:2-1;".to_string()),
            Just("badges=moderator/1,subscriber/12;".to_string()),
            Just("bits=100;".to_string()),
            Just("CLEARCHAT #c".to_string()),
            Just("USERNOTICE #c".to_string()),
            "[a-z0-9/,.-]{0,6}",
            "[ぁ-んァ-ン一-龥]{0,4}",
            any::<char>().prop_map(String::from),
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn irc_parsing_and_interpreting_never_panic(line in irc_line()) {
        for l in irc::lines(&line) {
            if let Ok(msg) = irc::parse_line(l) {
                let _ = irc::interpret(&msg, l, CX);
            }
        }
    }

    #[test]
    fn any_text_never_panics_the_irc_parser(line in any::<String>()) {
        if let Ok(msg) = irc::parse_line(&line) {
            let _ = irc::interpret(&msg, &line, CX);
        }
    }

    #[test]
    fn unescaping_never_grows_a_value(v in "[a-z\\\\:srn ;]{0,40}") {
        prop_assert!(irc::unescape_tag_value(&v).len() <= v.len());
    }

    #[test]
    fn fragments_cover_the_text_exactly_once(text in "[a-zぁ-ん :)]{0,30}", tag in "[0-9]{1,2}:[0-9]{1,2}-[0-9]{1,2}(,[0-9]{1,2}-[0-9]{1,2}){0,3}") {
        let frags = irc::fragments(&text, &irc::parse_emotes(&tag));
        if !frags.is_empty() {
            let joined: String = frags.iter().map(|f| match f {
                Fragment::Text { text } => text.as_str(),
                Fragment::Emote { code, .. } => code.as_str(),
            }).collect();
            prop_assert_eq!(joined, text);
        }
    }

    #[test]
    fn the_frame_reader_never_panics_and_never_loses_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512), chunk in 1usize..64) {
        let mut r = FrameReader::new();
        let mut consumed = 0;
        'outer: for c in bytes.chunks(chunk) {
            r.push(c);
            loop {
                match r.next_frame() {
                    Ok(Some(f)) => {
                        consumed += f.len();
                        let cx = ndgr::Context { stream: "s", live_id: "lv1", received_at_ms: 0, backfill: false };
                        let _ = ndgr::chat_from_frame(&f, cx);
                    }
                    Ok(None) => break,
                    Err(_) => break 'outer,
                }
            }
        }
        prop_assert!(consumed + r.pending() <= bytes.len());
    }

    #[test]
    fn encoded_frames_come_back_whole_whatever_the_chunking(contents in prop::collection::vec("[a-zあ-ん]{0,20}", 1..8), chunk in 1usize..16) {
        let frames: Vec<Vec<u8>> = contents.iter().enumerate().map(|(i, c)| {
            ndgr::encode_frame(&ndgr::ChunkedMessage {
                meta: Some(ndgr::Meta { id: format!("m{i}"), at: None, origin: None }),
                payload: Some(ndgr::chunked_message::Payload::Message(ndgr::NicoliveMessage {
                    data: Some(ndgr::nicolive_message::Data::Chat(ndgr::Chat { content: c.clone(), ..ndgr::Chat::default() })),
                })),
            })
        }).collect();
        let all = frames.concat();
        let mut r = FrameReader::new();
        let mut texts = Vec::new();
        for c in all.chunks(chunk) {
            r.push(c);
            while let Some(f) = r.next_frame().unwrap() {
                let cx = ndgr::Context { stream: "s", live_id: "lv1", received_at_ms: 0, backfill: false };
                texts.push(ndgr::chat_from_frame(&f, cx).unwrap().unwrap().text);
            }
        }
        prop_assert_eq!(texts, contents);
    }
}
