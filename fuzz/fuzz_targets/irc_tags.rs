//! Twitch IRC lines: splitting, IRCv3 tag parsing and unescaping, emote ranges, normalization.
#![no_main]

use kotae::ingest::adapters::irc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let cx = irc::Context { stream: "fuzz", received_at_ms: 0, seq: 0 };
    for line in irc::lines(text) {
        if let Ok(msg) = irc::parse_line(line) {
            let _ = irc::interpret(&msg, line, cx);
            for (_, v) in &msg.tags {
                let _ = irc::fragments(v, &irc::parse_emotes(v));
            }
        }
    }
    let _ = irc::unescape_tag_value(text);
    let _ = irc::parse_badges(text);
});
