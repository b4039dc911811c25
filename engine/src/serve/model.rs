//! What serving holds in memory for the deployed model: the catalogue as the model knows it,
//! the members' item data, the nearest-item lists, and the popularity of the current hour.
use super::blend::RESCORE;
use crate::models::cooccurrence::Neighbor;
use crate::models::linalg::{Als, QuantRows};
use crate::models::popularity::Popularity;
use crate::prefs::fit::ItemFacts;
use crate::NONE;
use std::collections::HashMap;

/// The catalogue as the model knows it (items that exist when the model is loaded).
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    pub ids: Vec<String>,
    pub index: HashMap<String, u32>,
    pub title: Vec<String>,
    pub category: Vec<u32>,
    pub categories: Vec<String>,
    pub category_index: HashMap<String, u32>,
    pub group: Vec<u32>,
    pub facts: Vec<ItemFacts>,
}

impl Catalogue {
    /// Adds an item; `group` is a product group key (variants share it).
    pub fn push(
        &mut self,
        id: String,
        title: Option<String>,
        category: Option<&str>,
        group: Option<&str>,
        facts: ItemFacts,
        groups: &mut HashMap<String, u32>,
    ) {
        let i = self.ids.len() as u32;
        let cat = category.unwrap_or("");
        let c = match self.category_index.get(cat) {
            Some(&c) => c,
            None => {
                self.categories.push(cat.to_string());
                self.category_index.insert(cat.to_string(), self.categories.len() as u32 - 1);
                self.categories.len() as u32 - 1
            }
        };
        let g = match group {
            Some(g) => {
                let n = groups.len() as u32;
                *groups.entry(g.to_string()).or_insert(n)
            }
            None => NONE,
        };
        self.index.insert(id.clone(), i);
        self.title.push(title.unwrap_or_else(|| id.clone()));
        self.ids.push(id);
        self.category.push(c);
        self.group.push(g);
        self.facts.push(facts);
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn category_name(&self, i: u32) -> &str {
        self.categories.get(self.category[i as usize] as usize).map(String::as_str).unwrap_or("")
    }
}

/// A deployed model, ready to serve.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub model_id: i64,
    pub cat: Catalogue,
    pub als: Option<Als>,
    /// unit content vectors, row-major, and their width (zero rows for items without one)
    pub content: Option<(Vec<f32>, usize)>,
    /// basket and session neighbours merged as training did (a session pair counts half)
    pub neighbors: Option<Vec<Vec<Neighbor>>>,
    /// basket neighbours only: "bought together", for complements
    pub basket: Option<Vec<Vec<Neighbor>>>,
    pub popularity: Option<Popularity>,
    /// per customer segment, its best sellers (item, score), best first
    pub segments: HashMap<String, Vec<(u32, f32)>>,
    /// i8 copies of the ALS item factors and the content vectors, for catalogues over
    /// [`RESCORE`] items ([`Model::quantize`])
    pub als_q: Option<QuantRows>,
    pub content_q: Option<QuantRows>,
    /// each item's nearest items by ALS and by content (training's reco.item_knn; large
    /// catalogues only): candidates without an index search
    pub als_knn: Option<Knn>,
    pub content_knn: Option<Knn>,
    /// blend weights, in member order
    pub weights: [f32; 4],
    /// the end of the model's training data (epoch ms); later events are folded in
    pub data_to_ms: i64,
    /// items created after this (epoch ms) are not in `cat`: the glue finds them in SQL
    pub items_until_ms: i64,
    /// each item's demand forecast (training's reco.item_demand), for a placement's `demand` weight
    pub demand: Option<Demand>,
    /// time-aware popularity for the last hour of the week asked for
    pub popularity_cache: std::cell::RefCell<Option<PopularNow>>,
}

/// Per item, the forecast units sold per day on each weekday (0 = Monday; all zeros for an item
/// with no forecast), and the typical seller's rate (`crate::demand::typical`).
#[derive(Debug, Clone, Default)]
pub struct Demand {
    pub by_weekday: Vec<[f32; 7]>,
    pub typical: f64,
}

impl Demand {
    /// From (item, forecast per weekday) pairs; items out of `0..n` are dropped.
    pub fn from_rows(n: usize, rows: impl IntoIterator<Item = (u32, [f32; 7])>) -> Demand {
        let mut by_weekday = vec![[0.0f32; 7]; n];
        for (i, f) in rows {
            if let Some(slot) = by_weekday.get_mut(i as usize) {
                *slot = f.map(|x| if x.is_finite() { x.max(0.0) } else { 0.0 });
            }
        }
        let typical = crate::demand::typical(by_weekday.iter().map(|f| f.iter().map(|&x| f64::from(x)).sum::<f64>() / 7.0));
        Demand { by_weekday, typical }
    }

    /// Item `i`'s forecast units per day over the `lead_days` from `now_ms`'s weekday (UTC) on.
    pub fn per_day(&self, i: u32, now_ms: i64, lead_days: f64) -> f64 {
        let Some(f) = self.by_weekday.get(i as usize) else { return 0.0 };
        let f = f.map(f64::from);
        crate::demand::per_day(&f, crate::demand::weekday(now_ms.div_euclid(86_400_000)), lead_days)
    }

    pub fn bytes(&self) -> usize {
        self.by_weekday.len() * 28
    }
}

/// Each item's nearest items in one space, nearest first (compressed rows).
#[derive(Debug, Clone, Default)]
pub struct Knn {
    /// item i's list is `items[start[i]..start[i + 1]]`
    start: Vec<u32>,
    items: Vec<u32>,
}

impl Knn {
    /// From per-item lists: `lists` gives (item, its nearest items); items out of `0..n` are
    /// dropped, items without a list get an empty one.
    pub fn from_lists(n: usize, lists: impl IntoIterator<Item = (u32, Vec<u32>)>) -> Knn {
        let mut per: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (i, l) in lists {
            if let Some(slot) = per.get_mut(i as usize) {
                *slot = l.into_iter().filter(|&j| (j as usize) < n && j != i).collect();
            }
        }
        let mut start = Vec::with_capacity(n + 1);
        let mut items = Vec::with_capacity(per.iter().map(Vec::len).sum());
        start.push(0);
        for l in per {
            items.extend(l);
            start.push(items.len() as u32);
        }
        Knn { start, items }
    }

    /// Item `i`'s nearest items, nearest first (empty for an item without a list).
    pub fn of(&self, i: u32) -> &[u32] {
        match (self.start.get(i as usize), self.start.get(i as usize + 1)) {
            (Some(&a), Some(&b)) => &self.items[a as usize..b as usize],
            _ => &[],
        }
    }

    pub fn bytes(&self) -> usize {
        (self.start.len() + self.items.len()) * 4
    }
}

/// Time-aware popularity for one hour of the week, kept until the hour changes.
#[derive(Debug, Clone, Default)]
pub struct PopularNow {
    /// hour + 24 × weekday
    pub key: u32,
    pub score: Vec<f32>,
    /// items with a positive score, best first (ties: lower index first)
    pub order: Vec<u32>,
    /// `order` split by category (index into `Catalogue::categories`)
    pub by_category: Vec<Vec<u32>>,
}

impl Model {
    /// Builds the i8 copies the first pass of a large catalogue reads (no-op for small ones).
    pub fn quantize(&mut self) {
        if self.cat.len() <= RESCORE {
            return;
        }
        self.als_q = self.als.as_ref().map(|a| QuantRows::new(&a.item, a.factors));
        self.content_q = self.content.as_ref().map(|(v, d)| QuantRows::new(v, *d));
    }

    pub fn present(&self) -> [bool; 4] {
        [self.popularity.is_some(), self.neighbors.is_some(), self.content.is_some(), self.als.is_some()]
    }

    /// Bytes the model holds (what the per-backend cache costs).
    pub fn bytes(&self) -> usize {
        let c = &self.cat;
        let strings: usize = c.ids.iter().chain(&c.title).map(|s| s.len() + 24).sum::<usize>() * 2
            + c.facts
                .iter()
                .map(|f| 5 * 24 + f.size.as_ref().map_or(0, String::len) + f.color.as_ref().map_or(0, String::len) + f.brand.as_ref().map_or(0, String::len))
                .sum::<usize>();
        let nb = |n: &Option<Vec<Vec<Neighbor>>>| n.as_ref().map_or(0, |v| v.iter().map(|l| 24 + l.capacity() * std::mem::size_of::<Neighbor>()).sum());
        strings
            + c.len() * 8
            + self.als.as_ref().map_or(0, |a| (a.item.len() + a.yty.len() + a.norm.len()) * 4 + a.learned.len())
            + self.content.as_ref().map_or(0, |(v, _)| v.len() * 4)
            + nb(&self.neighbors)
            + nb(&self.basket)
            + self.popularity.as_ref().map_or(0, |p| p.score.len() * 4 * 32)
            + self.segments.iter().map(|(k, v)| k.len() + 48 + v.capacity() * 8).sum::<usize>()
            + self.als_q.as_ref().map_or(0, QuantRows::bytes)
            + self.content_q.as_ref().map_or(0, QuantRows::bytes)
            + self.als_knn.as_ref().map_or(0, Knn::bytes)
            + self.content_knn.as_ref().map_or(0, Knn::bytes)
            + self.demand.as_ref().map_or(0, Demand::bytes)
    }

    /// The time-aware popularity of every item at `now_ms` into `out`.
    fn popularity_at(&self, now_ms: i64, out: &mut [f32]) {
        if let Some(p) = &self.popularity {
            for (i, o) in out.iter_mut().enumerate() {
                *o = if i < p.score.len() { p.score_at(i, now_ms) } else { 0.0 };
            }
        }
    }
}

impl Model {
    /// Time-aware popularity of every item at `now_ms`, computed once per hour of the week and kept.
    pub fn popularity_now(&self, now_ms: i64, out: &mut [f32]) {
        self.with_popularity(now_ms, |p| out.copy_from_slice(&p.score[..out.len()]));
    }

    /// Runs `f` on the popularity of the hour of the week of `now_ms` (computed once per hour and kept).
    pub fn with_popularity<R>(&self, now_ms: i64, f: impl FnOnce(&PopularNow) -> R) -> R {
        use crate::models::popularity::{hour_of, weekday_of};
        let key = (hour_of(now_ms) + 24 * weekday_of(now_ms)) as u32;
        let n = self.cat.len();
        let mut cache = self.popularity_cache.borrow_mut();
        if let Some(p) = cache.as_ref().filter(|p| p.key == key && p.score.len() == n) {
            return f(p);
        }
        {
            let mut score = vec![0f32; n];
            self.popularity_at(now_ms, &mut score);
            let mut order: Vec<u32> = (0..n as u32).filter(|&i| score[i as usize] > 0.0).collect();
            order.sort_by(|&a, &b| score[b as usize].total_cmp(&score[a as usize]).then(a.cmp(&b)));
            let mut by_category = vec![Vec::new(); self.cat.categories.len()];
            for &i in &order {
                if let Some(v) = by_category.get_mut(self.cat.category[i as usize] as usize) {
                    v.push(i);
                }
            }
            f(cache.insert(PopularNow { key, score, order, by_category }))
        }
    }
}
