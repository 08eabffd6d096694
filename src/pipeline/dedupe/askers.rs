//! A cluster's distinct askers: a short list while few ask, a hash set once many do, so a
//! question thousands of viewers ask costs one lookup per join instead of a scan of them all.

use rustc_hash::FxHashSet;

/// Askers kept as a list up to this many; beyond, as a set.
const FEW: usize = 32;

/// The user hashes that asked a cluster's question, each once.
#[derive(Debug, Clone)]
pub(super) enum Askers {
    /// Few askers, in the order they came: a scan of them is as quick as a hash, and smaller.
    Few(Vec<u64>),
    /// Many askers.
    Many(FxHashSet<u64>),
}

impl Askers {
    /// The askers of a new cluster: the one who opened it.
    pub(super) fn one(asker: u64) -> Self {
        Self::Few(vec![asker])
    }

    /// Adds `asker` unless already there; whether it was new.
    pub(super) fn insert(&mut self, asker: u64) -> bool {
        match self {
            Self::Few(list) if list.contains(&asker) => false,
            Self::Few(list) if list.len() < FEW => {
                // Grow by a quarter, not double: thousands of clusters each keep their askers.
                if list.len() == list.capacity() {
                    list.reserve_exact((list.len() / 4).max(2));
                }
                list.push(asker);
                true
            }
            Self::Few(list) => {
                let mut set: FxHashSet<u64> = list.drain(..).collect();
                set.insert(asker);
                *self = Self::Many(set);
                true
            }
            Self::Many(set) => set.insert(asker),
        }
    }

    /// How many distinct askers.
    pub(super) fn len(&self) -> usize {
        match self {
            Self::Few(list) => list.len(),
            Self::Many(set) => set.len(),
        }
    }

    /// As plain data: the list in its order, or the set sorted (the same every time).
    pub(super) fn to_vec(&self) -> Vec<u64> {
        match self {
            Self::Few(list) => list.clone(),
            Self::Many(set) => {
                let mut all: Vec<u64> = set.iter().copied().collect();
                all.sort_unstable();
                all
            }
        }
    }

    /// Back from [`Askers::to_vec`] (a list that has repeats keeps each once).
    pub(super) fn from_vec(all: Vec<u64>) -> Self {
        if all.len() <= FEW {
            let mut list: Vec<u64> = Vec::with_capacity(all.len());
            for a in all {
                if !list.contains(&a) {
                    list.push(a);
                }
            }
            Self::Few(list)
        } else {
            Self::Many(all.into_iter().collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_asker_counts_once_before_and_after_the_list_becomes_a_set() {
        let mut askers = Askers::one(0);
        for round in 0..3 {
            for a in 0..1000u64 {
                assert_eq!(askers.insert(a), round == 0 && a != 0, "asker {a} in round {round}");
            }
        }
        assert_eq!(askers.len(), 1000);
        assert!(matches!(askers, Askers::Many(_)));
        let back = Askers::from_vec(askers.to_vec());
        assert_eq!(back.len(), 1000);
        assert_eq!(back.to_vec(), askers.to_vec());
    }

    #[test]
    fn few_askers_stay_a_list_in_their_order() {
        let mut askers = Askers::one(7);
        assert!(askers.insert(3));
        assert!(!askers.insert(7));
        assert_eq!(askers.to_vec(), [7, 3]);
        assert!(matches!(Askers::from_vec(vec![5, 5, 1]), Askers::Few(l) if l == [5, 1]));
    }
}
