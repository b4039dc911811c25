//! Training input: events turned into weighted interactions, the temporal holdout, and the
//! customer × item matrix, baskets and sessions the models train on.
//!
//! Each event contributes `weight(kind) × f(kind, value) × 0.5^(age / half_life)`:
//! f is 1 except for ratings, where f = (value − 2) / 3 (5 stars → +1, 3 → +1/3, 2 → 0,
//! 1 → −1/3: a 3-star rating is still an interaction, chosen by measurement on MovieLens 100K
//! against (value − 3) / 2, (value − 2.5) / 2.5 and (value − 1) / 4), so a low
//! rating counts against the item instead of as liking it. A return carries a negative weight
//! that cancels the purchase. A customer–item pair enters the matrix only when its sum is
//! positive.
use super::als::Csr;
use std::collections::HashMap;

/// The documented defaults of `reco.event_weights`: (kind, weight, why).
pub const DEFAULT_WEIGHTS: [(&str, f64, &str); 13] = [
    ("view", 1.0, "looked at the item"),
    ("click", 2.0, "clicked a recommendation or a listing"),
    ("cart_add", 4.0, "put it in the cart"),
    ("cart_remove", -2.0, "took it out again: cancels half a cart add"),
    ("purchase", 8.0, "bought it (per order line)"),
    ("rating", 6.0, "scaled by (stars - 2) / 3: 5 stars +6, 3 stars +2, 2 stars 0, 1 star -2"),
    ("return", -8.0, "returned it: cancels the purchase"),
    ("impression", 0.0, "was shown it: no signal of interest"),
    ("email_open", 0.0, "opened an email: not about one item"),
    ("email_click", 2.0, "clicked the item in an email"),
    ("email_delivered", 0.0, "a message reached the customer: not about one item"),
    ("email_bounce", 0.0, "a message could not be delivered"),
    ("unsubscribe", 0.0, "opted out of a channel (clears its consent)"),
];

/// The contribution of one event before decay.
pub fn contribution(kind: &str, value: Option<f64>, weight: f64) -> f64 {
    match kind {
        "rating" => match value {
            Some(v) if v.is_finite() => weight * ((v.clamp(0.0, 5.0) - 2.0) / 3.0),
            _ => 0.0,
        },
        _ => weight,
    }
}

pub use crate::NONE;

/// One event with dense ids. `basket` groups the lines of one order (purchases), `session` the
/// events of one browsing session; `NONE` when absent. `kind` (an index into
/// [`Dataset::kinds`]) and `value` are the event as recorded, for evaluating what serving, which
/// reads events by kind, would make of the history.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    pub user: u32,
    pub item: u32,
    pub weight: f32,
    /// microseconds (any epoch)
    pub at: i64,
    pub basket: u32,
    pub session: u32,
    pub kind: u16,
    /// the rating's stars; NaN for none
    pub value: f32,
}

/// Dense ids for strings, in first-seen order.
#[derive(Debug, Clone, Default)]
pub struct Interner {
    pub ids: Vec<String>,
    index: HashMap<String, u32, foldhash::fast::RandomState>,
}

impl Interner {
    pub fn get_or_insert(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
    pub fn get(&self, s: &str) -> Option<u32> {
        self.index.get(s).copied()
    }
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Renumbers the ids in byte order of their strings (COLLATE "C"), so the numbering no
    /// longer depends on the order they were first seen in; returns old index → new index.
    pub fn sort(&mut self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.ids.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.ids[a as usize].as_bytes().cmp(self.ids[b as usize].as_bytes()));
        let mut new_of = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            new_of[old as usize] = new as u32;
        }
        self.ids = order.iter().map(|&old| std::mem::take(&mut self.ids[old as usize])).collect();
        for (new, id) in self.ids.iter().enumerate() {
            self.index.insert(id.clone(), new as u32);
        }
        new_of
    }
}

/// Old index → new index of a renumbering ([`Interner::sort`]); `NONE` stays `NONE`.
fn renumber(map: &[u32], i: u32) -> u32 {
    if i == NONE {
        NONE
    } else {
        map[i as usize]
    }
}

impl Dataset {
    /// Puts the dataset in an order that depends only on its content, not on the order the
    /// rows were read in (one node's heap order, or a Citus cluster's shard by shard): the
    /// interners' numbering becomes byte order of the ids ([`Interner::sort`]; the maps are
    /// old → new for users, items, baskets and sessions), the kinds are sorted by name and the
    /// events by every field. The same data then trains the same model anywhere.
    pub fn canonicalize(&mut self, users: &[u32], items: &[u32], baskets: &[u32], sessions: &[u32]) {
        let mut kind_order: Vec<usize> = (0..self.kinds.len()).collect();
        kind_order.sort_by(|&a, &b| self.kinds[a].cmp(&self.kinds[b]));
        let mut kind_of = vec![0u16; self.kinds.len()];
        for (new, &old) in kind_order.iter().enumerate() {
            kind_of[old] = new as u16;
        }
        self.kinds = kind_order.iter().map(|&old| self.kinds[old].clone()).collect();
        for e in &mut self.events {
            e.user = renumber(users, e.user);
            e.item = renumber(items, e.item);
            e.basket = renumber(baskets, e.basket);
            e.session = renumber(sessions, e.session);
            e.kind = kind_of.get(e.kind as usize).copied().unwrap_or(e.kind);
        }
        self.events.sort_unstable_by_key(|e| (e.at, e.user, e.item, e.kind, e.basket, e.session, e.weight.to_bits(), e.value.to_bits()));
    }
}

#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub n_users: usize,
    pub n_items: usize,
    pub events: Vec<Event>,
    /// the event kinds' names, indexed by `Event::kind`
    pub kinds: Vec<String>,
}

impl Dataset {
    /// The index of event kind `name` in [`Dataset::kinds`], added when new.
    pub fn kind(&mut self, name: &str) -> u16 {
        match self.kinds.iter().position(|k| k == name) {
            Some(i) => i as u16,
            None => {
                self.kinds.push(name.to_string());
                self.kinds.len() as u16 - 1
            }
        }
    }
}

/// Event indexes on each side of the holdout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Holdout {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

impl Dataset {
    /// Multiplies each event's weight by 0.5^(age / half_life) with age measured back from
    /// `end` (same unit as `at`). A half-life of 0 or less leaves weights alone.
    pub fn decay(&mut self, end: i64, half_life: f64) {
        if half_life <= 0.0 || !half_life.is_finite() {
            return;
        }
        for e in &mut self.events {
            let age = (end - e.at).max(0) as f64;
            e.weight = (f64::from(e.weight) * 0.5f64.powf(age / half_life)) as f32;
        }
    }

    /// Temporal holdout: per customer, the events of their last `fraction` of distinct
    /// timestamps go to test (at least one timestamp when they have two or more; the lines of
    /// one order share a timestamp and stay together), the rest to train.
    pub fn holdout(&self, fraction: f64) -> Holdout {
        let mut by_user: Vec<Vec<usize>> = vec![Vec::new(); self.n_users];
        for (i, e) in self.events.iter().enumerate() {
            if (e.user as usize) < self.n_users {
                by_user[e.user as usize].push(i);
            }
        }
        let mut is_test = vec![false; self.events.len()];
        for idx in &mut by_user {
            idx.sort_by_key(|&i| (self.events[i].at, i));
            let mut times: Vec<i64> = idx.iter().map(|&i| self.events[i].at).collect();
            times.dedup();
            if times.len() < 2 {
                continue;
            }
            let n_test = ((times.len() as f64 * fraction).round() as usize).clamp(1, times.len() - 1);
            let cut = times[times.len() - n_test];
            for &i in idx.iter() {
                if self.events[i].at >= cut {
                    is_test[i] = true;
                }
            }
        }
        let (mut h, n) = (Holdout::default(), self.events.len());
        for (i, t) in is_test.into_iter().enumerate().take(n) {
            if t {
                h.test.push(i)
            } else {
                h.train.push(i)
            }
        }
        h
    }

    /// `idx`, or every event's index when None.
    pub fn chosen<'a>(&self, idx: Option<&'a [usize]>, all: &'a mut Vec<usize>) -> &'a [usize] {
        match idx {
            Some(i) => i,
            None => {
                *all = (0..self.events.len()).collect();
                all
            }
        }
    }

    /// The customer × item matrix of summed contributions, positive pairs only.
    pub fn matrix(&self, idx: Option<&[usize]>) -> Csr {
        let mut all = Vec::new();
        let idx = self.chosen(idx, &mut all);
        let t: Vec<(u32, u32, f32)> = idx.iter().map(|&i| self.events[i]).map(|e| (e.user, e.item, e.weight)).collect();
        let mut m = Csr::from_triplets(self.n_users, self.n_items, t);
        // drop non-positive sums (returned, disliked, removed from cart)
        let mut out = Csr { rows: m.rows, cols: m.cols, indptr: vec![0; m.rows + 1], indices: Vec::new(), values: Vec::new() };
        for r in 0..m.rows {
            let (cs, vs) = m.row(r);
            for (&c, &v) in cs.iter().zip(vs) {
                if v > 1e-6 {
                    out.indices.push(c);
                    out.values.push(v);
                }
            }
            out.indptr[r + 1] = out.indices.len();
        }
        m = out;
        m
    }

    /// Groups of items by `key` (basket or session) among events with positive weight.
    pub fn groups(&self, idx: Option<&[usize]>, key: impl Fn(&Event) -> u32) -> Vec<Vec<u32>> {
        let mut all = Vec::new();
        let idx = self.chosen(idx, &mut all);
        let mut by: HashMap<u32, Vec<u32>> = HashMap::new();
        for &i in idx {
            let e = &self.events[i];
            let k = key(e);
            if k != NONE && e.weight > 0.0 {
                by.entry(k).or_default().push(e.item);
            }
        }
        let mut keys: Vec<u32> = by.keys().copied().collect();
        keys.sort_unstable();
        keys.into_iter().filter_map(|k| by.remove(&k)).filter(|g| g.len() > 1).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(user: u32, item: u32, weight: f32, at: i64, basket: u32) -> Event {
        Event { user, item, weight, at, basket, session: NONE, kind: 0, value: f32::NAN }
    }

    #[test]
    fn contributions_follow_the_documented_weights() {
        assert_eq!(contribution("view", None, 1.0), 1.0);
        assert_eq!(contribution("rating", Some(5.0), 6.0), 6.0);
        assert_eq!(contribution("rating", Some(3.0), 6.0), 2.0);
        assert_eq!(contribution("rating", Some(2.0), 6.0), 0.0);
        assert_eq!(contribution("rating", Some(1.0), 6.0), -2.0);
        assert_eq!(contribution("rating", None, 6.0), 0.0);
        assert_eq!(contribution("rating", Some(f64::NAN), 6.0), 0.0);
    }

    #[test]
    fn returns_cancel_purchases_and_decay_halves_weights() {
        let mut d = Dataset { n_users: 1, n_items: 2, events: vec![ev(0, 0, 8.0, 0, 1), ev(0, 0, -8.0, 5, NONE), ev(0, 1, 2.0, 10, NONE)], kinds: vec![] };
        let m = d.matrix(None);
        assert_eq!(m.row(0), (&[1u32][..], &[2.0f32][..]), "the returned item is gone");
        d.decay(10, 10.0);
        assert_eq!(d.events[0].weight, 4.0);
        assert_eq!(d.events[2].weight, 2.0);
    }

    #[test]
    fn holdout_keeps_orders_together_and_groups_need_two_items() {
        let d = Dataset {
            n_users: 2,
            n_items: 4,
            kinds: vec![],
            events: vec![
                ev(0, 0, 1.0, 1, NONE),
                ev(0, 1, 8.0, 2, 7),
                ev(0, 2, 8.0, 2, 7),
                ev(0, 3, 1.0, 3, NONE),
                ev(0, 3, 1.0, 3, NONE),
                ev(1, 0, 1.0, 1, NONE),
            ],
        };
        let h = d.holdout(0.5);
        // three timestamps, round(1.5) = 2 go to test: the order at 2 (both lines) and time 3
        assert_eq!(h.test, vec![1, 2, 3, 4]);
        assert_eq!(h.train, vec![0, 5], "a customer with one timestamp stays in train");
        assert_eq!(d.groups(None, |e| e.basket), vec![vec![1, 2]]);
        assert!(d.groups(Some(&h.train), |e| e.basket).is_empty());
    }

    /// Rows read in any order train the same: after `canonicalize` the dataset and its ids
    /// are the same whichever order the rows came in (one node's heap order, or shard by shard).
    #[test]
    fn canonical_order_does_not_depend_on_read_order() {
        let rows = [
            ("c2", "i9", "view", Some("s1"), None, 30),
            ("c1", "i3", "purchase", None, Some("o7"), 10),
            ("c3", "i3", "purchase", None, Some("o2"), 10),
            ("c1", "i9", "cart_add", Some("s4"), None, 20),
            ("c2", "i1", "purchase", None, Some("o7"), 10),
            ("c1", "i3", "view", Some("s4"), None, 10),
        ];
        let build = |order: &[usize]| {
            let (mut users, mut items, mut baskets, mut sessions) = (Interner::default(), Interner::default(), Interner::default(), Interner::default());
            let mut ds = Dataset::default();
            for &r in order {
                let (u, i, k, s, o, at) = rows[r];
                let e = Event {
                    user: users.get_or_insert(u),
                    item: items.get_or_insert(i),
                    weight: 1.0,
                    at,
                    basket: o.map_or(NONE, |o| baskets.get_or_insert(o)),
                    session: s.map_or(NONE, |s| sessions.get_or_insert(s)),
                    kind: ds.kind(k),
                    value: f32::NAN,
                };
                ds.events.push(e);
            }
            let (mu, mi, mb, ms) = (users.sort(), items.sort(), baskets.sort(), sessions.sort());
            ds.canonicalize(&mu, &mi, &mb, &ms);
            let evs: Vec<_> = ds.events.iter().map(|e| (e.user, e.item, e.at, e.basket, e.session, e.kind)).collect();
            let c3 = users.get("c3");
            (evs, ds.kinds, users.ids, items.ids, c3)
        };
        let a = build(&[0, 1, 2, 3, 4, 5]);
        assert_eq!(a, build(&[5, 4, 3, 2, 1, 0]));
        assert_eq!(a, build(&[3, 0, 5, 1, 4, 2]));
        assert_eq!(a.2, ["c1", "c2", "c3"]);
        assert_eq!(a.3, ["i1", "i3", "i9"]);
        assert_eq!(a.4, Some(2), "the lookup follows the renumbering");
        // the earliest event first, ties by customer then item
        assert_eq!(a.0[0].0, 0);
        assert_eq!(a.0[0].2, 10);
    }
}
