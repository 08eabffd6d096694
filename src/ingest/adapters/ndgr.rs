//! Niconico's NDGR comment stream (platforms.md §3.2): a sequence of `varint(len) ‖ protobuf`
//! frames over HTTP streaming. The reader and the message types are pure: fuzzed and
//! property-tested.
//!
//! The message structs are written by hand with `prost` derives, holding only the fields kotae
//! reads; field numbers follow `dwango/nicolive/chat/service/edge/payload.proto` and
//! `…/chat/data/message.proto` as published by n-air-app/nicolive-comment-protobuf (MIT).
//! Unknown fields and oneof variants are skipped by prost, so newer server messages decode.

use bytes::{Buf, Bytes, BytesMut};
use prost::Message;

use super::chat::{Author, ChatMessage, IdOrigin, IdScope, MessageKind, Paid, Platform, RawEncoding, RawFrame, Roles};
use crate::money::{Currency, Money};

/// Largest frame accepted (nicomget caps messages at 16 MB).
pub const MAX_FRAME: usize = 16 << 20;

/// The byte stream cannot be framed any more; the connection must be dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The varint prefix runs past ten bytes or past 64 bits.
    #[error("length prefix is not a valid varint")]
    BadLength,
    /// The prefix announces more than [`MAX_FRAME`] bytes (the announced length).
    #[error("frame of {0} bytes is over the limit")]
    TooLong(u64),
}

/// Splits a byte stream that arrives in arbitrary chunks into length-delimited frames.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: BytesMut,
}

impl FrameReader {
    /// A reader holding no bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes as they arrive.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held that do not make a whole frame yet.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame (without its prefix), `None` until enough bytes have arrived.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        let mut len: u64 = 0;
        let mut prefix = 0;
        loop {
            let Some(&b) = self.buf.get(prefix) else { return Ok(None) };
            if prefix == 9 && b > 1 {
                return Err(FrameError::BadLength);
            }
            len |= u64::from(b & 0x7f) << (7 * prefix);
            prefix += 1;
            if b & 0x80 == 0 {
                break;
            }
            if prefix == 10 {
                return Err(FrameError::BadLength);
            }
        }
        if len > MAX_FRAME as u64 {
            return Err(FrameError::TooLong(len));
        }
        let len = len as usize;
        if self.buf.len() < prefix + len {
            return Ok(None);
        }
        self.buf.advance(prefix);
        Ok(Some(self.buf.split_to(len).freeze()))
    }
}

/// Encodes one message with its length prefix (for fakes and fixtures).
pub fn encode_frame<M: Message>(m: &M) -> Vec<u8> {
    m.encode_length_delimited_to_vec()
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second (0 to 999,999,999).
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// Unix milliseconds, `None` before 1970.
    pub fn unix_ms(&self) -> Option<u64> {
        let ms = self.seconds.checked_mul(1000)?.checked_add(i64::from(self.nanos) / 1_000_000)?;
        u64::try_from(ms).ok()
    }
}

/// One item of the view stream: where to read next.
#[derive(Clone, PartialEq, Message)]
pub struct ChunkedEntry {
    /// What to read next; `None` for an entry kind this reader does not know.
    #[prost(oneof = "chunked_entry::Entry", tags = "1, 2, 3, 4")]
    pub entry: Option<chunked_entry::Entry>,
}

/// The `entry` oneof of [`ChunkedEntry`].
pub mod chunked_entry {
    /// The `entry` oneof.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Entry {
        /// Live comments from `from` to `until`, streamed from `uri`.
        #[prost(message, tag = "1")]
        Segment(super::MessageSegment),
        /// Packed history; kotae does not page back through it.
        #[prost(message, tag = "2")]
        Backward(super::BackwardSegment),
        /// The segment just before the live edge: comments from before kotae connected.
        #[prost(message, tag = "3")]
        Previous(super::MessageSegment),
        /// Ask the view API again with `?at=<at>`.
        #[prost(message, tag = "4")]
        Next(super::ReadyForNext),
    }
}

/// A stretch of comments, readable as a stream of [`ChunkedMessage`] frames from `uri`.
#[derive(Clone, PartialEq, Message)]
pub struct MessageSegment {
    /// Start of the comments it holds.
    #[prost(message, optional, tag = "1")]
    pub from: Option<Timestamp>,
    /// End of the comments it holds; the segment's stream ends after it.
    #[prost(message, optional, tag = "2")]
    pub until: Option<Timestamp>,
    /// Where to stream the segment from.
    #[prost(string, tag = "3")]
    pub uri: String,
}

/// Packed history before the live edge (`Backward` entries; kotae skips them).
#[derive(Clone, PartialEq, Message)]
pub struct BackwardSegment {
    /// End of the history it holds.
    #[prost(message, optional, tag = "1")]
    pub until: Option<Timestamp>,
}

/// The view API's pointer to the next batch of entries.
#[derive(Clone, PartialEq, Message)]
pub struct ReadyForNext {
    /// The value to pass as `?at=` to the view API (Unix seconds).
    #[prost(int64, tag = "1")]
    pub at: i64,
}

/// One item of a segment stream.
#[derive(Clone, PartialEq, Message)]
pub struct ChunkedMessage {
    /// The message's id, time and programme.
    #[prost(message, optional, tag = "1")]
    pub meta: Option<Meta>,
    /// What it carries; `None` for a payload kind this reader does not know.
    #[prost(oneof = "chunked_message::Payload", tags = "2, 4, 5")]
    pub payload: Option<chunked_message::Payload>,
}

/// The `payload` oneof of [`ChunkedMessage`].
pub mod chunked_message {
    /// The `payload` oneof.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Payload {
        /// A comment or gift.
        #[prost(message, tag = "2")]
        Message(super::NicoliveMessage),
        /// Programme state (statistics, marquee, enquete …); kotae skips it.
        #[prost(bytes, tag = "4")]
        State(Vec<u8>),
        /// `Flushed = 0`: a segment boundary, not the end of the stream.
        #[prost(int32, tag = "5")]
        Signal(i32),
    }
}

/// Id, time and origin of a [`ChunkedMessage`].
#[derive(Clone, PartialEq, Message)]
pub struct Meta {
    /// The only message id NDGR has.
    #[prost(string, tag = "1")]
    pub id: String,
    /// When the comment was posted.
    #[prost(message, optional, tag = "2")]
    pub at: Option<Timestamp>,
    /// The programme it was posted to.
    #[prost(message, optional, tag = "3")]
    pub origin: Option<Origin>,
}

/// Where a message came from.
#[derive(Clone, PartialEq, Message)]
pub struct Origin {
    /// The live programme, when it came from one.
    #[prost(message, optional, tag = "1")]
    pub chat: Option<OriginChat>,
}

/// The live programme a message was posted to.
#[derive(Clone, PartialEq, Message)]
pub struct OriginChat {
    /// The programme number: `lv{live_id}`; 0 or less when unknown.
    #[prost(int64, tag = "1")]
    pub live_id: i64,
}

/// A programme message: the comment or gift it holds.
#[derive(Clone, PartialEq, Message)]
pub struct NicoliveMessage {
    /// The message kind; `None` for a kind kotae does not read.
    #[prost(oneof = "nicolive_message::Data", tags = "1, 8, 20")]
    pub data: Option<nicolive_message::Data>,
}

/// The `data` oneof of [`NicoliveMessage`].
pub mod nicolive_message {
    /// The parts of the `data` oneof kotae reads; the rest are skipped.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Data {
        /// A comment in the main arena.
        #[prost(message, tag = "1")]
        Chat(super::Chat),
        /// A Nicoad or gift (see [`Gift`](super::Gift)).
        #[prost(message, tag = "8")]
        Gift(super::Gift),
        /// Comments that overflowed the main arena: not shown, still moderated.
        #[prost(message, tag = "20")]
        OverflowedChat(super::Chat),
    }
}

/// A viewer comment.
#[derive(Clone, PartialEq, Message)]
pub struct Chat {
    /// The comment text.
    #[prost(string, tag = "1")]
    pub content: String,
    /// The name shown beside the comment, when the viewer set one.
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
    /// 1/100 s from the programme's `vposBaseTime`.
    #[prost(int32, tag = "3")]
    pub vpos: i32,
    /// Standard = 0, Premium = 1.
    #[prost(int32, tag = "4")]
    pub account_status: i32,
    /// The viewer's account number, when the comment is not anonymous; 0 or absent otherwise.
    #[prost(int64, optional, tag = "5")]
    pub raw_user_id: Option<i64>,
    /// `a:…`: per-programme id of anonymous (184) comments.
    #[prost(string, optional, tag = "6")]
    pub hashed_user_id: Option<String>,
    /// Comment number within the programme.
    #[prost(int32, tag = "8")]
    pub no: i32,
}

/// A Nicoad / gift item.
#[derive(Clone, PartialEq, Message)]
pub struct Gift {
    /// The gift item's id.
    #[prost(string, tag = "1")]
    pub item_id: String,
    /// The giver's account number; absent when the gift was anonymous.
    #[prost(int64, optional, tag = "2")]
    pub advertiser_user_id: Option<i64>,
    /// The giver's name as shown.
    #[prost(string, tag = "3")]
    pub advertiser_name: String,
    /// Nicoad points spent (zero for gifts that carry none).
    #[prost(int64, tag = "4")]
    pub point: i64,
    /// The message sent with it.
    #[prost(string, tag = "5")]
    pub message: String,
    /// The gift item's name, shown with the points.
    #[prost(string, tag = "6")]
    pub item_name: String,
}

/// A frame that decoded but is not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NdgrError {
    /// Protobuf decoding failed (the decoder's message).
    #[error("protobuf: {0}")]
    Decode(String),
    /// The message has no `meta.id`, so it cannot be named in moderation or deduplicated on resume.
    #[error("message without meta.id")]
    NoId,
}

/// Where normalized messages go.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The kotae stream the adapter feeds.
    pub stream: &'a str,
    /// The programme id (`lv…`), used when the frame does not name one.
    pub live_id: &'a str,
    /// kotae's wall clock when the frame was read, Unix milliseconds.
    pub received_at_ms: u64,
    /// Whether the frame is from the `previous` segment (before kotae connected) rather than live.
    pub backfill: bool,
}

/// Decodes one segment frame into a chat message; `Ok(None)` for state, signals and message
/// kinds kotae does not read.
pub fn chat_from_frame(frame: &Bytes, cx: Context<'_>) -> Result<Option<ChatMessage>, NdgrError> {
    let m = ChunkedMessage::decode(frame.clone()).map_err(|e| NdgrError::Decode(e.to_string()))?;
    let Some(chunked_message::Payload::Message(NicoliveMessage { data: Some(data) })) = m.payload else {
        return Ok(None);
    };
    let meta = m.meta.unwrap_or_default();
    if meta.id.is_empty() {
        return Err(NdgrError::NoId);
    }
    let channel = match meta.origin.and_then(|o| o.chat).map(|c| c.live_id) {
        Some(id) if id > 0 => format!("lv{id}"),
        _ => cx.live_id.to_string(),
    };
    let (kind, text, author, paid) = match data {
        nicolive_message::Data::Chat(c) | nicolive_message::Data::OverflowedChat(c) => {
            (MessageKind::Chat, c.content.clone(), chat_author(&c), None)
        }
        nicolive_message::Data::Gift(g) => {
            let mut a = Author::named(g.advertiser_name.clone());
            if let Some(id) = g.advertiser_user_id {
                a.id = Some(id.to_string());
                a.id_scope = IdScope::Global;
            } else {
                a.roles.anonymous = true;
            }
            let paid = u64::try_from(g.point).ok().filter(|&p| p > 0).map(|p| Paid {
                money: Money { amount: p, currency: Currency::NICOAD_POINT, exponent: 0 },
                display: Some(format!("{p}pt {}", g.item_name)),
                tier: None,
            });
            (MessageKind::Gift, g.message.clone(), a, paid)
        }
    };
    Ok(Some(ChatMessage {
        platform: Platform::Niconico,
        stream: cx.stream.to_string(),
        channel,
        id: meta.id,
        id_origin: IdOrigin::Native,
        kind,
        author,
        text,
        fragments: Vec::new(),
        paid,
        support: None,
        reply: None,
        sent_at_ms: meta.at.and_then(|t| t.unix_ms()),
        received_at_ms: cx.received_at_ms,
        seq: 0,
        backfill: cx.backfill,
        raw: RawFrame { encoding: RawEncoding::Protobuf, bytes: frame.clone() },
    }))
}

/// Raw ids are global; an anonymous (184) comment has only a per-programme `a:…` hash.
fn chat_author(c: &Chat) -> Author {
    let (id, id_scope, anonymous) = match (c.raw_user_id, &c.hashed_user_id) {
        (Some(raw), _) if raw > 0 => (Some(raw.to_string()), IdScope::Global, false),
        (_, Some(h)) if !h.is_empty() => (Some(h.clone()), IdScope::PerProgram, true),
        _ => (None, IdScope::Unknown, true),
    };
    Author {
        id,
        id_scope,
        login: None,
        display_name: c.name.clone().unwrap_or_default(),
        color: None,
        roles: Roles { premium: c.account_status == 1, anonymous, ..Roles::default() },
        badges: Vec::new(),
        member_months: None,
    }
}

/// Parses hex with optional whitespace (fixture files).
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits.chunks(2).map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The synthetic frame of platforms.md §3.2, hand-encoded from the n-air-app proto.
    const DOC_FRAME: &str = "600a2c0a136578616d706c652d6d73672d69642d30303031120b08c0e7c1b50610c0a9d33a1a080a0608b4b6dea40112300a2e0a0fe38193e38293e381abe381a1e381af18b96020013212613a4162436445664768496a4b6c4d6e4f703a00402a";

    fn cx() -> Context<'static> {
        Context { stream: "s", live_id: "lv1", received_at_ms: 5, backfill: false }
    }

    #[test]
    fn the_documented_frame_decodes_to_an_anonymous_premium_comment() {
        let mut r = FrameReader::new();
        r.push(&from_hex(DOC_FRAME).unwrap());
        let frame = r.next_frame().unwrap().unwrap();
        assert_eq!(r.pending(), 0);
        let m = chat_from_frame(&frame, cx()).unwrap().unwrap();
        assert_eq!(m.id, "example-msg-id-0001");
        assert_eq!(m.text, "こんにちは");
        assert_eq!(m.channel, "lv345479988");
        assert_eq!(m.sent_at_ms, Some(1_722_840_000_123));
        assert_eq!(m.author.id.as_deref(), Some("a:AbCdEfGhIjKlMnOp"));
        assert_eq!(m.author.id_scope, IdScope::PerProgram);
        assert!(m.author.roles.anonymous && m.author.roles.premium);
        assert_eq!(m.to_in_message().user.as_deref(), Some("nico:a:AbCdEfGhIjKlMnOp"));
    }

    #[test]
    fn frames_split_across_chunks_are_reassembled() {
        let bytes = from_hex(DOC_FRAME).unwrap();
        let mut all = bytes.clone();
        all.extend_from_slice(&bytes);
        let mut r = FrameReader::new();
        let mut frames = 0;
        for chunk in all.chunks(7) {
            r.push(chunk);
            while let Some(f) = r.next_frame().unwrap() {
                assert_eq!(f.len(), 96);
                frames += 1;
            }
        }
        assert_eq!(frames, 2);
    }

    #[test]
    fn an_overlong_prefix_is_a_framing_error() {
        let mut r = FrameReader::new();
        r.push(&[0xff; 11]);
        assert_eq!(r.next_frame(), Err(FrameError::BadLength));
        let mut r = FrameReader::new();
        r.push(&[0x80, 0x80, 0x80, 0x10]);
        assert_eq!(r.next_frame(), Err(FrameError::TooLong(1 << 25)));
    }

    #[test]
    fn garbage_inside_a_valid_frame_is_a_decode_error() {
        let frame = Bytes::from_static(&[0x0a, 0x05, 0x01]);
        assert!(matches!(chat_from_frame(&frame, cx()), Err(NdgrError::Decode(_))));
    }

    #[test]
    fn a_signal_is_not_a_chat_message() {
        let m = ChunkedMessage { meta: None, payload: Some(chunked_message::Payload::Signal(0)) };
        let f = Bytes::from(m.encode_to_vec());
        assert_eq!(chat_from_frame(&f, cx()), Ok(None));
    }

    #[test]
    fn logged_in_comments_have_a_global_id() {
        let c = Chat { content: "在庫ありますか".into(), raw_user_id: Some(12345), ..Chat::default() };
        let a = chat_author(&c);
        assert_eq!((a.id.as_deref(), a.id_scope, a.roles.anonymous), (Some("12345"), IdScope::Global, false));
    }
}
