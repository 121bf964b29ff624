//! NodePort allocation over `--service-node-port-range`, as kube-apiserver's port allocator
//! does it: one map for all protocols (a TCP and a UDP port may share a number only inside one
//! Service), a static block of `min(max(16, size/32), 128)` ports at the bottom of the range
//! for fixed requests, random allocation from above it first (see [`crate::slots`]).

use crate::config::PortRange;
use crate::slots::Slots;
use rand::Rng;
use std::fmt;

/// Why a port could not be taken; `Display` gives kube-apiserver's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortAllocError {
    NotInRange(PortRange),
    Allocated,
    Full,
}

impl fmt::Display for PortAllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortAllocError::NotInRange(r) => {
                write!(
                    f,
                    "provided port is not in the valid range. The range of valid ports is {r}"
                )
            }
            PortAllocError::Allocated => f.write_str("provided port is already allocated"),
            PortAllocError::Full => f.write_str("range is full"),
        }
    }
}

/// Upstream `calculateRangeOffset` for port ranges: the size of the static block.
pub fn static_block_size(range: &PortRange) -> u128 {
    const MIN: u128 = 16;
    const MAX: u128 = 128;
    const STEP: u128 = 32;
    let size = range.size() as u128;
    if size <= MIN {
        return 0;
    }
    (size / STEP).clamp(MIN, MAX)
}

#[derive(Debug, Clone)]
pub struct PortAllocator {
    range: PortRange,
    slots: Slots,
}

impl PortAllocator {
    pub fn new(range: PortRange) -> PortAllocator {
        PortAllocator {
            range,
            slots: Slots::new(range.size() as u128, static_block_size(&range)),
        }
    }

    pub fn range(&self) -> PortRange {
        self.range
    }

    fn offset(&self, port: i64) -> Option<u128> {
        self.range
            .contains(port)
            .then(|| (port - self.range.base as i64) as u128)
    }

    pub fn allocate(&mut self, port: i64) -> Result<(), PortAllocError> {
        let o = self
            .offset(port)
            .ok_or(PortAllocError::NotInRange(self.range))?;
        if self.slots.take(o) {
            Ok(())
        } else {
            Err(PortAllocError::Allocated)
        }
    }

    pub fn allocate_next(&mut self, rng: &mut impl Rng) -> Result<u16, PortAllocError> {
        let o = self
            .slots
            .take_next(rng, |_| false)
            .ok_or(PortAllocError::Full)?;
        Ok(self.range.base + o as u16)
    }

    pub fn release(&mut self, port: i64) -> bool {
        match self.offset(port) {
            Some(o) => self.slots.free(o),
            None => false,
        }
    }

    /// Upstream `Has`: false for ports outside the range.
    pub fn has(&self, port: i64) -> bool {
        self.offset(port).is_some_and(|o| self.slots.has(o))
    }

    pub fn used(&self) -> usize {
        self.slots.used()
    }

    pub fn allocated(&self) -> impl Iterator<Item = u16> + '_ {
        self.slots.iter().map(|o| self.range.base + o as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn default_range() -> PortRange {
        PortRange {
            base: 30000,
            last: 32767,
        }
    }

    #[test]
    fn messages_and_range() {
        let mut a = PortAllocator::new(default_range());
        assert_eq!(
            a.allocate(80).unwrap_err().to_string(),
            "provided port is not in the valid range. The range of valid ports is 30000-32767"
        );
        assert!(a.allocate(32768).is_err());
        assert!(a.allocate(70000).is_err());
        assert_eq!(a.allocate(30080), Ok(()));
        assert_eq!(
            a.allocate(30080).unwrap_err().to_string(),
            "provided port is already allocated"
        );
        assert!(a.has(30080));
        assert!(!a.has(80));
        assert!(a.release(30080));
        assert!(!a.has(30080));
    }

    #[test]
    fn static_block_is_86_ports_for_the_default_range() {
        assert_eq!(static_block_size(&default_range()), 86);
        let mut rng = StdRng::seed_from_u64(5);
        let mut a = PortAllocator::new(default_range());
        for _ in 0..2000 {
            assert!(a.allocate_next(&mut rng).unwrap() >= 30086);
        }
    }

    #[test]
    fn fills_the_whole_range_then_reports_full() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut a = PortAllocator::new(PortRange {
            base: 30000,
            last: 30099,
        });
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..100 {
            assert!(seen.insert(a.allocate_next(&mut rng).unwrap()));
        }
        assert_eq!(a.allocate_next(&mut rng), Err(PortAllocError::Full));
    }
}
