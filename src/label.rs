//! The labels a message can carry and the actions a verdict can take.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A classification label. Multi-label; `Other` stands alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// Asks the host for information or to show or do something (DESIGN.md §Labels).
    Question,
    /// Buying now, bought, cart adds, order phrases, conditional commitments, holds.
    PurchaseIntent,
    /// Solicitation or promotion (contacts, other shops, URLs, phone numbers), and floods.
    Spam,
    /// Insults, harassment, appearance attacks, threats, slurs, fraud accusations.
    Abuse,
    /// None of the four: greetings, reactions, applause, chit-chat. Never set beside another label.
    Other,
}

impl Label {
    /// The four labels the model scores, in score-array order.
    pub const SCORED: [Label; 4] = [Label::Question, Label::PurchaseIntent, Label::Spam, Label::Abuse];
    /// Every label, in display order.
    pub const ALL: [Label; 5] = [Label::Question, Label::PurchaseIntent, Label::Spam, Label::Abuse, Label::Other];

    /// The label's wire name (`purchase_intent`), as in verdicts, the journal and labelled files.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Question => "question",
            Label::PurchaseIntent => "purchase_intent",
            Label::Spam => "spam",
            Label::Abuse => "abuse",
            Label::Other => "other",
        }
    }

    /// Index into score arrays (`Other` has none).
    pub fn index(self) -> usize {
        match self {
            Label::Question => 0,
            Label::PurchaseIntent => 1,
            Label::Spam => 2,
            Label::Abuse => 3,
            Label::Other => 4,
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Label {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Label::ALL.into_iter().find(|l| l.as_str() == s).ok_or_else(|| format!("unknown label '{s}'"))
    }
}

/// A set of labels, as a bit set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct LabelSet(u8);

impl LabelSet {
    /// Adds `l`. Inserting [`Label::Other`] beside another label breaks the rule that `other`
    /// stands alone; collecting with [`FromIterator`] skips it.
    pub fn insert(&mut self, l: Label) {
        self.0 |= 1 << l.index();
    }
    /// Removes `l`; removing a label not in the set does nothing.
    pub fn remove(&mut self, l: Label) {
        self.0 &= !(1 << l.index());
    }
    /// Whether `l` was inserted (`other` only when inserted, though [`LabelSet::iter`] shows it for
    /// an empty set).
    pub fn contains(self, l: Label) -> bool {
        self.0 & (1 << l.index()) != 0
    }
    /// Whether nothing was inserted: the message is `other`.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Labels in display order; `other` when nothing else is set.
    pub fn iter(self) -> impl Iterator<Item = Label> {
        let set = if self.0 & 0b1111 == 0 { 1 << 4 } else { self.0 & 0b1111 };
        Label::ALL.into_iter().filter(move |l| set & (1 << l.index()) != 0)
    }
}

impl FromIterator<Label> for LabelSet {
    fn from_iter<I: IntoIterator<Item = Label>>(iter: I) -> Self {
        let mut s = LabelSet::default();
        for l in iter {
            if l != Label::Other {
                s.insert(l);
            }
        }
        s
    }
}

/// What the platform should do with a message. A value, never an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Let the message through.
    Allow,
    /// Keep it back until a moderator approves or denies it (the console's held messages).
    Hold,
    /// Keep it from viewers; no one reviews it.
    Block,
}

impl Action {
    /// The action's wire name (`allow`), as in verdicts and the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Hold => "hold",
            Action::Block => "block",
        }
    }
}
