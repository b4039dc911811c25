//! Offline evaluation: a temporal holdout and ranking metrics, for comparing models before
//! deploying them (issue: in-database training). Formulas, with `rel(i)` = 1 when the item at
//! rank i (1-based) is in the customer's held-out set T, and k the cut-off:
//!
//! | metric | per customer | notes |
//! |---|---|---|
//! | recall@k | Σ_{i≤k} rel(i) / min(k, \|T\|) | the share of what could fit in k that was found |
//! | hit rate@k | 1 if Σ_{i≤k} rel(i) > 0 | |
//! | NDCG@k | DCG / IDCG, DCG = Σ_{i≤k} rel(i) / log2(i + 1), IDCG the DCG of a perfect list of min(k, \|T\|) hits | binary relevance |
//! | MAP@k | (1 / min(k, \|T\|)) Σ_{i≤k} rel(i) · precision@i | mean over customers of average precision |
//! | coverage@k | \|∪ top-k lists\| / catalogue size | over all evaluated customers |
//!
//! Customers with an empty held-out set are not evaluated; the others are averaged with equal
//! weight. Items the customer saw in training are excluded from ranking by the caller.
use std::collections::{HashMap, HashSet};

/// One interaction for splitting.
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction<U, I> {
    pub user: U,
    pub item: I,
    /// any monotone time, e.g. microseconds
    pub at: i64,
}

/// Train and test interactions.
pub type Split<U, I> = (Vec<Interaction<U, I>>, Vec<Interaction<U, I>>);

/// Temporal holdout: for each customer, the last `fraction` of their interactions (at least one
/// when they have two or more) go to test, the rest to train. Ties in time keep input order.
pub fn temporal_split<U, I>(rows: &[Interaction<U, I>], fraction: f64) -> Split<U, I>
where
    U: Clone + Eq + std::hash::Hash,
    I: Clone,
{
    let mut by_user: HashMap<&U, Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        by_user.entry(&r.user).or_default().push(i);
    }
    let mut test_idx: HashSet<usize> = HashSet::new();
    for idx in by_user.values_mut() {
        if idx.len() < 2 {
            continue;
        }
        idx.sort_by_key(|&i| (rows[i].at, i));
        let n_test = ((idx.len() as f64 * fraction).round() as usize).clamp(1, idx.len() - 1);
        test_idx.extend(idx[idx.len() - n_test..].iter().copied());
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (i, r) in rows.iter().enumerate() {
        if test_idx.contains(&i) {
            test.push(r.clone());
        } else {
            train.push(r.clone());
        }
    }
    (train, test)
}

/// The metrics of one ranked list against one held-out set.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Scores {
    pub recall: f64,
    pub hit: f64,
    pub ndcg: f64,
    pub ap: f64,
}

pub fn score<I: Eq + std::hash::Hash>(ranked: &[I], held_out: &HashSet<I>, k: usize) -> Option<Scores> {
    if held_out.is_empty() || k == 0 {
        return None;
    }
    let ideal = k.min(held_out.len());
    let (mut hits, mut dcg, mut ap) = (0usize, 0.0, 0.0);
    for (i, item) in ranked.iter().take(k).enumerate() {
        if held_out.contains(item) {
            hits += 1;
            dcg += 1.0 / ((i + 2) as f64).log2();
            ap += hits as f64 / (i + 1) as f64;
        }
    }
    let idcg: f64 = (0..ideal).map(|i| 1.0 / ((i + 2) as f64).log2()).sum();
    Some(Scores { recall: hits as f64 / ideal as f64, hit: if hits > 0 { 1.0 } else { 0.0 }, ndcg: dcg / idcg, ap: ap / ideal as f64 })
}

/// Averages over customers, plus catalogue coverage.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    pub users: usize,
    pub recall: f64,
    pub hit_rate: f64,
    pub ndcg: f64,
    pub map: f64,
    pub coverage: f64,
    /// mean distinct categories in a list's top k, over the evaluated customers (served lists;
    /// 0 where not measured)
    pub categories: f64,
}

/// Averages the scores of ranked lists (best first) against their held-out sets, and the
/// catalogue coverage of their top k.
pub fn summarize<'a, I>(rows: impl IntoIterator<Item = (&'a [I], &'a HashSet<I>)>, k: usize, catalogue_size: usize) -> Summary
where
    I: Eq + std::hash::Hash + Clone + 'a,
{
    let mut s = Summary::default();
    let mut shown: HashSet<I> = HashSet::new();
    for (ranked, truth) in rows {
        shown.extend(ranked.iter().take(k).cloned());
        if let Some(sc) = score(ranked, truth, k) {
            s.users += 1;
            s.recall += sc.recall;
            s.hit_rate += sc.hit;
            s.ndcg += sc.ndcg;
            s.map += sc.ap;
        }
    }
    if s.users > 0 {
        let n = s.users as f64;
        s.recall /= n;
        s.hit_rate /= n;
        s.ndcg /= n;
        s.map /= n;
    }
    s.coverage = if catalogue_size > 0 { shown.len() as f64 / catalogue_size as f64 } else { 0.0 };
    s
}

/// Evaluates ranked lists (customer → items, best first) against held-out sets.
pub fn evaluate<U, I>(lists: &HashMap<U, Vec<I>>, held_out: &HashMap<U, HashSet<I>>, k: usize, catalogue_size: usize) -> Summary
where
    U: Eq + std::hash::Hash,
    I: Eq + std::hash::Hash + Clone,
{
    let empty = Vec::new();
    summarize(held_out.iter().map(|(u, truth)| (lists.get(u).unwrap_or(&empty).as_slice(), truth)), k, catalogue_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn set(v: &[&'static str]) -> HashSet<&'static str> {
        v.iter().copied().collect()
    }

    #[test]
    fn hand_computed_scores() {
        // hits at ranks 1 and 3 of 3; two relevant items
        let s = score(&["a", "x", "b"], &set(&["a", "b"]), 3).unwrap();
        assert_relative_eq!(s.recall, 1.0);
        assert_relative_eq!(s.hit, 1.0);
        // DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) = 1.6309
        assert_relative_eq!(s.ndcg, 1.5 / (1.0 + 1.0 / 3f64.log2()), epsilon = 1e-12);
        // AP = (1/1 + 2/3) / 2
        assert_relative_eq!(s.ap, (1.0 + 2.0 / 3.0) / 2.0, epsilon = 1e-12);
        // more relevant items than k: normalized by k
        let s = score(&["a", "b"], &set(&["a", "b", "c", "d"]), 2).unwrap();
        assert_relative_eq!(s.recall, 1.0);
        assert_relative_eq!(s.ndcg, 1.0);
        // a miss
        let s = score(&["x", "y"], &set(&["a"]), 2).unwrap();
        assert_eq!((s.recall, s.hit, s.ndcg, s.ap), (0.0, 0.0, 0.0, 0.0));
        // a hit at rank 2 only: NDCG = (1/log2 3) / 1
        let s = score(&["x", "a"], &set(&["a"]), 2).unwrap();
        assert_relative_eq!(s.ndcg, 1.0 / 3f64.log2(), epsilon = 1e-12);
        assert_relative_eq!(s.ap, 0.5);
        assert!(score(&["a"], &set(&[]), 3).is_none());
    }

    #[test]
    fn evaluate_averages_and_coverage() {
        let lists: HashMap<&str, Vec<&str>> = [("u1", vec!["a", "b"]), ("u2", vec!["c", "a"])].into();
        let truth: HashMap<&str, HashSet<&str>> = [("u1", set(&["a"])), ("u2", set(&["z"])), ("u3", set(&["a"]))].into();
        let s = evaluate(&lists, &truth, 2, 10);
        assert_eq!(s.users, 3);
        assert_relative_eq!(s.hit_rate, 1.0 / 3.0, epsilon = 1e-12); // u3 got no list
        assert_relative_eq!(s.recall, 1.0 / 3.0, epsilon = 1e-12);
        assert_relative_eq!(s.coverage, 0.3); // a, b, c of 10
    }

    #[test]
    fn temporal_split_keeps_the_last_fraction_per_customer() {
        let rows: Vec<Interaction<&str, &str>> = vec![
            Interaction { user: "u1", item: "a", at: 3 },
            Interaction { user: "u1", item: "b", at: 1 },
            Interaction { user: "u1", item: "c", at: 2 },
            Interaction { user: "u1", item: "d", at: 4 },
            Interaction { user: "u2", item: "a", at: 1 },
            Interaction { user: "u3", item: "x", at: 5 },
            Interaction { user: "u3", item: "y", at: 6 },
        ];
        let (train, test) = temporal_split(&rows, 0.25);
        let t: Vec<(&str, &str)> = test.iter().map(|r| (r.user, r.item)).collect();
        assert_eq!(t, [("u1", "d"), ("u3", "y")]); // the newest; u2 has one row and stays in train
        assert_eq!(train.len(), 5);
        let (_, test) = temporal_split(&rows, 0.5);
        assert_eq!(test.iter().filter(|r| r.user == "u1").count(), 2);
    }
}
