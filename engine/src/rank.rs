//! Ranking helpers shared by training and serving.

/// f32 → i32 with the order of `f32::total_cmp`.
#[inline]
fn order_key(x: f32) -> i32 {
    let b = x.to_bits() as i32;
    b ^ ((((b >> 31) as u32) >> 1) as i32)
}

/// The `n` best items by score (ties: lower index first), best first, skipping −∞, NaN and `skip`.
/// A bounded min-heap: one pass, no catalogue-sized allocation.
pub fn top_n(scores: &[f32], n: usize, skip: impl Fn(usize) -> bool) -> Vec<u32> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    if n == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Reverse<(i32, Reverse<u32>)>> = BinaryHeap::with_capacity(n + 1);
    let mut floor = i32::MIN;
    let neg_inf = order_key(f32::NEG_INFINITY);
    for (i, &x) in scores.iter().enumerate() {
        let k = order_key(x);
        if k <= neg_inf || (heap.len() == n && k <= floor) || x.is_nan() || skip(i) {
            continue;
        }
        heap.push(Reverse((k, Reverse(i as u32))));
        if heap.len() > n {
            heap.pop();
        }
        if heap.len() == n {
            floor = heap.peek().map(|r| r.0 .0).unwrap_or(i32::MIN);
        }
    }
    let mut v: Vec<(i32, u32)> = heap.into_iter().map(|Reverse((k, Reverse(i)))| (k, i)).collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    v.into_iter().map(|x| x.1).collect()
}
