//! Open-addressing hash index from a 64-bit key hash to a slab index (linear probing,
//! backward-shift deletion, load ≤ 1/2). Each slot is one `u64`: the hash's low 32 bits and the
//! `u32` slab index, so a lookup touches one slot cache line and then the entry itself, and a
//! slot's home position is known without the entry (growth and deletion never read entries).
//! Owns the index only; key equality is decided by the caller's closure.

const EMPTY: u64 = u64::MAX;

/// The index.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    slots: Vec<u64>,
    mask: usize,
    len: usize,
}

#[inline(always)]
fn slot(hash: u64, idx: u32) -> u64 {
    ((hash & 0xFFFF_FFFF) << 32) | u64::from(idx)
}

impl Index {
    pub fn new() -> Index {
        Index {
            slots: vec![EMPTY; 16],
            mask: 15,
            len: 0,
        }
    }

    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        (hash as usize) & self.mask
    }

    /// Slab index of the first entry with this hash for which `eq` holds.
    #[inline]
    pub fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = hash & 0xFFFF_FFFF;
        let mut i = self.home(hash);
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            if s >> 32 == tag && eq(s as u32) {
                return Some(s as u32);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Read the home slot of `hash` (cache warming; returns the slot value).
    #[inline]
    pub fn touch(&self, hash: u64) -> u64 {
        self.slots[self.home(hash)]
    }

    /// Insert (the caller guarantees `idx` is not already present under this hash).
    pub fn insert(&mut self, hash: u64, idx: u32) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow(self.slots.len() * 2);
        }
        self.place(slot(hash, idx));
        self.len += 1;
    }

    fn place(&mut self, v: u64) {
        let mut i = ((v >> 32) as usize) & self.mask;
        while self.slots[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = v;
    }

    fn grow(&mut self, cap: usize) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; cap]);
        self.mask = cap - 1;
        for v in old {
            if v != EMPTY {
                self.place(v);
            }
        }
    }

    /// Make room for `n` more entries without growing later.
    pub fn reserve(&mut self, n: usize) {
        let need = ((self.len + n) * 2).next_power_of_two();
        if need > self.slots.len() {
            self.grow(need);
        }
    }

    /// Remove `idx` stored under `hash` (no-op if absent).
    pub fn remove(&mut self, hash: u64, idx: u32) {
        let want = slot(hash, idx);
        let mut i = self.home(hash);
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return;
            }
            if s == want {
                break;
            }
            i = (i + 1) & self.mask;
        }
        // Backward-shift deletion (Knuth 6.4 algorithm R).
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let s = self.slots[j];
            if s == EMPTY {
                break;
            }
            let h = ((s >> 32) as usize) & self.mask;
            // Move s into the hole unless its home lies cyclically in (hole, j].
            let in_between = if hole <= j {
                hole < h && h <= j
            } else {
                hole < h || h <= j
            };
            if !in_between {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
    }

    /// Number of stored indices.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    proptest::proptest! {
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((0u8..3, 0u32..64, 0u64..8), 0..400)) {
            // Few distinct hashes force long probe runs and wrap-around.
            let mut ix = Index::new();
            let mut model: HashMap<u32, u64> = HashMap::new();
            for (op, idx, h) in ops {
                let hash = h.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 0xF; // collide on low bits
                match op {
                    0 if !model.contains_key(&idx) => { ix.insert(hash, idx); model.insert(idx, hash); }
                    1 => if let Some(hh) = model.remove(&idx) { ix.remove(hh, idx); },
                    _ => {}
                }
                for (&k, &hh) in &model {
                    proptest::prop_assert_eq!(ix.find(hh, |j| j == k), Some(k));
                }
                proptest::prop_assert_eq!(ix.len(), model.len());
            }
        }
    }
}
