//! Money attached to chat messages: an amount in a currency's minor units with its exponent,
//! ISO 4217 minor units, how amounts are written for the host (`US$4.99`, `¥1,000`, `200 bits`),
//! and the rate table that turns every currency into one value for ranking.
//!
//! Platforms pay in many currencies (YouTube Super Chat in the viewer's own, Twitch Hype Chat in
//! any of Twitch's) and in platform units (Twitch bits, Niconico Nicoad points). An amount keeps
//! its currency and exponent from the adapter to the host screen; only the ranking converts, and
//! only to order questions.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A currency or platform unit: an ISO 4217 code (`JPY`, `USD`), or `BITS` (Twitch cheers) or
/// `NICOAD_POINT` (Niconico Nicoad). 1–15 characters of `A`–`Z`, `0`–`9` and `_`, stored inline
/// so amounts are `Copy` and cost no allocation per message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    len: u8,
    bytes: [u8; 15],
}

/// A currency code or amount that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not 1–15 capitals, digits or `_` (the code as given, cut to 40 chars).
    #[error("currency '{0}' is not a code: use an ISO 4217 code such as USD, or BITS / NICOAD_POINT")]
    Code(String),
    /// More decimal places than [`MAX_EXPONENT`] (the exponent given).
    #[error("exponent {0} is over 9 decimal places")]
    Exponent(u8),
    /// An amount with no exponent, in a currency whose minor unit kotae does not know.
    #[error("{0} has no ISO 4217 minor unit kotae knows: give its exponent")]
    UnknownExponent(Currency),
}

impl Currency {
    /// Japanese yen, the unit of a bare `paid` number.
    pub const JPY: Currency = Currency::from_static("JPY");
    /// Twitch bits: 1 unit = 1 bit.
    pub const BITS: Currency = Currency::from_static("BITS");
    /// Niconico Nicoad points: 1 unit = 1 point.
    pub const NICOAD_POINT: Currency = Currency::from_static("NICOAD_POINT");

    const fn from_static(s: &str) -> Self {
        let b = s.as_bytes();
        let mut bytes = [0u8; 15];
        let mut i = 0;
        while i < b.len() {
            bytes[i] = b[i];
            i += 1;
        }
        Currency { len: b.len() as u8, bytes }
    }

    /// Checks and stores a code. Lowercase is not accepted: platforms and ISO write codes in
    /// capitals, and a lowercase one is more likely a mistake than a currency.
    pub fn new(code: &str) -> Result<Self, MoneyError> {
        let ok = (1..=15).contains(&code.len())
            && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(MoneyError::Code(code.chars().take(40).collect()));
        }
        Ok(Self::from_static(code))
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked in `new`).
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }

    /// Decimal places of the currency's minor unit: ISO 4217's for currencies (0 for JPY, 2 for
    /// USD, TWD and HUF, 3 for KWD, 4 for CLF), 0 for bits and points; `None` for codes with no
    /// minor unit (gold, SDR) and codes kotae does not know.
    pub fn minor_unit(&self) -> Option<u8> {
        match self.as_str() {
            "BITS" | "NICOAD_POINT" => Some(0),
            code => ISO_4217.binary_search_by(|(c, _)| c.cmp(&code)).ok().map(|i| ISO_4217[i].1),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl std::str::FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::new(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Currency::new(&s).map_err(serde::de::Error::custom)
    }
}

/// ISO 4217 active codes with their minor units (decimal places), sorted by code. The complete
/// list of currencies with a minor unit, including codes still accepted during a changeover
/// (ANG → XCG, HRK → EUR, SLL → SLE, ZWL → ZWG). Codes whose minor unit is "N.A." (precious
/// metals, XDR, XSU, XUA, test and "no currency" codes, bond-market units) are left out: nobody
/// pays a Super Chat in gold.
const ISO_4217: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BOV", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHE", 2),
    ("CHF", 2),
    ("CHW", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("COU", 2),
    ("CRC", 2),
    ("CUC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HRK", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MXV", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SLL", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("USN", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XCG", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
    ("ZWL", 2),
];

/// Symbols written before the amount (CLDR's short symbols as English and Japanese speakers
/// read them: `US$` so a dollar is never taken for another). Other currencies are written with
/// their code (`HUF 1,500.50`).
const SYMBOLS: &[(&str, &str)] = &[
    ("AUD", "A$"),
    ("BRL", "R$"),
    ("CAD", "CA$"),
    ("CNY", "CN¥"),
    ("EUR", "€"),
    ("GBP", "£"),
    ("HKD", "HK$"),
    ("ILS", "₪"),
    ("INR", "₹"),
    ("JPY", "¥"),
    ("KRW", "₩"),
    ("MXN", "MX$"),
    ("NZD", "NZ$"),
    ("PHP", "₱"),
    ("TWD", "NT$"),
    ("USD", "US$"),
    ("VND", "₫"),
];

/// An amount of money or platform currency: `amount` in `exponent` decimal places of
/// `currency` (499 with exponent 2 is 4.99). Serialized with a `display` string for the host
/// (`{"amount":499,"currency":"USD","exponent":2,"display":"US$4.99"}`); `display` is ignored
/// when read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub struct Money {
    /// How many of the smallest units counted: 499 for US$4.99 with exponent 2.
    pub amount: u64,
    /// The ISO 4217 code, or `BITS` / `NICOAD_POINT` for platform currencies.
    pub currency: Currency,
    /// Decimal places: `amount` is divided by 10^`exponent` for the amount in whole units; at most
    /// [`MAX_EXPONENT`].
    pub exponent: u8,
}

/// The largest exponent kotae takes: 10⁹ still fits comfortably in a `u64` amount.
pub const MAX_EXPONENT: u8 = 9;

impl Money {
    /// `amount` in `exponent` decimal places of `currency`; the exponent must be at most 9.
    pub fn new(amount: u64, currency: Currency, exponent: u8) -> Result<Self, MoneyError> {
        if exponent > MAX_EXPONENT {
            return Err(MoneyError::Exponent(exponent));
        }
        Ok(Self { amount, currency, exponent })
    }

    /// `amount` in the currency's own minor unit (cents for USD, yen for JPY); an error for a
    /// currency whose minor unit kotae does not know.
    pub fn in_minor_units(amount: u64, currency: Currency) -> Result<Self, MoneyError> {
        let exponent = currency.minor_unit().ok_or(MoneyError::UnknownExponent(currency))?;
        Ok(Self { amount, currency, exponent })
    }

    /// Whole yen: what a bare `paid` number means.
    pub fn yen(amount: u64) -> Self {
        Self { amount, currency: Currency::JPY, exponent: 0 }
    }

    /// An amount given in millionths of the unit (YouTube `amountMicros`), in the currency's
    /// minor unit when it divides exactly, else kept in millionths so nothing is lost.
    pub fn from_micros(micros: u64, currency: Currency) -> Self {
        match currency.minor_unit() {
            Some(e) if e <= 6 && micros.is_multiple_of(10u64.pow(u32::from(6 - e))) => {
                Self { amount: micros / 10u64.pow(u32::from(6 - e)), currency, exponent: e }
            }
            _ => Self { amount: micros, currency, exponent: 6 },
        }
    }

    /// The amount in whole units of the currency (4.99 for 499 cents).
    pub fn major(&self) -> f64 {
        self.amount as f64 / 10f64.powi(i32::from(self.exponent))
    }

    /// Whether nothing was paid.
    pub fn is_zero(&self) -> bool {
        self.amount == 0
    }

    /// Adds `other` when it is in the same currency, at the finer of the two exponents
    /// (saturating); `false`, changing nothing, for another currency.
    pub fn add(&mut self, other: &Money) -> bool {
        if self.currency != other.currency {
            return false;
        }
        let e = self.exponent.max(other.exponent);
        let scale = |m: &Money| m.amount.saturating_mul(10u64.saturating_pow(u32::from(e - m.exponent)));
        self.amount = scale(self).saturating_add(scale(other));
        self.exponent = e;
        true
    }

    /// How the host reads it: `US$4.99`, `¥1,000`, `NT$75.00`, `HUF 1,500.50`, `200 bits`,
    /// `500 nicoad pt`. Digits after the point follow the currency's minor unit (extra zero
    /// digits are dropped, missing ones added); thousands are grouped with commas.
    pub fn display(&self) -> String {
        let shown = self.currency.minor_unit().unwrap_or(0);
        let mut digits = self.amount.to_string();
        let mut exponent = usize::from(self.exponent);
        // Drop zero digits beyond the currency's minor unit; keep any that carry value.
        while exponent > usize::from(shown) && digits.ends_with('0') && digits.len() > 1 {
            digits.pop();
            exponent -= 1;
        }
        while exponent < usize::from(shown) {
            digits.push('0');
            exponent += 1;
        }
        if digits.len() <= exponent {
            digits = "0".repeat(exponent + 1 - digits.len()) + &digits;
        }
        let (int, frac) = digits.split_at(digits.len() - exponent);
        let mut number = group_thousands(int);
        if !frac.is_empty() {
            number.push('.');
            number.push_str(frac);
        }
        let code = self.currency.as_str();
        match code {
            "BITS" if self.amount == 1 && exponent == 0 => "1 bit".to_string(),
            "BITS" => format!("{number} bits"),
            "NICOAD_POINT" => format!("{number} nicoad pt"),
            _ => match SYMBOLS.binary_search_by(|(c, _)| c.cmp(&code)) {
                Ok(i) => format!("{}{number}", SYMBOLS[i].1),
                Err(_) => format!("{code} {number}"),
            },
        }
    }
}

fn group_thousands(int: &str) -> String {
    let mut out = String::with_capacity(int.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Money", 4)?;
        st.serialize_field("amount", &self.amount)?;
        st.serialize_field("currency", &self.currency)?;
        st.serialize_field("exponent", &self.exponent)?;
        st.serialize_field("display", &self.display())?;
        st.end()
    }
}

/// Adds `m` to the per-currency totals `into` (one entry per currency, in first-paid order).
pub fn add_to_totals(into: &mut Vec<Money>, m: &Money) {
    if m.is_zero() {
        return;
    }
    if !into.iter_mut().any(|t| t.add(m)) {
        into.push(*m);
    }
}

/// What paid messages are worth to the ranking: every amount is converted into `currency`
/// (yen by default) with `per_unit`, the value of one whole unit of each other currency (one
/// dollar, one bit). The rates are rough on purpose: they only order questions, and kotae fetches
/// no exchange rates. A currency missing from the table adds nothing to the ranking (it is still
/// shown to the host).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaidRates {
    /// The currency the paid term counts in; `rank.per_100_paid` is per 100 of it.
    #[serde(default = "PaidRates::d_currency")]
    pub currency: Currency,
    /// Value of one whole unit of a currency (one US dollar, one bit) in `currency`.
    #[serde(default = "PaidRates::d_per_unit")]
    pub per_unit: BTreeMap<String, f64>,
}

impl PaidRates {
    fn d_currency() -> Currency {
        Currency::JPY
    }

    /// Approximate yen values (late 2025) of the currencies YouTube Super Chat and Twitch Hype
    /// Chat take most, and of the platform units: a bit is about a US cent, a Nicoad point a yen.
    fn d_per_unit() -> BTreeMap<String, f64> {
        [
            ("AED", 41.0),
            ("ARS", 0.15),
            ("AUD", 100.0),
            ("BGN", 87.0),
            ("BHD", 400.0),
            ("BITS", 1.5),
            ("BRL", 28.0),
            ("CAD", 110.0),
            ("CHF", 190.0),
            ("CLP", 0.16),
            ("CNY", 21.0),
            ("COP", 0.04),
            ("CZK", 7.0),
            ("DKK", 23.0),
            ("EGP", 3.1),
            ("EUR", 170.0),
            ("GBP", 200.0),
            ("HKD", 19.0),
            ("HUF", 0.45),
            ("IDR", 0.009),
            ("ILS", 45.0),
            ("INR", 1.7),
            ("ISK", 1.1),
            ("JOD", 210.0),
            ("KRW", 0.1),
            ("KWD", 490.0),
            ("KZT", 0.29),
            ("MXN", 8.0),
            ("MYR", 36.0),
            ("NGN", 0.1),
            ("NICOAD_POINT", 1.0),
            ("NOK", 15.0),
            ("NZD", 87.0),
            ("OMR", 390.0),
            ("PEN", 44.0),
            ("PHP", 2.6),
            ("PKR", 0.53),
            ("PLN", 41.0),
            ("QAR", 41.0),
            ("RON", 34.0),
            ("RUB", 1.9),
            ("SAR", 40.0),
            ("SEK", 16.0),
            ("SGD", 117.0),
            ("THB", 4.7),
            ("TRY", 3.6),
            ("TWD", 4.9),
            ("UAH", 3.6),
            ("USD", 150.0),
            ("VND", 0.0057),
            ("ZAR", 8.6),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// What `m` is worth in [`PaidRates::currency`] (whole units); `None` when its currency has
    /// no rate.
    pub fn value(&self, m: &Money) -> Option<f64> {
        if m.currency == self.currency {
            return Some(m.major());
        }
        self.per_unit.get(m.currency.as_str()).map(|rate| m.major() * rate)
    }

    /// Values the types cannot reject, named under `at` (`rank.paid_rates`).
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut p = Vec::new();
        for (code, rate) in &self.per_unit {
            if let Err(e) = Currency::new(code) {
                p.push(format!("{at}.per_unit: {e}"));
            }
            if !rate.is_finite() || *rate < 0.0 {
                p.push(format!("{at}.per_unit.{code} {rate} must be a non-negative number"));
            }
        }
        p
    }
}

impl Default for PaidRates {
    fn default() -> Self {
        Self { currency: Self::d_currency(), per_unit: Self::d_per_unit() }
    }
}

#[cfg(test)]
mod tests;
