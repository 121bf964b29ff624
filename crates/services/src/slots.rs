//! The allocation map under both allocators: a set of taken offsets in `0..size`, and
//! kube-apiserver's random scan with a static subrange (KEP-3070). Offsets below `offset`
//! form the lower, "static" block that users pick from when they ask for a fixed value;
//! random allocation starts at a random point of the upper block and scans forward (wrapping
//! inside it), and only when the upper block is full does it try the lower one the same way.
//!
//! Taken offsets live in an ordered set rather than a flat bitmap so that an IPv6 /64 (2^64
//! addresses) costs memory only for what is allocated; the scan is the same as upstream's
//! `randomScanStrategyWithOffset` over its bitmap.

use rand::Rng;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub(crate) struct Slots {
    size: u128,
    offset: u128,
    taken: BTreeSet<u128>,
}

impl Slots {
    pub(crate) fn new(size: u128, offset: u128) -> Slots {
        Slots {
            size,
            offset: offset.min(size),
            taken: BTreeSet::new(),
        }
    }

    pub(crate) fn size(&self) -> u128 {
        self.size
    }

    /// Takes `at`; false if it was already taken. `at` must be below `size`.
    pub(crate) fn take(&mut self, at: u128) -> bool {
        debug_assert!(at < self.size);
        self.taken.insert(at)
    }

    pub(crate) fn free(&mut self, at: u128) -> bool {
        self.taken.remove(&at)
    }

    pub(crate) fn has(&self, at: u128) -> bool {
        self.taken.contains(&at)
    }

    pub(crate) fn used(&self) -> usize {
        self.taken.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = u128> + '_ {
        self.taken.iter().copied()
    }

    /// Takes a free offset the way upstream does: random start in the upper block, forward scan
    /// with wrap-around, then the same in the lower block. `skip` marks offsets that random
    /// allocation must never return (they stay available to [`Slots::take`]).
    pub(crate) fn take_next(
        &mut self,
        rng: &mut impl Rng,
        skip: impl Fn(u128) -> bool,
    ) -> Option<u128> {
        let found = self
            .scan(rng, self.offset, self.size, &skip)
            .or_else(|| self.scan(rng, 0, self.offset, &skip))?;
        self.taken.insert(found);
        Some(found)
    }

    /// The first free, non-skipped offset of `[lo, hi)` at or after a random start, wrapping.
    fn scan(
        &self,
        rng: &mut impl Rng,
        lo: u128,
        hi: u128,
        skip: &impl Fn(u128) -> bool,
    ) -> Option<u128> {
        if hi <= lo {
            return None;
        }
        let len = hi - lo;
        let start = rng.random_range(0..len);
        // Walk forward from the start, first to the end of the block, then from its beginning:
        // each leg only has to step over a run of taken offsets.
        self.first_free(lo + start, hi, skip)
            .or_else(|| self.first_free(lo, lo + start, skip))
    }

    fn first_free(&self, from: u128, to: u128, skip: &impl Fn(u128) -> bool) -> Option<u128> {
        let mut candidate = from;
        let mut taken = self.taken.range(from..to).peekable();
        while candidate < to {
            match taken.peek() {
                Some(&&t) if t == candidate => {
                    taken.next();
                }
                Some(&&t) if t < candidate => {
                    taken.next();
                    continue;
                }
                _ if skip(candidate) => {}
                _ => return Some(candidate),
            }
            candidate += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn random_allocation_prefers_the_upper_block() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut s = Slots::new(100, 20);
        for _ in 0..80 {
            let at = s.take_next(&mut rng, |_| false).unwrap();
            assert!(at >= 20, "{at} handed out while the upper block had room");
        }
        for _ in 0..20 {
            let at = s.take_next(&mut rng, |_| false).unwrap();
            assert!(at < 20);
        }
        assert_eq!(s.take_next(&mut rng, |_| false), None);
        assert_eq!(s.used(), 100);
    }

    #[test]
    fn skipped_offsets_are_never_random_but_can_be_taken() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut s = Slots::new(10, 0);
        for _ in 0..9 {
            assert_ne!(s.take_next(&mut rng, |o| o == 3).unwrap(), 3);
        }
        assert_eq!(s.take_next(&mut rng, |o| o == 3), None);
        assert!(s.take(3));
        assert!(!s.take(3));
    }

    #[test]
    fn scan_wraps_inside_the_block() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut s = Slots::new(8, 4);
        for o in [4, 5, 6] {
            s.take(o);
        }
        // Whatever the random start, the only free upper offset is 7.
        assert_eq!(s.take_next(&mut rng, |_| false), Some(7));
    }

    #[test]
    fn huge_ranges_cost_only_what_is_taken() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut s = Slots::new(1u128 << 64, 256);
        let a = s.take_next(&mut rng, |_| false).unwrap();
        let b = s.take_next(&mut rng, |_| false).unwrap();
        assert_ne!(a, b);
        assert!(a >= 256 && b >= 256);
        assert_eq!(s.used(), 2);
    }
}
