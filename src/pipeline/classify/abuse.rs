//! Abuse categories and their severity.
//!
//! Every abusive message gets one category: insult, appearance, sexual harassment,
//! discrimination, threat or fraud accusation. Each has its own sections in `abuse.txt`
//! (`[threat]`, `[threat_die]`: a section belongs to the category its name starts with), its own
//! column in the model, its own reason rules and its own metric label. The category's severity
//! decides what happens to the message: blocked outright, blocked when confident and else held,
//! or always held for a person to look at.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What kind of abuse a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbuseCategory {
    /// Insults and contempt: バカ, 使えねー店員, short contempt words.
    Insult,
    /// Attacks on how the host or staff look: ブス, 老けすぎ.
    Appearance,
    /// Sexual remarks about a person's body or aimed at the host.
    Sexual,
    /// Contempt for a nationality, region, occupation, age or gender.
    Discrimination,
    /// Threats and death wishes: 殺すぞ, 家まで行く, 死ね.
    Threat,
    /// Accusations of fraud: 詐欺, サクラ, 偽物, ステマ.
    Fraud,
}

/// Number of abuse categories (columns of the model after the four labels).
pub const CATEGORIES: usize = 6;

impl AbuseCategory {
    /// Every category, in column order.
    pub const ALL: [AbuseCategory; CATEGORIES] = [
        AbuseCategory::Insult,
        AbuseCategory::Appearance,
        AbuseCategory::Sexual,
        AbuseCategory::Discrimination,
        AbuseCategory::Threat,
        AbuseCategory::Fraud,
    ];

    /// The name used in files, verdicts and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            AbuseCategory::Insult => "insult",
            AbuseCategory::Appearance => "appearance",
            AbuseCategory::Sexual => "sexual",
            AbuseCategory::Discrimination => "discrimination",
            AbuseCategory::Threat => "threat",
            AbuseCategory::Fraud => "fraud",
        }
    }

    /// Column index.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The category a section of `abuse.txt` belongs to: its name, or the part of its name
    /// before the first `_` (`threat_die` is a threat section).
    pub fn of_section(section: &str) -> Option<Self> {
        let head = section.split_once('_').map_or(section, |(h, _)| h);
        head.parse().ok()
    }
}

impl fmt::Display for AbuseCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AbuseCategory {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
            format!("unknown abuse category '{s}' (insult, appearance, sexual, discrimination, threat, fraud)")
        })
    }
}

/// What an abusive message of a category gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Held for a person to look at, never blocked automatically (an accusation may be a real
    /// complaint).
    Low,
    /// Blocked at `block_at` or above, held below it.
    Medium,
    /// Blocked as soon as it is labelled abuse.
    High,
}

impl Severity {
    /// The name used in files and verdicts.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// The severity of each abuse category.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SeverityConfig {
    /// Insults and contempt.
    pub insult: Severity,
    /// Attacks on looks.
    pub appearance: Severity,
    /// Sexual harassment.
    pub sexual: Severity,
    /// Discrimination.
    pub discrimination: Severity,
    /// Threats and death wishes.
    pub threat: Severity,
    /// Fraud accusations.
    pub fraud: Severity,
}

impl Default for SeverityConfig {
    fn default() -> Self {
        Self {
            insult: Severity::Medium,
            appearance: Severity::Medium,
            sexual: Severity::High,
            discrimination: Severity::High,
            threat: Severity::High,
            fraud: Severity::Low,
        }
    }
}

impl SeverityConfig {
    /// The severity of `category`.
    pub fn of(&self, category: AbuseCategory) -> Severity {
        match category {
            AbuseCategory::Insult => self.insult,
            AbuseCategory::Appearance => self.appearance,
            AbuseCategory::Sexual => self.sexual,
            AbuseCategory::Discrimination => self.discrimination,
            AbuseCategory::Threat => self.threat,
            AbuseCategory::Fraud => self.fraud,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_belong_to_the_category_their_name_starts_with() {
        assert_eq!(AbuseCategory::of_section("threat"), Some(AbuseCategory::Threat));
        assert_eq!(AbuseCategory::of_section("threat_die"), Some(AbuseCategory::Threat));
        assert_eq!(AbuseCategory::of_section("sexual_body"), Some(AbuseCategory::Sexual));
        assert_eq!(AbuseCategory::of_section("die"), None);
        assert_eq!(AbuseCategory::of_section("insulting"), None);
    }

    #[test]
    fn names_round_trip() {
        for c in AbuseCategory::ALL {
            assert_eq!(c.as_str().parse::<AbuseCategory>(), Ok(c));
            assert_eq!(AbuseCategory::ALL[c.index()], c);
        }
    }
}
