//! Maglev consistent hashing (Eisenbud et al., NSDI 2016, section 3.4): every backend fills
//! slots of a prime-sized lookup table in turn, each in the order of its own permutation
//! (offset + j·skip mod M, both from hashes of the backend's name). The result is balanced to
//! one slot, depends only on the set of backend names (not their order), and when one backend
//! leaves, its slots are refilled while almost every other slot keeps its owner. A client is
//! mapped to `table[hash(client) % M]`.

/// Lookup-table sizes (primes). The paper keeps M ≥ 100·N so that a change of the backend set
/// moves few slots of the other backends.
const SIZES: [usize; 7] = [1021, 2039, 4093, 8191, 16381, 32749, 65521];

/// The table size for `backends` backends.
pub fn table_size(backends: usize) -> usize {
    SIZES
        .iter()
        .copied()
        .find(|m| *m >= backends.saturating_mul(100))
        .unwrap_or(SIZES[SIZES.len() - 1])
}

/// FNV-1a with a seed folded in first: stable across processes and releases (unlike std's
/// hasher), which keeps every node's table identical for the same endpoints.
fn hash(seed: u64, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x0000_0100_0000_01b3);
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // FNV's low bits mix poorly for short keys; finish with a splitmix64 round.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The Maglev lookup table of size `m` (a prime) for backends named `names`: entry `i` is the
/// index into `names` of the backend owning slot `i`. Empty when there are no backends.
pub fn table<S: AsRef<str>>(names: &[S], m: usize) -> Vec<usize> {
    if names.is_empty() {
        return Vec::new();
    }
    // Turns go in name order so the table does not depend on the order of the input.
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|a, b| names[*a].as_ref().cmp(names[*b].as_ref()));
    let perms: Vec<(usize, usize)> = order
        .iter()
        .map(|i| {
            let n = names[*i].as_ref().as_bytes();
            let offset = (hash(0x6d61_676c, n) % m as u64) as usize;
            let skip = (hash(0x736b_6970, n) % (m as u64 - 1)) as usize + 1;
            (offset, skip)
        })
        .collect();
    let mut next = vec![0usize; order.len()];
    let mut entry = vec![usize::MAX; m];
    let mut filled = 0;
    loop {
        for (turn, backend) in order.iter().enumerate() {
            let (offset, skip) = perms[turn];
            let mut c = (offset + next[turn] * skip) % m;
            while entry[c] != usize::MAX {
                next[turn] += 1;
                c = (offset + next[turn] * skip) % m;
            }
            entry[c] = *backend;
            next[turn] += 1;
            filled += 1;
            if filled == m {
                return entry;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.42.0.{}:80", i + 10)).collect()
    }

    #[test]
    fn table_is_balanced_to_one_slot() {
        for n in 1..=12 {
            let t = table(&names(n), 1021);
            let mut counts = vec![0usize; n];
            for b in &t {
                counts[*b] += 1;
            }
            let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(hi - lo <= 1, "n={n}: {counts:?}");
        }
    }

    #[test]
    fn table_does_not_depend_on_input_order() {
        let a = names(5);
        let mut b = a.clone();
        b.reverse();
        let ta: Vec<&str> = table(&a, 1021).iter().map(|i| a[*i].as_str()).collect();
        let tb: Vec<&str> = table(&b, 1021).iter().map(|i| b[*i].as_str()).collect();
        assert_eq!(ta, tb);
    }

    #[test]
    fn removing_one_backend_moves_its_slots_and_few_others() {
        for n in [3usize, 5, 10] {
            let all = names(n);
            let m = table_size(n);
            let before: Vec<&str> = table(&all, m).iter().map(|i| all[*i].as_str()).collect();
            for gone in 0..n {
                let rest: Vec<String> = all.iter().filter(|s| **s != all[gone]).cloned().collect();
                let after: Vec<&str> = table(&rest, m).iter().map(|i| rest[*i].as_str()).collect();
                let mut others_moved = 0;
                for (b, a) in before.iter().zip(&after) {
                    if *b == all[gone] {
                        assert_ne!(*a, all[gone]);
                    } else if b != a {
                        others_moved += 1;
                    }
                }
                // The paper measures a few percent; a naive hash mod N would move ~(N-1)/N of them.
                let moved = others_moved as f64 / m as f64;
                assert!(
                    moved < 0.05,
                    "n={n}, removing {gone}: {moved:.3} of the other slots moved"
                );
            }
        }
    }
}
