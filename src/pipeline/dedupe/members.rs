//! A cluster's member frames packed in one allocation, and their iterator.

use crate::pipeline::attribute::Attribute;
use crate::pipeline::frame::{Ask, FrameView};

/// A cluster's member frames in one allocation (a cluster's wordings are added rarely and read
/// on every candidate comparison). Per member: one header word holding the seven part lengths
/// (eight bits each: a part holds at most 255 entries), the ask (four bits) and whether an
/// extension follows (one bit), then the parts, a slot taking two words, then the extension if
/// any: a word with the attribute, the number of associated units and the number of words of
/// the learned vector, a word with the runner-up attribute if the header says so, then those
/// units, then the vector's words. A packing written before the extension (or before the
/// runner-up, or the vector) has none, and reads as before.
#[derive(Debug, Default)]
pub(super) struct Members(Box<[u64]>);

/// Most entries one part of a packed member keeps.
const PART_MAX: usize = 255;

/// The header bit saying an extension (the attribute, the associated units) follows the
/// member's slots.
const EXTENSION_FOLLOWS: u64 = 1 << 60;

/// The header bit saying the extension holds a word for the runner-up attribute.
const SECOND_FOLLOWS: u64 = 1 << 61;

impl Members {
    pub(super) fn push(&mut self, f: FrameView<'_>) {
        let cut = |p: &[u64]| p.len().min(PART_MAX);
        let slots = f.slots.len().min(PART_MAX);
        let parts = [f.concepts, f.weak, f.topics, f.nouns, f.preds, f.grams];
        let assoc = cut(f.assoc);
        let vector = if f.vector.len() <= PART_MAX { f.vector.len() } else { 0 };
        let extension = f.attribute.id != 0 || assoc > 0 || vector > 0;
        let second = extension && f.attribute.second != 0;
        let size = 1
            + parts.iter().map(|p| cut(p)).sum::<usize>()
            + 2 * slots
            + usize::from(extension)
            + usize::from(second)
            + assoc
            + vector;
        let mut v = Vec::with_capacity(self.0.len() + size);
        v.extend_from_slice(&self.0);
        let mut header = f.ask.code() << 56;
        for (i, p) in parts.iter().enumerate() {
            header |= (cut(p) as u64) << (8 * i);
        }
        header |= (slots as u64) << 48;
        if extension {
            header |= EXTENSION_FOLLOWS;
        }
        if second {
            header |= SECOND_FOLLOWS;
        }
        v.push(header);
        for p in parts {
            v.extend_from_slice(&p[..cut(p)]);
        }
        v.extend_from_slice(f.slots[..slots].as_flattened());
        if extension {
            v.push(
                (vector as u64) << 56
                    | (assoc as u64) << 48
                    | u64::from(f.attribute.id) << 32
                    | u64::from(f.attribute.p.to_bits()),
            );
            if second {
                v.push(u64::from(f.attribute.second) << 32 | u64::from(f.attribute.second_p.to_bits()));
            }
            v.extend_from_slice(&f.assoc[..assoc]);
            v.extend_from_slice(&f.vector[..vector]);
        }
        self.0 = v.into_boxed_slice();
    }

    /// The packed words, as a snapshot keeps them.
    pub(super) fn words(&self) -> &[u64] {
        &self.0
    }

    /// Members from words [`Members::words`] gave (a damaged packing only ends iteration early).
    pub(super) fn from_words(words: Box<[u64]>) -> Self {
        Self(words)
    }

    pub(super) fn iter(&self) -> MemberIter<'_> {
        MemberIter(&self.0)
    }
}

pub(super) struct MemberIter<'a>(&'a [u64]);

impl<'a> Iterator for MemberIter<'a> {
    type Item = FrameView<'a>;

    fn next(&mut self) -> Option<FrameView<'a>> {
        let (&header, mut rest) = self.0.split_first()?;
        let mut parts: [&[u64]; 6] = [&[]; 6];
        for (i, part) in parts.iter_mut().enumerate() {
            let (p, r) = rest.split_at_checked(((header >> (8 * i)) & 0xff) as usize)?;
            *part = p;
            rest = r;
        }
        let (slots, mut rest) = rest.split_at_checked(2 * ((header >> 48) & 0xff) as usize)?;
        let mut attribute = Attribute::default();
        let mut assoc: &[u64] = &[];
        let mut vector: &[u64] = &[];
        if header & EXTENSION_FOLLOWS != 0 {
            let (&word, mut r) = rest.split_first()?;
            attribute.id = (word >> 32) as u16;
            attribute.p = f32::from_bits(word as u32);
            if header & SECOND_FOLLOWS != 0 {
                let (&second, after) = r.split_first()?;
                attribute.second = (second >> 32) as u16;
                attribute.second_p = f32::from_bits(second as u32);
                r = after;
            }
            (assoc, r) = r.split_at_checked(((word >> 48) & 0xff) as usize)?;
            (vector, rest) = r.split_at_checked((word >> 56) as usize)?;
        }
        self.0 = rest;
        let [concepts, weak, topics, nouns, preds, grams] = parts;
        Some(FrameView {
            concepts,
            weak,
            topics,
            slots: slots.as_chunks::<2>().0,
            nouns,
            preds,
            grams,
            ask: Ask::from_code((header >> 56) & 0xf),
            attribute,
            assoc,
            vector,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_members_vector_reads_back_and_an_older_packing_has_none() {
        let nouns = [11u64, 12];
        let vector = [0x0102_0304_0506_0708u64, 0xf0f1_f2f3_f4f5_f6f7];
        let attribute = Attribute { id: 3, p: 0.75, second: 0, second_p: 0.0 };
        let with = FrameView {
            concepts: &[1],
            weak: &[],
            topics: &[],
            slots: &[[5, 6]],
            nouns: &nouns,
            preds: &[],
            grams: &[],
            ask: Ask::Amount,
            attribute,
            assoc: &[1],
            vector: &vector,
        };
        let bare = FrameView { attribute: Attribute::default(), assoc: &[], vector: &[], ..with };
        let only_vector = FrameView { attribute: Attribute::default(), assoc: &[], ..with };
        let mut m = Members::default();
        for f in [with, bare, only_vector] {
            m.push(f);
        }
        let back: Vec<FrameView<'_>> = m.iter().collect();
        assert_eq!(back, vec![with, bare, only_vector]);

        // A packing from before the vector: the extension word's top byte is 0.
        let mut old = Members::default();
        old.push(FrameView { vector: &[], ..with });
        let read: Vec<FrameView<'_>> = old.iter().collect();
        assert_eq!(read, vec![FrameView { vector: &[], ..with }]);
        assert_eq!(old.words().len() + vector.len(), {
            let mut n = Members::default();
            n.push(with);
            n.words().len()
        });
    }
}
