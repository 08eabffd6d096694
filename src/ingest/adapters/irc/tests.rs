//! Unit tests of `src/ingest/adapters/irc.rs`.

use super::*;

const CX: Context<'static> = Context { stream: "s", received_at_ms: 7, seq: 1 };

fn chat(line: &str) -> ChatMessage {
    match interpret(&parse_line(line).unwrap(), line, CX).unwrap() {
        Event::Chat(m) => *m,
        other => panic!("not chat: {other:?}"),
    }
}

macro_rules! t {
    ($name:ident, $input:expr, $expected:expr) => {
        #[test]
        fn $name() {
            assert_eq!(unescape_tag_value($input), $expected);
        }
    };
}
t!(escaped_space_becomes_space, r"Riot\sGames", "Riot Games");
t!(escaped_colon_becomes_semicolon, r"a\:b", "a;b");
t!(escaped_backslash_stays_one_backslash, r"a\\sb", r"a\sb");
t!(escaped_cr_lf_become_control_characters, r"x\r\ny", "x\r\ny");
t!(unknown_escape_is_the_character_itself, r"\q", "q");
t!(lone_trailing_backslash_is_dropped, "ab\\", "ab");

#[test]
fn a_frame_with_several_lines_splits_on_crlf() {
    let v: Vec<_> = lines(":tmi.twitch.tv PING\r\n:tmi.twitch.tv RECONNECT\r\n").collect();
    assert_eq!(v, [":tmi.twitch.tv PING", ":tmi.twitch.tv RECONNECT"]);
}

#[test]
fn a_line_without_tags_has_prefix_command_and_trailing() {
    let m = parse_line(":tmi.twitch.tv NOTICE * :Improperly formatted auth").unwrap();
    assert_eq!(m.prefix, Some("tmi.twitch.tv"));
    assert_eq!(m.command, "NOTICE");
    assert_eq!(m.params, ["*", "Improperly formatted auth"]);
}

#[test]
fn plain_privmsg_is_normalized_with_id_author_channel_and_time() {
    let m = chat(
        "@badge-info=;badges=;color=#0000FF;display-name=JuN1oRRRR;emotes=;flags=;id=e9d998c3-36f1-430f-89ec-6b887c28af36;mod=0;room-id=11148817;subscriber=0;tmi-sent-ts=1594545155039;turbo=0;user-id=29803735;user-type= :jun1orrrr!jun1orrrr@jun1orrrr.tmi.twitch.tv PRIVMSG #pajlada :dank cam",
    );
    assert_eq!(m.id, "e9d998c3-36f1-430f-89ec-6b887c28af36");
    assert_eq!(m.channel, "pajlada");
    assert_eq!(m.text, "dank cam");
    assert_eq!(m.author.id.as_deref(), Some("29803735"));
    assert_eq!(m.author.login.as_deref(), Some("jun1orrrr"));
    assert_eq!(m.author.display_name, "JuN1oRRRR");
    assert_eq!(m.author.color.as_deref(), Some("#0000FF"));
    assert_eq!(m.sent_at_ms, Some(1594545155039));
    assert_eq!(m.kind, MessageKind::Chat);
    assert!(m.fragments.is_empty() && !m.backfill && m.paid.is_none());
    let input = m.to_in_message();
    assert_eq!(input.user.as_deref(), Some("tw:29803735"));
    assert_eq!(input.ts, Some(1594545155039));
}

#[test]
fn emote_ranges_become_fragments_in_order() {
    let m = chat(
        "@badge-info=subscriber/22;badges=moderator/1,subscriber/12;color=#19E6E6;display-name=randers;emotes=1902:6-10,29-33,35-39/499:45-46,48-49/490:51-52/25:0-4,12-16,18-22;flags=;id=f9c5774b-faa7-4378-b1af-c4e08b532dc2;mod=1;room-id=11148817;subscriber=1;tmi-sent-ts=1594556065407;turbo=0;user-id=40286300;user-type=mod :randers!randers@randers.tmi.twitch.tv PRIVMSG #pajlada :Kappa Keepo Kappa Kappa test Keepo Keepo 123 :) :) :P",
    );
    let emotes: Vec<_> = m
        .fragments
        .iter()
        .filter_map(|f| match f {
            Fragment::Emote { id, code, .. } => Some((id.as_str(), code.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        emotes,
        [
            ("25", "Kappa"),
            ("1902", "Keepo"),
            ("25", "Kappa"),
            ("25", "Kappa"),
            ("1902", "Keepo"),
            ("1902", "Keepo"),
            ("499", ":)"),
            ("499", ":)"),
            ("490", ":P")
        ]
    );
    assert!(m.author.roles.moderator && m.author.roles.member);
    assert_eq!(m.author.member_months, Some(22));
    assert_eq!(m.author.badges.len(), 2);
}

#[test]
fn emote_ranges_count_code_points_not_bytes() {
    // 「こんにちは Kappa」: Kappa is chars 6-10, bytes 16-20.
    let m = chat(
        "@emotes=25:6-10;id=x1;user-id=1;display-name=さくら :sakura!sakura@sakura.tmi.twitch.tv PRIVMSG #shop :こんにちは Kappa",
    );
    assert_eq!(
        m.fragments,
        [
            Fragment::Text { text: "こんにちは ".into() },
            Fragment::Emote { id: "25".into(), code: "Kappa".into(), start: 6, end: 11 }
        ]
    );
    assert_eq!(m.author.display_name, "さくら");
}

#[test]
fn out_of_range_emotes_are_clamped_and_overlaps_dropped() {
    let f = fragments("ab", &parse_emotes("1:0-5/2:0-0"));
    assert_eq!(f, [Fragment::Emote { id: "1".into(), code: "ab".into(), start: 0, end: 2 }]);
    assert!(fragments("ab", &parse_emotes("1:5-9")).iter().all(|f| matches!(f, Fragment::Text { .. })));
}

#[test]
fn cheers_are_paid_in_bits() {
    let m = chat(
        "@badge-info=;badges=bits/100;bits=1;color=#004B49;display-name=TETYYS;emotes=;flags=;id=d7f03a35-f339-41ca-b4d4-7c0721438570;mod=0;room-id=11148817;subscriber=0;tmi-sent-ts=1594571566672;turbo=0;user-id=36175310;user-type= :tetyys!tetyys@tetyys.tmi.twitch.tv PRIVMSG #pajlada :trihard1",
    );
    assert_eq!(m.kind, MessageKind::Paid);
    assert_eq!(m.paid.as_ref().map(|p| p.money), Some(Money { amount: 1, currency: Currency::BITS, exponent: 0 }));
    assert_eq!(m.to_in_message().paid, Some(1));
    assert_eq!(m.paid.unwrap().money.display(), "1 bit");
}

#[test]
fn replies_and_first_messages_are_kept() {
    let m = chat(
        "@badge-info=;badges=;client-nonce=cd56193132f934ac71b4d5ac488d4bd6;color=;display-name=LeftSwing;emotes=;first-msg=1;flags=;id=5b4f63a9-776f-4fce-bf3c-d9707f52e32d;mod=0;reply-parent-display-name=Retoon;reply-parent-msg-body=hello\\sthere;reply-parent-msg-id=6b13e51b-7ecb-43b5-ba5b-2bb5288df696;reply-parent-user-id=37940952;reply-parent-user-login=retoon;returning-chatter=0;room-id=37940952;subscriber=0;tmi-sent-ts=1673925983585;turbo=0;user-id=133651738;user-type= :leftswing!leftswing@leftswing.tmi.twitch.tv PRIVMSG #retoon :@Retoon yes",
    );
    let r = m.reply.unwrap();
    assert_eq!(r.parent_id, "6b13e51b-7ecb-43b5-ba5b-2bb5288df696");
    assert_eq!(r.parent_excerpt.as_deref(), Some("hello there"));
    assert_eq!(r.parent_author_login.as_deref(), Some("retoon"));
    assert!(m.author.roles.first_time);
    assert_eq!(m.author.color, None, "an empty color tag is no colour");
}

#[test]
fn action_markers_are_removed_from_the_text() {
    let m = chat(
        "@badge-info=subscriber/22;badges=moderator/1,subscriber/12;color=#19E6E6;display-name=randers;emotes=;flags=;id=d831d848-b7c7-4559-ae3a-2cb88f4dbfed;mod=1;room-id=11148817;subscriber=1;tmi-sent-ts=1594555275886;turbo=0;user-id=40286300;user-type=mod :randers!randers@randers.tmi.twitch.tv PRIVMSG #pajlada :\u{1}ACTION -tags\u{1}",
    );
    assert_eq!(m.text, "-tags");
}

fn moderation(line: &str) -> ModerationEvent {
    match interpret(&parse_line(line).unwrap(), line, CX).unwrap() {
        Event::Moderation { event, .. } => event,
        other => panic!("not moderation: {other:?}"),
    }
}

#[test]
fn clearmsg_and_clearchat_become_moderation_events() {
    assert_eq!(
        moderation(
            "@login=alazymeme;room-id=;target-msg-id=3c92014f-340a-4dc3-a9c9-e5cf182f4a84;tmi-sent-ts=1594561955611 :tmi.twitch.tv CLEARMSG #pajlada :NIGHT CUNT"
        ),
        ModerationEvent::MessageDeleted { message_id: "3c92014f-340a-4dc3-a9c9-e5cf182f4a84".into() }
    );
    assert_eq!(
        moderation(
            "@ban-duration=1;room-id=11148817;target-user-id=148973258;tmi-sent-ts=1594553828245 :tmi.twitch.tv CLEARCHAT #pajlada :fabzeef"
        ),
        ModerationEvent::UserCleared { user_id: "148973258".into(), timeout_secs: Some(1) }
    );
    assert_eq!(
        moderation(
            "@room-id=11148817;target-user-id=70948394;tmi-sent-ts=1594561360331 :tmi.twitch.tv CLEARCHAT #pajlada :weeb123"
        ),
        ModerationEvent::UserCleared { user_id: "70948394".into(), timeout_secs: None }
    );
    assert_eq!(
        moderation("@room-id=40286300;tmi-sent-ts=1594561392337 :tmi.twitch.tv CLEARCHAT #randers"),
        ModerationEvent::ChatCleared
    );
}

#[test]
fn gifted_subs_are_gifts_with_the_system_text() {
    let m = chat(
        r"@badge-info=;badges=sub-gifter/50;color=;display-name=AdamAtReflectStudios;emotes=;flags=;id=e21409b1-d25d-4a1a-b5cf-ef27d8b7030e;login=adamatreflectstudios;mod=0;msg-id=subgift;msg-param-gift-months=1;msg-param-months=2;msg-param-origin-id=da\s39\sa3\see\s5e\s6b\s4b\s0d\s32\s55\sbf\sef\s95\s60\s18\s90\saf\sd8\s07\s09;msg-param-recipient-display-name=qatarking24xd;msg-param-recipient-id=236653628;msg-param-recipient-user-name=qatarking24xd;msg-param-sender-count=0;msg-param-sub-plan-name=Channel\sSubscription\s(xqcow);msg-param-sub-plan=1000;room-id=71092938;subscriber=0;system-msg=AdamAtReflectStudios\sgifted\sa\sTier\s1\ssub\sto\sqatarking24xd!;tmi-sent-ts=1594583782376;user-id=211711554;user-type= :tmi.twitch.tv USERNOTICE #xqcow",
    );
    assert_eq!(m.kind, MessageKind::Gift);
    assert_eq!(m.text, "AdamAtReflectStudios gifted a Tier 1 sub to qatarking24xd!");
    assert_eq!(m.author.login.as_deref(), Some("adamatreflectstudios"));
}

#[test]
fn broken_lines_are_errors_not_panics() {
    let line = ":a!a@a PRIVMSG #c";
    assert!(interpret(&parse_line(line).unwrap(), line, CX).is_err(), "no text");
    let line = "@pinned-chat-paid-amount=lots;pinned-chat-paid-currency=USD :a!a@a PRIVMSG #c :hi";
    assert!(interpret(&parse_line(line).unwrap(), line, CX).is_err(), "an amount that is not a number");
    let line = "@pinned-chat-paid-amount=100;pinned-chat-paid-currency=usd :a!a@a PRIVMSG #c :hi";
    assert!(interpret(&parse_line(line).unwrap(), line, CX).is_err(), "a currency that is not a code");
    assert_eq!(parse_line("   "), Err(IrcError::Empty));
    assert_eq!(parse_line("@a=b "), Err(IrcError::NoCommand));
}

/// The lines of `fixtures/platforms/twitch/paid.irc`, comments dropped.
fn paid_lines() -> Vec<&'static str> {
    include_str!("../../../../fixtures/platforms/twitch/paid.irc")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn hype_chat_is_paid_in_its_own_currency() {
    let lines = paid_lines();
    let usd = chat(lines[0]);
    assert_eq!(usd.kind, MessageKind::Paid);
    let p = usd.paid.as_ref().expect("a Hype Chat carries its payment");
    assert_eq!(p.money, Money::new(499, Currency::new("USD").unwrap(), 2).unwrap());
    assert_eq!((p.money.display().as_str(), p.tier), ("US$4.99", Some(1)));
    assert_eq!(usd.text, "Mサイズの着丈は何センチですか？");
    let yen = chat(lines[1]);
    assert_eq!(yen.kind, MessageKind::Paid);
    let p = yen.paid.as_ref().unwrap();
    assert_eq!((p.money, p.tier), (Money::yen(1000), Some(2)));
    let input = usd.to_in_message();
    assert_eq!((input.paid, input.paid_exponent), (Some(499), Some(2)));
    assert_eq!(input.paid_currency.map(|c| c.to_string()).as_deref(), Some("USD"));
}

#[test]
fn privmsg_without_an_id_gets_a_stable_synthetic_one() {
    let line = paid_lines()[2];
    let m = chat(line);
    assert_eq!(m.id_origin, IdOrigin::Synthesized);
    assert_eq!(m.kind, MessageKind::Paid, "a cheer without an id is still a cheer");
    assert_eq!(chat(line).id, m.id, "the same line gets the same id, so a resumed connection's repeat is dropped");
    let later = line.replace("tmi-sent-ts=1594571600000", "tmi-sent-ts=1594571600001");
    assert_ne!(chat(&later).id, m.id, "another message gets another id");
    let other_text = line.replace("黒のL", "白のL");
    assert_ne!(chat(&other_text).id, m.id);
}

#[test]
fn sub_months_come_from_cumulative_months() {
    let lines = paid_lines();
    let resub = chat(lines[3]);
    assert_eq!(resub.kind, MessageKind::Membership);
    assert_eq!(resub.author.member_months, Some(14), "msg-param-cumulative-months, not the badge's 12");
    assert_eq!(resub.text, "14ヶ月目です！いつも楽しみにしてます");
    assert_eq!(resub.support.as_ref().and_then(|s| s.level.as_deref()), Some("Tier 1"));
    let prime = chat(lines[4]);
    assert_eq!(prime.author.member_months, Some(1));
    assert_eq!(prime.support.as_ref().and_then(|s| s.level.as_deref()), Some("Prime"));
}

#[test]
fn gifts_keep_their_count_level_recipient_and_upgrades_their_flag() {
    let lines = paid_lines();
    let support = |l: &str| chat(l).support.expect("gift and membership details");
    let single = support(lines[5]);
    assert_eq!((single.gift_count, single.level.as_deref()), (Some(1), Some("Tier 1")));
    assert_eq!(single.recipient_id.as_deref(), Some("500000001"));
    let anon_mystery = support(lines[6]);
    assert_eq!((anon_mystery.gift_count, anon_mystery.level.as_deref()), (Some(5), Some("Tier 1")));
    let named_mystery = support(lines[7]);
    assert_eq!((named_mystery.gift_count, named_mystery.level.as_deref()), (Some(5), Some("Tier 2")));
    assert!(support(lines[8]).upgrade && support(lines[9]).upgrade);
    assert!(!support(lines[3]).upgrade, "a resub is no upgrade");
}

#[test]
fn anonymous_gift_variants_map_like_their_named_siblings() {
    let lines = paid_lines();
    let kinds: Vec<MessageKind> = lines[5..10].iter().map(|l| chat(l).kind).collect();
    assert_eq!(
        kinds,
        [
            MessageKind::Gift,       // subgift from the anonymous gifter
            MessageKind::Gift,       // anonsubmysterygift
            MessageKind::Gift,       // submysterygift
            MessageKind::Membership, // anongiftpaidupgrade
            MessageKind::Membership, // giftpaidupgrade
        ]
    );
}

#[test]
fn anonymous_gifts_are_not_credited_to_the_anonymous_account() {
    let lines = paid_lines();
    for line in [lines[5], lines[6]] {
        let m = chat(line);
        assert_eq!(m.author.id, None, "the anonymous gifter account is nobody");
        assert!(m.author.roles.anonymous);
        assert_eq!(m.to_in_message().user, None, "no viewer is counted for it");
    }
    let named = chat(lines[7]);
    assert_eq!(named.author.id.as_deref(), Some("500000005"));
    assert!(!named.author.roles.anonymous);
}

#[test]
fn control_lines_are_recognized() {
    let ev = |l: &str| interpret(&parse_line(l).unwrap(), l, CX).unwrap();
    assert_eq!(ev("PING :tmi.twitch.tv"), Event::Ping("tmi.twitch.tv".into()));
    assert_eq!(ev(":tmi.twitch.tv RECONNECT"), Event::Reconnect);
    assert_eq!(ev(":tmi.twitch.tv 001 justinfan1 :Welcome, GLHF!"), Event::Welcome);
}
