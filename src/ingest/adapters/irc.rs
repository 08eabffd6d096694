//! IRC lines with IRCv3 tags as Twitch sends them (platforms.md §1.1), and their normalization
//! into [`ChatMessage`] and [`ModerationEvent`]. Pure functions, no I/O: fuzzed and
//! property-tested.
//!
//! A line is `[@tags ][:prefix ]COMMAND[ params][ :trailing]`; one WebSocket text frame may hold
//! several lines separated by `\r\n`.

use std::borrow::Cow;

use bytes::Bytes;

use super::chat::{
    Author, Badge, ChatMessage, Fragment, IdOrigin, IdScope, MessageKind, ModerationEvent, Paid, Platform, RawEncoding,
    RawFrame, ReplyRef, Roles, Support,
};
use crate::money::{Currency, Money};

/// A line that is not IRC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IrcError {
    /// The line is empty or only spaces.
    #[error("empty line")]
    Empty,
    /// Tags or prefix with no command after them.
    #[error("no command")]
    NoCommand,
    /// A command kotae reads lacks a part it needs (a channel, `target-msg-id`…).
    #[error("{command} lacks {what}")]
    Missing {
        /// The command (`CLEARMSG`).
        command: String,
        /// What it lacks, in words (`a channel`).
        what: &'static str,
    },
}

/// One parsed IRC line borrowing from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrcMessage<'a> {
    /// Tags in order, values unescaped.
    pub tags: Vec<(&'a str, Cow<'a, str>)>,
    /// The prefix without `:` (`nick!user@host` or `tmi.twitch.tv`).
    pub prefix: Option<&'a str>,
    /// The command or numeric (`PRIVMSG`, `001`).
    pub command: &'a str,
    /// Middle parameters, then the trailing one (without its `:`) if present.
    pub params: Vec<&'a str>,
}

impl<'a> IrcMessage<'a> {
    /// A tag's unescaped value; `None` when absent. Present-but-empty gives `Some("")`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_ref())
    }

    /// A tag that is present and non-empty.
    fn tag_nonempty(&self, key: &str) -> Option<&str> {
        self.tag(key).filter(|v| !v.is_empty())
    }

    /// The nick part of the prefix.
    pub fn nick(&self) -> Option<&'a str> {
        let p = self.prefix?;
        let nick = p.split(['!', '@']).next().unwrap_or(p);
        (!nick.is_empty() && p.contains('!')).then_some(nick)
    }

    /// The first parameter (the channel for channel commands).
    pub fn channel(&self) -> Option<&'a str> {
        self.params.first().map(|c| c.strip_prefix('#').unwrap_or(c))
    }

    /// The last parameter when there are at least `n + 1`.
    fn param(&self, n: usize) -> Option<&'a str> {
        self.params.get(n).copied()
    }
}

/// Splits a WebSocket text frame into its IRC lines, without empty ones.
pub fn lines(frame: &str) -> impl Iterator<Item = &str> {
    frame.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).filter(|l| !l.is_empty())
}

/// Parses one IRC line (without its line ending).
pub fn parse_line(line: &str) -> Result<IrcMessage<'_>, IrcError> {
    let mut rest = line.trim_start_matches(' ');
    if rest.is_empty() {
        return Err(IrcError::Empty);
    }
    let mut tags = Vec::new();
    if let Some(after) = rest.strip_prefix('@') {
        let (raw, tail) = after.split_once(' ').unwrap_or((after, ""));
        for pair in raw.split(';').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            tags.push((k, unescape_tag_value(v)));
        }
        rest = tail.trim_start_matches(' ');
    }
    let mut prefix = None;
    if let Some(after) = rest.strip_prefix(':') {
        let (p, tail) = after.split_once(' ').unwrap_or((after, ""));
        prefix = Some(p);
        rest = tail.trim_start_matches(' ');
    }
    let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if command.is_empty() {
        return Err(IrcError::NoCommand);
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        if let Some(trailing) = rest.strip_prefix(':') {
            params.push(trailing);
            break;
        }
        let (p, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        params.push(p);
        rest = tail;
    }
    Ok(IrcMessage { tags, prefix, command, params })
}

/// Undoes IRCv3 tag-value escaping: `\:` → `;`, `\s` → space, `\\` → `\`, `\r`, `\n`; any other
/// escaped character stands for itself and a lone trailing `\` is dropped.
pub fn unescape_tag_value(v: &str) -> Cow<'_, str> {
    if !v.contains('\\') {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('\\') => out.push('\\'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    Cow::Owned(out)
}

/// One emote occurrence: Twitch id and an inclusive char range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmoteRange {
    /// The Twitch emote id.
    pub id: String,
    /// First char of the emote code in the message text.
    pub start: usize,
    /// Last char of the emote code (inclusive, as the tag gives it).
    pub end_inclusive: usize,
}

/// Parses the `emotes` tag (`25:0-4,12-16/1902:6-10`). Malformed pieces are skipped.
pub fn parse_emotes(tag: &str) -> Vec<EmoteRange> {
    let mut out = Vec::new();
    for group in tag.split('/').filter(|g| !g.is_empty()) {
        let Some((id, ranges)) = group.split_once(':') else { continue };
        for r in ranges.split(',') {
            let Some((s, e)) = r.split_once('-') else { continue };
            if let (Ok(start), Ok(end)) = (s.parse::<usize>(), e.parse::<usize>())
                && start <= end
            {
                out.push(EmoteRange { id: id.to_string(), start, end_inclusive: end });
            }
        }
    }
    out.sort_by_key(|e| e.start);
    out
}

/// Splits `text` into text and emote fragments. Ranges count chars (Unicode scalar values), as
/// Twitch does; ranges past the end are clamped (Twitch bug twitchdev/issues#104) and
/// overlapping ones dropped.
pub fn fragments(text: &str, emotes: &[EmoteRange]) -> Vec<Fragment> {
    if emotes.is_empty() {
        return Vec::new();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut pos = 0;
    for e in emotes {
        let end = (e.end_inclusive + 1).min(chars.len());
        if e.start < pos || e.start >= end {
            continue;
        }
        if e.start > pos {
            out.push(Fragment::Text { text: chars[pos..e.start].iter().collect() });
        }
        out.push(Fragment::Emote { id: e.id.clone(), code: chars[e.start..end].iter().collect(), start: e.start, end });
        pos = end;
    }
    if pos < chars.len() {
        out.push(Fragment::Text { text: chars[pos..].iter().collect() });
    }
    out
}

/// Parses `badges` / `badge-info` (`moderator/1,subscriber/12`).
pub fn parse_badges(tag: &str) -> Vec<Badge> {
    tag.split(',')
        .filter_map(|b| b.split_once('/'))
        .filter(|(set, _)| !set.is_empty())
        .map(|(set, version)| Badge { set: set.into(), version: version.into() })
        .collect()
}

/// Where a normalized message goes: adapter stream and the time it was read.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The kotae stream the adapter feeds.
    pub stream: &'a str,
    /// kotae's wall clock when the line was read, Unix milliseconds.
    pub received_at_ms: u64,
    /// The adapter's ingest order for this line, starting at 1 ([`ChatMessage::seq`]).
    pub seq: u64,
}

/// What one IRC line means for ingest.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A chat message (PRIVMSG) or user notice with a user (USERNOTICE: subs, gifts, raids…).
    Chat(Box<ChatMessage>),
    /// A moderator deleted a message (CLEARMSG), or cleared a user or the whole chat (CLEARCHAT).
    Moderation {
        /// The channel login, without `#`.
        channel: String,
        /// What was done.
        event: ModerationEvent,
        /// Twitch's clock (`tmi-sent-ts`), Unix milliseconds, when given.
        sent_at_ms: Option<u64>,
    },
    /// The server pinged; answer `PONG :<token>`.
    Ping(String),
    /// Our own PING was answered.
    Pong,
    /// The server is going away: reconnect now.
    Reconnect,
    /// `001`: logged in.
    Welcome,
    /// Channel joined (ROOMSTATE carries the broadcaster id).
    RoomState {
        /// The channel's numeric id (`room-id`), which Helix moderation calls need as the
        /// broadcaster id.
        room_id: Option<String>,
    },
    /// A server notice (NOTICE): a failed login, a refused command; logged, not acted on.
    Notice {
        /// Twitch's `msg-id` tag naming the notice (`msg_banned`), when given.
        msg_id: Option<String>,
        /// The notice's text.
        text: String,
    },
    /// Nothing kotae needs (CAP ACK, JOIN echoes, 353, USERSTATE …).
    Other,
}

/// Interprets one parsed line. `line` is the raw text kept as the audit frame.
pub fn interpret(msg: &IrcMessage<'_>, line: &str, cx: Context<'_>) -> Result<Event, IrcError> {
    let missing = |what| IrcError::Missing { command: msg.command.to_string(), what };
    let sent_at_ms = msg.tag("tmi-sent-ts").and_then(|t| t.parse().ok());
    Ok(match msg.command {
        "PRIVMSG" => Event::Chat(Box::new(privmsg(msg, line, cx)?)),
        "USERNOTICE" => Event::Chat(Box::new(usernotice(msg, line, cx)?)),
        "CLEARMSG" => Event::Moderation {
            channel: msg.channel().ok_or_else(|| missing("a channel"))?.to_string(),
            event: ModerationEvent::MessageDeleted {
                message_id: msg.tag_nonempty("target-msg-id").ok_or_else(|| missing("target-msg-id"))?.to_string(),
            },
            sent_at_ms,
        },
        "CLEARCHAT" => {
            let channel = msg.channel().ok_or_else(|| missing("a channel"))?.to_string();
            let event = match msg.tag_nonempty("target-user-id") {
                Some(user) => ModerationEvent::UserCleared {
                    user_id: user.to_string(),
                    timeout_secs: msg.tag("ban-duration").and_then(|d| d.parse().ok()),
                },
                None => ModerationEvent::ChatCleared,
            };
            Event::Moderation { channel, event, sent_at_ms }
        }
        "PING" => Event::Ping(msg.params.last().copied().unwrap_or("tmi.twitch.tv").to_string()),
        "PONG" => Event::Pong,
        "RECONNECT" => Event::Reconnect,
        "001" => Event::Welcome,
        "ROOMSTATE" => Event::RoomState { room_id: msg.tag_nonempty("room-id").map(str::to_string) },
        "NOTICE" => Event::Notice {
            msg_id: msg.tag("msg-id").map(str::to_string),
            text: msg.params.last().copied().unwrap_or("").to_string(),
        },
        _ => Event::Other,
    })
}

/// The accounts Twitch puts on anonymous gifts and cheers (announced with anonymous sub gifting,
/// discuss.dev.twitch.tv/t/18683): they stand for nobody, so nothing is credited to them.
const ANONYMOUS_ACCOUNTS: &[(&str, &str)] = &[("274598607", "ananonymousgifter"), ("407665396", "ananonymouscheerer")];

/// Whether the line's sender is an anonymous gifter or cheerer rather than a person.
fn is_anonymous(msg: &IrcMessage<'_>) -> bool {
    let (id, login) = (msg.tag("user-id"), msg.tag("login").or_else(|| msg.nick()));
    ANONYMOUS_ACCOUNTS.iter().any(|(i, l)| id == Some(*i) || login == Some(*l))
        || matches!(msg.tag("msg-id"), Some("anonsubgift" | "anonsubmysterygift"))
}

fn author(msg: &IrcMessage<'_>) -> Author {
    let badges = msg.tag("badges").map(parse_badges).unwrap_or_default();
    let has = |set: &str| badges.iter().any(|b| b.set == set);
    let flag = |key: &str| msg.tag(key) == Some("1");
    let login = msg.tag_nonempty("login").map(str::to_string).or_else(|| msg.nick().map(str::to_string));
    let anonymous = is_anonymous(msg);
    let roles = Roles {
        broadcaster: has("broadcaster"),
        moderator: flag("mod") || has("moderator"),
        vip: flag("vip") || has("vip"),
        member: flag("subscriber") || has("subscriber") || has("founder"),
        verified: has("partner"),
        premium: flag("turbo") || has("turbo"),
        first_time: flag("first-msg"),
        returning: flag("returning-chatter"),
        staff: has("staff") || has("admin") || has("global_mod"),
        anonymous,
    };
    // A sub or resub says how many months in total; the badge can lag behind it.
    let cumulative = match msg.tag("msg-id") {
        Some("sub" | "resub") => msg.tag("msg-param-cumulative-months").and_then(|m| m.parse().ok()).filter(|&m| m > 0),
        _ => None,
    };
    let member_months = cumulative.or_else(|| {
        msg.tag("badge-info")
            .map(parse_badges)
            .unwrap_or_default()
            .into_iter()
            .find(|b| b.set == "subscriber" || b.set == "founder")
            .and_then(|b| b.version.parse().ok())
    });
    let display_name =
        msg.tag_nonempty("display-name").map(str::to_string).or_else(|| login.clone()).unwrap_or_default();
    if anonymous {
        // Shown as Twitch shows it, but no id or login: dedupe, asker counts and bans must not
        // treat every anonymous gift as one very generous viewer.
        return Author {
            id: None,
            id_scope: IdScope::Unknown,
            login: None,
            display_name,
            color: None,
            roles,
            badges,
            member_months: None,
        };
    }
    Author {
        id: msg.tag_nonempty("user-id").map(str::to_string),
        id_scope: IdScope::Global,
        display_name,
        login,
        color: msg.tag_nonempty("color").map(str::to_string),
        roles,
        badges,
        member_months,
    }
}

/// The message id: the `id` tag, or, for lines without one (older and relayed lines, some
/// cheers), an id synthesized from what identifies the message — channel, sender, send time and
/// text — so a resumed connection that delivers the line again gives it the same id and the
/// repeat is dropped. Without `tmi-sent-ts` the receive time stands in, and a repeat after a
/// resume is no longer recognized.
fn message_id(msg: &IrcMessage<'_>, text: &str, cx: Context<'_>) -> (String, IdOrigin) {
    if let Some(id) = msg.tag_nonempty("id") {
        return (id.to_string(), IdOrigin::Native);
    }
    let sender = msg.tag_nonempty("user-id").or_else(|| msg.tag_nonempty("login")).or_else(|| msg.nick());
    let sent = msg.tag_nonempty("tmi-sent-ts").map_or_else(|| cx.received_at_ms.to_string(), str::to_string);
    let mut h = Fnv1a::default();
    for part in [msg.command, msg.channel().unwrap_or_default(), sender.unwrap_or_default(), &sent, text] {
        h.write(part.as_bytes());
        h.write(&[0xff]); // a byte no UTF-8 text holds, so parts cannot run into each other
    }
    (format!("syn-{:016x}", h.0), IdOrigin::Synthesized)
}

/// 64-bit FNV-1a: stable across runs and builds (unlike `DefaultHasher`), and enough to tell
/// apart the few thousand ids an adapter remembers.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn base(msg: &IrcMessage<'_>, line: &str, cx: Context<'_>, text: String, kind: MessageKind) -> ChatMessage {
    let emotes = msg.tag("emotes").map(parse_emotes).unwrap_or_default();
    let (id, id_origin) = message_id(msg, &text, cx);
    ChatMessage {
        platform: Platform::Twitch,
        stream: cx.stream.to_string(),
        channel: msg.channel().unwrap_or_default().to_string(),
        id,
        id_origin,
        kind,
        author: author(msg),
        fragments: fragments(&text, &emotes),
        text,
        paid: None,
        support: None,
        reply: None,
        sent_at_ms: msg.tag("tmi-sent-ts").and_then(|t| t.parse().ok()),
        received_at_ms: cx.received_at_ms,
        seq: cx.seq,
        backfill: msg.tag("historical") == Some("1"),
        raw: RawFrame { encoding: RawEncoding::Irc, bytes: Bytes::copy_from_slice(line.as_bytes()) },
    }
}

/// The payment of a PRIVMSG: a Hype Chat (`pinned-chat-paid-amount` in `-exponent` decimal
/// places of `-currency`, `-level` ONE–TEN) or a cheer (`bits`).
fn privmsg_paid(msg: &IrcMessage<'_>) -> Result<Option<Paid>, IrcError> {
    let invalid = |what| IrcError::Missing { command: "PRIVMSG".into(), what };
    if let Some(amount) = msg.tag_nonempty("pinned-chat-paid-amount") {
        let amount: u64 = amount.parse().map_err(|_| invalid("a numeric pinned-chat-paid-amount"))?;
        let currency = msg
            .tag("pinned-chat-paid-currency")
            .and_then(|c| Currency::new(c).ok())
            .ok_or_else(|| invalid("a pinned-chat-paid-currency code"))?;
        let money = match msg.tag_nonempty("pinned-chat-paid-exponent") {
            Some(e) => e.parse().ok().and_then(|e| Money::new(amount, currency, e).ok()),
            None => Money::in_minor_units(amount, currency).ok(),
        }
        .ok_or_else(|| invalid("a pinned-chat-paid-exponent of 0-9"))?;
        const LEVELS: [&str; 10] = ["ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "TEN"];
        let tier =
            msg.tag("pinned-chat-paid-level").and_then(|l| LEVELS.iter().position(|x| *x == l)).map(|i| i as u32 + 1);
        return Ok(Some(Paid { money, display: None, tier }));
    }
    let bits = msg.tag("bits").and_then(|b| b.parse::<u64>().ok()).filter(|&b| b > 0);
    Ok(bits.map(|b| Paid {
        money: Money { amount: b, currency: Currency::BITS, exponent: 0 },
        display: None,
        tier: None,
    }))
}

fn privmsg(msg: &IrcMessage<'_>, line: &str, cx: Context<'_>) -> Result<ChatMessage, IrcError> {
    let missing = |what| IrcError::Missing { command: "PRIVMSG".into(), what };
    if msg.params.len() < 2 {
        return Err(missing("a channel and text"));
    }
    let mut text = msg.param(1).unwrap_or_default();
    // `/me` arrives as CTCP ACTION; keep the words, drop the markers.
    if let Some(inner) = text.strip_prefix("\u{1}ACTION ") {
        text = inner.strip_suffix('\u{1}').unwrap_or(inner);
    }
    let paid = privmsg_paid(msg)?;
    let kind = if paid.is_some() { MessageKind::Paid } else { MessageKind::Chat };
    let mut m = base(msg, line, cx, text.to_string(), kind);
    m.paid = paid;
    m.reply = msg.tag_nonempty("reply-parent-msg-id").map(|parent| ReplyRef {
        parent_id: parent.to_string(),
        parent_author_id: msg.tag_nonempty("reply-parent-user-id").map(str::to_string),
        parent_author_login: msg.tag_nonempty("reply-parent-user-login").map(str::to_string),
        parent_excerpt: msg.tag_nonempty("reply-parent-msg-body").map(str::to_string),
        thread_root_id: msg.tag_nonempty("reply-thread-parent-msg-id").map(str::to_string),
    });
    Ok(m)
}

/// A sub plan as a level name: `Prime`, `Tier 1` (1000), `Tier 2` (2000), `Tier 3` (3000).
fn sub_level(plan: &str) -> String {
    match plan {
        "1000" => "Tier 1".into(),
        "2000" => "Tier 2".into(),
        "3000" => "Tier 3".into(),
        other => other.to_string(),
    }
}

fn usernotice(msg: &IrcMessage<'_>, line: &str, cx: Context<'_>) -> Result<ChatMessage, IrcError> {
    if msg.params.is_empty() {
        return Err(IrcError::Missing { command: "USERNOTICE".into(), what: "a channel" });
    }
    // The viewer's own words if any (resub messages), else the system text.
    let text = msg.param(1).or_else(|| msg.tag("system-msg")).unwrap_or_default().to_string();
    let msg_id = msg.tag("msg-id").unwrap_or_default();
    // Anonymous variants are the same events as their named siblings, from nobody in particular.
    let (kind, upgrade) = match msg_id {
        "sub" | "resub" => (MessageKind::Membership, false),
        "primepaidupgrade" | "giftpaidupgrade" | "anongiftpaidupgrade" => (MessageKind::Membership, true),
        "subgift"
        | "anonsubgift"
        | "submysterygift"
        | "anonsubmysterygift"
        | "standardpayforward"
        | "communitypayforward" => (MessageKind::Gift, false),
        _ => (MessageKind::System, false),
    };
    let mut m = base(msg, line, cx, text, kind);
    if kind != MessageKind::System {
        let count = |key| msg.tag(key).and_then(|c| c.parse().ok());
        m.support = Some(Support {
            gift_count: match msg_id {
                "submysterygift" | "anonsubmysterygift" => count("msg-param-mass-gift-count"),
                _ if kind == MessageKind::Gift => Some(1),
                _ => None,
            },
            level: msg.tag_nonempty("msg-param-sub-plan").map(sub_level),
            upgrade,
            recipient_id: msg.tag_nonempty("msg-param-recipient-id").map(str::to_string),
            gifter_id: None,
        });
    }
    Ok(m)
}

#[cfg(test)]
mod tests;
