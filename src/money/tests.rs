//! Tests of money: minor units, formatting and rates.

use super::*;

fn cur(c: &str) -> Currency {
    Currency::new(c).unwrap()
}

fn money(amount: u64, c: &str, exponent: u8) -> Money {
    Money::new(amount, cur(c), exponent).unwrap()
}

#[test]
fn the_iso_table_is_sorted_unique_and_well_formed() {
    assert!(ISO_4217.windows(2).all(|w| w[0].0 < w[1].0), "sorted and unique, for binary search");
    assert!(SYMBOLS.windows(2).all(|w| w[0].0 < w[1].0));
    for (code, e) in ISO_4217 {
        assert!(code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()), "{code}");
        assert!(*e <= 4, "{code}");
    }
    assert!(ISO_4217.len() >= 170, "the complete list, not a sample: {}", ISO_4217.len());
}

macro_rules! t {
    ($name:ident, $code:expr, $expected:expr) => {
        #[test]
        fn $name() {
            assert_eq!(cur($code).minor_unit(), $expected);
        }
    };
}
t!(yen_has_no_minor_unit, "JPY", Some(0));
t!(won_has_no_minor_unit, "KRW", Some(0));
t!(new_taiwan_dollar_has_two_decimals, "TWD", Some(2));
t!(forint_has_two_decimals, "HUF", Some(2));
t!(kuwaiti_dinar_has_three_decimals, "KWD", Some(3));
t!(unidad_de_fomento_has_four_decimals, "CLF", Some(4));
t!(cfp_franc_has_none, "XPF", Some(0));
t!(bits_are_whole, "BITS", Some(0));
t!(gold_has_no_minor_unit, "XAU", None);
t!(an_unknown_code_has_no_minor_unit, "ABC", None);

#[test]
fn codes_are_checked() {
    assert!(Currency::new("usd").is_err());
    assert!(Currency::new("").is_err());
    assert!(Currency::new("US DOLLAR").is_err());
    assert!(Currency::new("A_VERY_LONG_CODE").is_err(), "16 characters");
    assert_eq!(cur("NICOAD_POINT"), Currency::NICOAD_POINT);
    assert_eq!(serde_json::from_str::<Currency>("\"EUR\"").unwrap(), cur("EUR"));
    assert!(serde_json::from_str::<Currency>("\"eur\"").is_err());
}

#[test]
fn micros_become_minor_units_when_they_divide() {
    assert_eq!(Money::from_micros(75_000_000, cur("TWD")), money(7500, "TWD", 2));
    assert_eq!(Money::from_micros(1_500_500_000, cur("HUF")), money(150_050, "HUF", 2));
    assert_eq!(Money::from_micros(1_000_000_000, Currency::JPY), Money::yen(1000));
    assert_eq!(Money::from_micros(1_500_000, cur("KWD")), money(1500, "KWD", 3));
    assert_eq!(Money::from_micros(1_234_567, cur("ABC")), money(1_234_567, "ABC", 6), "unknown: kept whole");
    assert_eq!(Money::from_micros(1_000_001, Currency::JPY), money(1_000_001, "JPY", 6), "nothing is lost");
}

#[test]
fn amounts_are_written_as_the_host_reads_them() {
    assert_eq!(money(499, "USD", 2).display(), "US$4.99");
    assert_eq!(Money::yen(1000).display(), "¥1,000");
    assert_eq!(money(200, "BITS", 0).display(), "200 bits");
    assert_eq!(money(1, "BITS", 0).display(), "1 bit");
    assert_eq!(money(7500, "TWD", 2).display(), "NT$75.00");
    assert_eq!(money(150_050, "HUF", 2).display(), "HUF 1,500.50");
    assert_eq!(money(1500, "KWD", 3).display(), "KWD 1.500");
    assert_eq!(money(5, "USD", 0).display(), "US$5.00", "missing decimals are added");
    assert_eq!(money(4_990_000, "USD", 6).display(), "US$4.99", "extra zero decimals are dropped");
    assert_eq!(money(1_000_001, "JPY", 6).display(), "¥1.000001", "decimals that carry value stay");
    assert_eq!(money(5, "USD", 2).display(), "US$0.05");
    assert_eq!(money(1_234_567, "ABC", 6).display(), "ABC 1.234567");
    assert_eq!(money(500, "NICOAD_POINT", 0).display(), "500 nicoad pt");
    assert_eq!(money(123_456_789, "KRW", 0).display(), "₩123,456,789");
}

#[test]
fn totals_add_per_currency_at_the_finer_exponent() {
    let mut totals = Vec::new();
    add_to_totals(&mut totals, &money(499, "USD", 2));
    add_to_totals(&mut totals, &Money::yen(1000));
    add_to_totals(&mut totals, &money(1, "USD", 0));
    add_to_totals(&mut totals, &Money::yen(0));
    assert_eq!(totals, [money(599, "USD", 2), Money::yen(1000)]);
    let mut m = money(u64::MAX, "USD", 2);
    assert!(m.add(&money(1, "USD", 2)));
    assert_eq!(m.amount, u64::MAX, "saturates");
    assert!(!m.add(&Money::yen(1)), "another currency is not added");
}

#[test]
fn rates_convert_to_yen_and_skip_what_they_do_not_know() {
    let rates = PaidRates::default();
    assert_eq!(rates.value(&Money::yen(1000)), Some(1000.0));
    assert_eq!(rates.value(&money(100, "USD", 2)), Some(150.0));
    assert_eq!(rates.value(&money(200, "BITS", 0)), Some(300.0));
    assert_eq!(rates.value(&money(100, "XCD", 2)), None);
    let mut bad = PaidRates::default();
    bad.per_unit.insert("usd".into(), -1.0);
    assert_eq!(bad.problems("rank.paid_rates").len(), 2);
    assert!(PaidRates::default().problems("rank.paid_rates").is_empty());
}

#[test]
fn money_serializes_with_its_display_and_reads_back_without_it() {
    let m = money(499, "USD", 2);
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(json, r#"{"amount":499,"currency":"USD","exponent":2,"display":"US$4.99"}"#);
    assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
}
