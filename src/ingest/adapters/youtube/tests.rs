//! Unit tests of `src/ingest/adapters/youtube.rs` and `youtube/item.rs`.

use super::*;
use crate::ingest::adapters::chat::{ChatMessage, MessageKind, ModerationEvent, RawEncoding};

const CX: Context<'static> = Context { stream: "s", live_chat_id: "chat", received_at_ms: 1, backfill: false };

fn chat(json: &str) -> ChatMessage {
    match normalize_item(&serde_json::from_str(json).unwrap(), CX).unwrap() {
        Normalized::Chat(m) => *m,
        other => panic!("not chat: {other:?}"),
    }
}

#[test]
fn text_messages_keep_author_channel_id_and_publish_time() {
    let m = chat(
        r#"{"kind":"youtube#liveChatMessage","etag":"s6KCf_z6XZ0bSq2VlCIY-3DfnPo","id":"LCC.CjgKDQoLRDlmcUZkdjVFTm8qJwoYVUNQc2ZNNHZ1dV9GbWpRWGZXQ0hkaDRnEgtEOWZxRmR2NUVObxIcChpDSzdtNC02aWtmOENGYkFJMWdBZFBTVURSZw","snippet":{"type":"textMessageEvent","liveChatId":"Cg0KC0Q5ZnFGZHY1RU5vKicKGFVDUHNmTTR2dXVfRm1qUVhmV0NIZGg0ZxILRDlmcUZkdjVFTm8","authorChannelId":"UCrjdRCm0gGcdrYtl8z66t6g","publishedAt":"2023-05-25T20:08:08.479833+00:00","hasDisplayContent":true,"displayMessage":"kitni hai","textMessageDetails":{"messageText":"kitni hai"}},"authorDetails":{"channelId":"UCrjdRCm0gGcdrYtl8z66t6g","channelUrl":"http://www.youtube.com/channel/UCrjdRCm0gGcdrYtl8z66t6g","displayName":"Mr Perfect","profileImageUrl":"https://yt3.ggpht.com/x","isVerified":false,"isChatOwner":false,"isChatSponsor":false,"isChatModerator":false}}"#,
    );
    assert_eq!(m.text, "kitni hai");
    assert_eq!(m.author.id.as_deref(), Some("UCrjdRCm0gGcdrYtl8z66t6g"));
    assert_eq!(m.author.display_name, "Mr Perfect");
    assert_eq!(m.sent_at_ms, Some(1_685_045_288_479));
    assert_eq!(m.channel, "Cg0KC0Q5ZnFGZHY1RU5vKicKGFVDUHNmTTR2dXVfRm1qUVhmV0NIZGg0ZxILRDlmcUZkdjVFTm8");
    assert_eq!(m.raw.encoding, RawEncoding::Json);
}

#[test]
fn super_chats_carry_amount_currency_and_comment() {
    let m = chat(
        r#"{"kind":"youtube#liveChatMessage","etag":"cyISaLoRJzops1Dhjhwp5ineYeI","id":"LCC.EhwKGkNLanpxY2J1dnBNREZRbkN3Z1FkVGhZVVJB","snippet":{"type":"superChatEvent","liveChatId":"Cg0KC09FeE9LRGI0WnFzKicKGFVDS1ppZ0hiZ3BKRzlsZHhYTXFtaVpVZxILT0V4T0tEYjRacXM","authorChannelId":"UCKZigHbgpJG9ldxXMqmiZUg","publishedAt":"2026-03-27T00:52:12.560546+00:00","hasDisplayContent":true,"displayMessage":"CA$2.00 from @vulbyte: \"IS A TEST\"","superChatDetails":{"amountMicros":"2000000","currency":"CAD","amountDisplayString":"CA$2.00","userComment":"HERE IS A TEST OF THE YOUTUBE API WITH A MESSAGE","tier":2}},"authorDetails":{"channelId":"UCKZigHbgpJG9ldxXMqmiZUg","displayName":"@vulbyte","isVerified":false,"isChatOwner":true,"isChatSponsor":false,"isChatModerator":false}}"#,
    );
    assert_eq!(m.kind, MessageKind::Paid);
    let p = m.paid.clone().unwrap();
    assert_eq!((p.money.amount, p.money.currency.as_str(), p.money.exponent, p.tier), (200, "CAD", 2, Some(2)));
    assert_eq!(p.display.as_deref(), Some("CA$2.00"));
    assert_eq!(p.money.display(), "CA$2.00");
    assert_eq!(m.text, "HERE IS A TEST OF THE YOUTUBE API WITH A MESSAGE");
    assert!(m.author.roles.broadcaster);
    assert_eq!(m.to_in_message().paid, Some(200));
}

#[test]
fn deletions_and_bans_become_moderation_events() {
    let del = r#"{"id":"d1","snippet":{"type":"messageDeletedEvent","liveChatId":"c","publishedAt":"2026-03-27T00:52:12Z","messageDeletedDetails":{"deletedMessageId":"LCC.x"}}}"#;
    let ban = r#"{"id":"b1","snippet":{"type":"userBannedEvent","liveChatId":"c","userBannedDetails":{"bannedUserDetails":{"channelId":"UCspam"},"banType":"temporary","banDurationSeconds":"300"}}}"#;
    let event = |j: &str| match normalize_item(&serde_json::from_str(j).unwrap(), CX).unwrap() {
        Normalized::Moderation { notice, .. } => notice.event,
        other => panic!("{other:?}"),
    };
    assert_eq!(event(del), ModerationEvent::MessageDeleted { message_id: "LCC.x".into() });
    assert_eq!(event(ban), ModerationEvent::UserCleared { user_id: "UCspam".into(), timeout_secs: Some(300) });
}

#[test]
fn an_item_without_its_details_is_an_error() {
    let j = serde_json::json!({"id":"x","snippet":{"type":"superChatEvent"}});
    assert_eq!(normalize_item(&j, CX), Err(ItemError::MissingDetails("superChatEvent".into())));
    let j = serde_json::json!({"id":"x","snippet":{"type":"superChatEvent","superChatDetails":{"amountMicros":"lots","currency":"JPY"}}});
    assert_eq!(normalize_item(&j, CX), Err(ItemError::Amount("lots".into())));
    assert!(normalize_item(&serde_json::json!([1]), CX).is_err());
    let j = serde_json::json!({"id":"x","snippet":{"type":"superChatEvent","superChatDetails":{"amountMicros":"5","currency":"yen"}}});
    assert!(matches!(normalize_item(&j, CX), Err(ItemError::Currency(_))));
}

#[test]
fn gifts_and_memberships_keep_count_level_and_upgrade() {
    let support = |j: serde_json::Value| chat(&j.to_string()).support.expect("support details");
    let gifting =
        support(serde_json::json!({"id":"g","snippet":{"type":"membershipGiftingEvent","displayMessage":"5 gifts",
        "membershipGiftingDetails":{"giftMembershipsCount":5,"giftMembershipsLevelName":"メンバー"}}}));
    assert_eq!((gifting.gift_count, gifting.level.as_deref()), (Some(5), Some("メンバー")));
    let upgrade = support(serde_json::json!({"id":"u","snippet":{"type":"newSponsorEvent",
        "newSponsorDetails":{"memberLevelName":"ゴールド","isUpgrade":true}}}));
    assert!(upgrade.upgrade);
    assert_eq!(upgrade.level.as_deref(), Some("ゴールド"));
    let received = support(serde_json::json!({"id":"r","snippet":{"type":"giftMembershipReceivedEvent",
        "giftMembershipReceivedDetails":{"memberLevelName":"メンバー","gifterChannelId":"UCgift"}}}));
    assert_eq!(received.gifter_id.as_deref(), Some("UCgift"));
}

#[test]
fn only_an_ended_missing_or_disabled_chat_is_over() {
    let body = |reason: &str| {
        serde_json::json!({"error":{"errors":[{"domain":"youtube.liveChat","reason":reason,"message":"m"}],"code":403,"message":"m"}})
            .to_string()
    };
    assert_eq!(chat_over(body("liveChatEnded").as_bytes()).map(|r| r.0), Some(EndReason::ChatEnded));
    assert_eq!(chat_over(body("liveChatNotFound").as_bytes()).map(|r| r.0), Some(EndReason::ChatNotFound));
    assert_eq!(chat_over(body("liveChatDisabled").as_bytes()).map(|r| r.0), Some(EndReason::ChatDisabled));
    assert_eq!(chat_over(body("quotaExceeded").as_bytes()), None);
    assert_eq!(chat_over(body("rateLimitExceeded").as_bytes()), None);
    assert_eq!(chat_over(b"<html>502 Bad Gateway</html>"), None);
}
