//! The `[adapters]` section: which platforms feed which kotae stream, and how to reach them.

use serde::{Deserialize, Serialize};

/// Platform adapters. Empty by default: nothing connects out unless a stream names a platform.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdaptersConfig {
    /// Capacity of the channel from all adapters into the pipeline, in messages. When it is full
    /// the adapters wait (policy `block`), which slows their platform reads.
    #[serde(default = "AdaptersConfig::d_channel")]
    pub channel_capacity: usize,
    /// Capacity of each adapter's moderation-action queue. When it is full a new action is
    /// refused with an error (policy `reject`).
    #[serde(default = "AdaptersConfig::d_actions")]
    pub action_capacity: usize,
    /// First reconnect delay after a connection is lost, ms; doubles per failure.
    #[serde(default = "AdaptersConfig::d_min")]
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay, ms.
    #[serde(default = "AdaptersConfig::d_max")]
    pub reconnect_max_ms: u64,
    /// Message ids remembered per adapter to drop what a resumed connection delivers twice.
    #[serde(default = "AdaptersConfig::d_dedupe")]
    pub dedupe_ids: usize,
    /// One entry per kotae stream with the platforms that feed it.
    #[serde(default)]
    pub streams: Vec<StreamAdapters>,
}

impl AdaptersConfig {
    fn d_channel() -> usize {
        1024
    }
    fn d_actions() -> usize {
        64
    }
    fn d_min() -> u64 {
        500
    }
    fn d_max() -> u64 {
        30_000
    }
    fn d_dedupe() -> usize {
        4096
    }

    /// Problems the types cannot catch, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.channel_capacity == 0 {
            p.push("adapters.channel_capacity must be at least 1".to_string());
        }
        if self.action_capacity == 0 {
            p.push("adapters.action_capacity must be at least 1".to_string());
        }
        if self.dedupe_ids == 0 {
            p.push("adapters.dedupe_ids must be at least 1".to_string());
        }
        if self.reconnect_min_ms == 0 || self.reconnect_min_ms > self.reconnect_max_ms {
            p.push("adapters.reconnect_min_ms must be at least 1 and at most reconnect_max_ms".to_string());
        }
        let mut seen = std::collections::HashSet::new();
        for (i, s) in self.streams.iter().enumerate() {
            let at = format!("adapters.streams[{i}]");
            if s.stream.trim().is_empty() {
                p.push(format!("{at}.stream must not be empty"));
            } else if !seen.insert(s.stream.as_str()) {
                p.push(format!("{at}.stream '{}' is listed twice", s.stream));
            }
            if s.twitch.is_none() && s.youtube.is_none() && s.niconico.is_none() {
                p.push(format!("{at} names no platform (twitch, youtube or niconico)"));
            }
            if let Some(t) = &s.twitch {
                if t.channel.is_empty() || t.channel.starts_with('#') || t.channel.contains(char::is_whitespace) {
                    p.push(format!("{at}.twitch.channel must be a login without '#'"));
                }
                url_problem(&mut p, &format!("{at}.twitch.irc_url"), &t.irc_url, &["ws://", "wss://"]);
                url_problem(&mut p, &format!("{at}.twitch.helix_url"), &t.helix_url, &["http://", "https://"]);
                if t.ping_interval_secs == 0 {
                    p.push(format!("{at}.twitch.ping_interval_secs must be at least 1"));
                }
            }
            if let Some(y) = &s.youtube {
                if y.live_chat_id.is_empty() {
                    p.push(format!("{at}.youtube.live_chat_id must not be empty"));
                }
                url_problem(&mut p, &format!("{at}.youtube.api_url"), &y.api_url, &["http://", "https://"]);
                if !(200..=2000).contains(&y.max_results) {
                    p.push(format!("{at}.youtube.max_results {} is not within 200–2000", y.max_results));
                }
            }
            if let Some(n) = &s.niconico {
                if !n.live_id.starts_with("lv") {
                    p.push(format!("{at}.niconico.live_id must look like lv123456789"));
                }
                url_problem(&mut p, &format!("{at}.niconico.view_uri"), &n.view_uri, &["http://", "https://"]);
            }
        }
        p
    }
}

fn url_problem(p: &mut Vec<String>, field: &str, url: &str, schemes: &[&str]) {
    if !schemes.iter().any(|s| url.starts_with(s)) {
        p.push(format!("{field} '{url}' must start with {}", schemes.join(" or ")));
    }
}

impl Default for AdaptersConfig {
    fn default() -> Self {
        Self {
            channel_capacity: Self::d_channel(),
            action_capacity: Self::d_actions(),
            reconnect_min_ms: Self::d_min(),
            reconnect_max_ms: Self::d_max(),
            dedupe_ids: Self::d_dedupe(),
            streams: Vec::new(),
        }
    }
}

/// The platforms feeding one kotae stream (at least one).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StreamAdapters {
    /// The kotae stream id the messages belong to (`InMessage.stream`).
    pub stream: String,
    /// Read this Twitch channel.
    #[serde(default)]
    pub twitch: Option<TwitchConfig>,
    /// Poll this YouTube live chat.
    #[serde(default)]
    pub youtube: Option<YoutubeConfig>,
    /// Stream this Niconico programme's comments.
    #[serde(default)]
    pub niconico: Option<NiconicoConfig>,
}

/// Twitch: IRC over WebSocket to read, Helix to moderate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TwitchConfig {
    /// Channel login to join, without `#` (e.g. `pajlada`).
    pub channel: String,
    /// IRC-over-WebSocket endpoint.
    #[serde(default = "TwitchConfig::d_irc")]
    pub irc_url: String,
    /// Login to read as; without one kotae reads anonymously as `justinfan<random>`.
    #[serde(default)]
    pub nick: Option<String>,
    /// Name of the environment variable holding a user access token (without `oauth:`). Needed
    /// for Helix moderation; also used to log in to IRC when `nick` is set.
    #[serde(default)]
    pub token_env: Option<String>,
    /// The application's client id, sent as `Client-Id` to Helix.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Helix API base URL.
    #[serde(default = "TwitchConfig::d_helix")]
    pub helix_url: String,
    /// Broadcaster user id; learnt from the chat's `room-id` when not set.
    #[serde(default)]
    pub broadcaster_id: Option<String>,
    /// User id of the moderator the token belongs to (Helix `moderator_id`).
    #[serde(default)]
    pub moderator_id: Option<String>,
    /// Seconds of silence before kotae sends its own PING; no answer within 10 s more means
    /// the connection is dead and is replaced.
    #[serde(default = "TwitchConfig::d_ping")]
    pub ping_interval_secs: u64,
}

impl TwitchConfig {
    fn d_irc() -> String {
        "wss://irc-ws.chat.twitch.tv:443".into()
    }
    fn d_helix() -> String {
        "https://api.twitch.tv/helix".into()
    }
    fn d_ping() -> u64 {
        30
    }

    /// A configuration with defaults for `channel`.
    pub fn for_channel(channel: &str) -> Self {
        Self {
            channel: channel.into(),
            irc_url: Self::d_irc(),
            nick: None,
            token_env: None,
            client_id: None,
            helix_url: Self::d_helix(),
            broadcaster_id: None,
            moderator_id: None,
            ping_interval_secs: Self::d_ping(),
        }
    }
}

/// YouTube: `liveChatMessages.list` polling, `liveChatMessages.delete` and `liveChatBans.insert`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct YoutubeConfig {
    /// The live chat id (`liveStreamingDetails.activeLiveChatId` of the video).
    pub live_chat_id: String,
    /// Data API base URL.
    #[serde(default = "YoutubeConfig::d_api")]
    pub api_url: String,
    /// Name of the environment variable holding an API key (read-only access).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Name of the environment variable holding an OAuth access token of the channel owner or a
    /// moderator; needed for delete, timeout and ban.
    #[serde(default)]
    pub oauth_token_env: Option<String>,
    /// Items per page asked for (200–2000).
    #[serde(default = "YoutubeConfig::d_max")]
    pub max_results: u32,
    /// Shortest wait between polls, ms, even if the API asks for less. Each poll costs 5 quota
    /// units of the default 10,000 a day.
    #[serde(default = "YoutubeConfig::d_min_poll")]
    pub min_poll_ms: u64,
}

impl YoutubeConfig {
    fn d_api() -> String {
        "https://www.googleapis.com/youtube/v3".into()
    }
    fn d_max() -> u32 {
        500
    }
    fn d_min_poll() -> u64 {
        1000
    }

    /// A configuration with defaults for `live_chat_id`.
    pub fn for_chat(live_chat_id: &str) -> Self {
        Self {
            live_chat_id: live_chat_id.into(),
            api_url: Self::d_api(),
            api_key_env: None,
            oauth_token_env: None,
            max_results: Self::d_max(),
            min_poll_ms: Self::d_min_poll(),
        }
    }
}

/// Niconico Live: the NDGR view and segment streams (read-only; actions are local hides).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NiconicoConfig {
    /// Programme id, `lv…`.
    pub live_id: String,
    /// The NDGR view URI from the watch WebSocket's `messageServer` message
    /// (`https://mpn.live.nicovideo.jp/api/view/v4/…`).
    pub view_uri: String,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    /// The example config with its commented `[[adapters.streams]]` sample switched on.
    fn example_with_streams() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kotae.example.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let mut out = String::new();
        let mut sample = false;
        for line in text.lines() {
            if line == "# [[adapters.streams]]" {
                sample = true;
            }
            if line == "streams = []" {
                sample = false;
                continue;
            }
            let line = if sample { line.strip_prefix("# ").unwrap_or(line.trim_start_matches('#')) } else { line };
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    #[test]
    fn the_commented_adapter_sample_in_the_example_config_is_valid() {
        let config = Config::parse(&example_with_streams(), Path::new("example")).unwrap();
        let s = &config.adapters.streams[0];
        assert_eq!(s.stream, "shop-1");
        assert_eq!(s.twitch.as_ref().map(|t| t.channel.as_str()), Some("pajlada"));
        assert_eq!(s.youtube.as_ref().map(|y| y.max_results), Some(500));
        assert_eq!(s.niconico.as_ref().map(|n| n.live_id.as_str()), Some("lv345479988"));
    }

    #[test]
    fn bad_adapter_settings_are_all_reported_with_their_fields() {
        let text = "[adapters]\nchannel_capacity = 0\n[[adapters.streams]]\nstream = \"a\"\n[adapters.streams.twitch]\nchannel = \"#pajlada\"\nirc_url = \"http://x\"\n[[adapters.streams]]\nstream = \"a\"\n";
        let err = Config::parse(text, Path::new("k.toml")).unwrap_err().to_string();
        for needle in [
            "adapters.channel_capacity",
            "adapters.streams[0].twitch.channel",
            "adapters.streams[0].twitch.irc_url",
            "adapters.streams[1].stream 'a' is listed twice",
            "adapters.streams[1] names no platform",
        ] {
            assert!(err.contains(needle), "{needle} missing in: {err}");
        }
    }

    #[test]
    fn unknown_adapter_fields_are_rejected() {
        let text = "[[adapters.streams]]\nstream = \"a\"\n[adapters.streams.youtube]\nlive_chat_id = \"c\"\napi_key = \"secret\"\n";
        let err = Config::parse(text, Path::new("k.toml")).unwrap_err().to_string();
        assert!(err.contains("unknown field"), "{err}");
    }
}
