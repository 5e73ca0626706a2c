//! The message-count formulas of §5.2, corrected (docs/PROTOCOL.md, D7), and the random
//! update plans that the tests (`membership/tests/message_counts.rs`) and the
//! `sgmp-load counts` table run them against.

use rand::Rng;

/// One update of a plan.
#[derive(Clone, Copy, Debug)]
pub struct Op {
    /// Members removed.
    pub r: usize,
    /// Members added.
    pub a: usize,
}

/// A random plan of Y updates from a view of n members (at most `max`): the first
/// removes 1–2 members or adds one (it is triggered by one event); later ones remove
/// 0–2 and add 0–2 (they are batched while the previous one is in flight). Every update
/// keeps a majority of acks even if the next update's victims are suspected before they
/// ack, so each one commits.
pub fn plan(n: usize, y: usize, max: usize, rng: &mut impl Rng) -> Vec<Op> {
    let mut sizes = vec![n];
    let mut ops: Vec<Op> = Vec::new();
    for k in 0..y {
        let size = sizes[k];
        loop {
            let (r, a) = if k == 0 {
                if rng.gen_bool(0.5) {
                    (rng.gen_range(1..=2), 0)
                } else {
                    (0, 1)
                }
            } else {
                (rng.gen_range(0..=2), rng.gen_range(0..=2))
            };
            let mut ok = r + a > 0 && size - r > size / 2 && size - r >= 2 && size - r + a <= max;
            if k > 0 {
                let prev = sizes[k - 1];
                ok &= prev - ops[k - 1].r - r > prev / 2;
            }
            if ok {
                ops.push(Op { r, a });
                sizes.push(size - r + a);
                break;
            }
        }
    }
    ops
}

/// The corrected closed form for Y compressed updates.
pub fn compressed_formula(n: usize, ops: &[Op]) -> i64 {
    let y = ops.len() as i64;
    let sum_a: i64 = ops.iter().map(|o| o.a as i64).sum();
    let weighted: i64 = ops
        .iter()
        .enumerate()
        .map(|(k, o)| (y - k as i64) * (o.a as i64 - o.r as i64))
        .sum();
    (2 * y + 1) * n as i64 + sum_a + 2 * weighted
}

/// What turning compression off adds.
pub fn uncompressed_extra(n: usize, ops: &[Op]) -> i64 {
    let y = ops.len() as i64;
    let weighted: i64 = ops
        .iter()
        .enumerate()
        .take(ops.len().saturating_sub(1))
        .map(|(k, o)| (y - 1 - k as i64) * (o.a as i64 - o.r as i64))
        .sum();
    (y - 1) * n as i64 + weighted
}
