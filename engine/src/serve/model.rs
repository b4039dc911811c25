//! What serving holds in memory for the deployed model: the catalogue as the model knows it,
//! the members' item data, the nearest-item lists, and the popularity of the current hour.
use super::blend::RESCORE;
use super::flat::{Lists, Lookup, OptStrs, Reader, Slab, Strs, Writer};
use crate::models::cooccurrence::Neighbor;
use crate::models::linalg::{Als, QuantRows};
use crate::models::popularity::Popularity;
use crate::prefs::fit::ItemFacts;
use crate::{Error, NONE};
use std::collections::HashMap;

/// The catalogue as the model knows it (items that exist when the model is loaded).
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    pub ids: Strs,
    pub index: Lookup,
    pub title: Strs,
    pub category: Slab<u32>,
    pub categories: Strs,
    pub category_index: Lookup,
    pub group: Slab<u32>,
    pub facts: Facts,
}

/// What each item offers (size, colour, brand, price), by column.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    size: OptStrs,
    color: OptStrs,
    brand: OptStrs,
    currency: OptStrs,
    /// price in minor units; `i64::MIN` for none
    price: Slab<i64>,
}

impl Facts {
    pub fn push(&mut self, f: &ItemFacts) {
        self.size.push(f.size.as_deref());
        self.color.push(f.color.as_deref());
        self.brand.push(f.brand.as_deref());
        self.currency.push(f.currency.as_deref());
        self.price.push(f.price_minor.unwrap_or(i64::MIN));
    }

    pub fn len(&self) -> usize {
        self.price.len()
    }

    pub fn is_empty(&self) -> bool {
        self.price.is_empty()
    }

    /// Item `i`'s facts (its `item_id` left empty).
    pub fn get(&self, i: usize) -> Option<ItemFacts> {
        let price = *self.price.get(i)?;
        Some(ItemFacts {
            item_id: String::new(),
            size: self.size.get(i).map(str::to_string),
            color: self.color.get(i).map(str::to_string),
            brand: self.brand.get(i).map(str::to_string),
            price_minor: (price != i64::MIN).then_some(price),
            currency: self.currency.get(i).map(str::to_string),
        })
    }

    /// Replaces item `i`'s facts (rebuilds the columns: for tests and edits, not for serving).
    pub fn set(&mut self, i: usize, f: &ItemFacts) {
        let all: Vec<ItemFacts> = (0..self.len()).filter_map(|j| if j == i { Some(f.clone()) } else { self.get(j) }).collect();
        *self = Facts::default();
        all.iter().for_each(|f| self.push(f));
    }

    fn own_bytes(&self) -> usize {
        self.size.own_bytes() + self.color.own_bytes() + self.brand.own_bytes() + self.currency.own_bytes() + self.price.own_bytes()
    }

    fn write(&self, w: &mut Writer) {
        [&self.size, &self.color, &self.brand, &self.currency].iter().for_each(|s| w.opt_strs(s));
        w.put(&self.price);
    }

    fn read(r: &mut Reader) -> Result<Facts, Error> {
        Ok(Facts { size: r.opt_strs()?, color: r.opt_strs()?, brand: r.opt_strs()?, currency: r.opt_strs()?, price: r.slab()? })
    }
}

/// Per customer segment, its best sellers (item, score), best first.
#[derive(Debug, Clone, Default)]
pub struct Segments {
    names: Strs,
    index: Lookup,
    lists: Lists<(u32, f32)>,
}

impl Segments {
    pub fn get(&self, name: &str) -> Option<&[(u32, f32)]> {
        self.index.get(name).and_then(|&i| self.lists.get(i as usize))
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

impl From<HashMap<String, Vec<(u32, f32)>>> for Segments {
    fn from(m: HashMap<String, Vec<(u32, f32)>>) -> Self {
        let mut s = Segments::default();
        let mut m: Vec<_> = m.into_iter().collect();
        m.sort_by(|a, b| a.0.cmp(&b.0));
        for (i, (name, list)) in m.into_iter().enumerate() {
            s.names.push(&name);
            s.index.insert(name, i as u32);
            s.lists.push(&list);
        }
        s
    }
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
                self.categories.push(cat);
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
        self.title.push(title.as_deref().unwrap_or(&id));
        self.ids.push(&id);
        self.index.insert(id, i);
        self.category.push(c);
        self.group.push(g);
        self.facts.push(&facts);
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn category_name(&self, i: u32) -> &str {
        self.categories.get(self.category[i as usize] as usize).unwrap_or("")
    }

    fn own_bytes(&self) -> usize {
        self.ids.own_bytes()
            + self.index.own_bytes()
            + self.title.own_bytes()
            + self.category.own_bytes()
            + self.categories.own_bytes()
            + self.category_index.own_bytes()
            + self.group.own_bytes()
            + self.facts.own_bytes()
    }

    fn write(&self, w: &mut Writer) {
        w.strs(&self.ids);
        w.lookup(&self.ids);
        w.strs(&self.title);
        w.put(&self.category);
        w.strs(&self.categories);
        w.lookup(&self.categories);
        w.put(&self.group);
        self.facts.write(w);
    }

    fn read(r: &mut Reader) -> Result<Catalogue, Error> {
        let ids = r.strs()?;
        let index = r.lookup(&ids)?;
        let title = r.strs()?;
        let category = r.slab()?;
        let categories = r.strs()?;
        let category_index = r.lookup(&categories)?;
        let (group, facts) = (r.slab()?, Facts::read(r)?);
        Ok(Catalogue { ids, index, title, category, categories, category_index, group, facts })
    }
}

/// A deployed model, ready to serve.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub model_id: i64,
    pub cat: Catalogue,
    pub als: Option<Als>,
    /// unit content vectors, row-major, and their width (zero rows for items without one)
    pub content: Option<(Slab<f32>, usize)>,
    /// basket and session neighbours merged as training did (a session pair counts half)
    pub neighbors: Option<Lists<Neighbor>>,
    /// basket neighbours only: "bought together", for complements
    pub basket: Option<Lists<Neighbor>>,
    pub popularity: Option<Popularity>,
    /// per customer segment, its best sellers (item, score), best first
    pub segments: Segments,
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
    pub by_weekday: Slab<[f32; 7]>,
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
        Demand { by_weekday: by_weekday.into(), typical }
    }

    /// Item `i`'s forecast units per day over the `lead_days` from `now_ms`'s weekday (UTC) on.
    pub fn per_day(&self, i: u32, now_ms: i64, lead_days: f64) -> f64 {
        let Some(f) = self.by_weekday.get(i as usize) else { return 0.0 };
        let f = f.map(f64::from);
        crate::demand::per_day(&f, crate::demand::weekday(now_ms.div_euclid(86_400_000)), lead_days)
    }
}

/// Each item's nearest items in one space, nearest first (compressed rows).
#[derive(Debug, Clone, Default)]
pub struct Knn {
    /// item i's list is `items[start[i]..start[i + 1]]`
    start: Slab<u32>,
    items: Slab<u32>,
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
        Knn { start: start.into(), items: items.into() }
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

    /// Bytes the model's data takes, wherever it is (its image's length).
    pub fn bytes(&self) -> usize {
        let mut w = Writer::sizing();
        self.write(&mut w);
        w.len()
    }

    /// Bytes of the backend's own memory the model holds (0 but the popularity of the hour
    /// for a model read from a shared image).
    pub fn own_bytes(&self) -> usize {
        let opt = |o: Option<usize>| o.unwrap_or(0);
        self.cat.own_bytes()
            + opt(self.als.as_ref().map(|a| a.item.own_bytes() + a.learned.own_bytes() + a.yty.own_bytes() + a.norm.own_bytes()))
            + opt(self.content.as_ref().map(|c| c.0.own_bytes()))
            + opt(self.neighbors.as_ref().map(Lists::own_bytes))
            + opt(self.basket.as_ref().map(Lists::own_bytes))
            + opt(self.popularity.as_ref().map(|p| p.score.own_bytes() + p.by_hour.own_bytes() + p.by_weekday.own_bytes()))
            + self.segments.names.own_bytes()
            + self.segments.index.own_bytes()
            + self.segments.lists.own_bytes()
            + opt(self.als_q.as_ref().map(|q| q.data.own_bytes() + q.scale.own_bytes()))
            + opt(self.content_q.as_ref().map(|q| q.data.own_bytes() + q.scale.own_bytes()))
            + opt(self.als_knn.as_ref().map(|k| k.start.own_bytes() + k.items.own_bytes()))
            + opt(self.content_knn.as_ref().map(|k| k.start.own_bytes() + k.items.own_bytes()))
            + opt(self.demand.as_ref().map(|d| d.by_weekday.own_bytes()))
            + self.popularity_cache.borrow().as_ref().map_or(0, |p| (p.score.len() + p.order.len()) * 8)
    }

    /// The model as one image ([`super::flat`]), for shared memory.
    pub fn image(&self) -> Writer {
        let mut w = Writer::new();
        self.write(&mut w);
        w
    }

    fn write(&self, w: &mut Writer) {
        fn opt<T>(w: &mut Writer, o: &Option<T>, f: impl FnOnce(&mut Writer, &T)) {
            w.one(u8::from(o.is_some()));
            if let Some(x) = o {
                f(w, x);
            }
        }
        w.one(self.model_id);
        w.put(&self.weights);
        w.one(self.data_to_ms);
        w.one(self.items_until_ms);
        self.cat.write(w);
        opt(w, &self.als, |w, a| {
            w.one(a.factors as u64);
            w.put(&a.item);
            w.put(&a.learned);
            w.put(&a.yty);
            w.put(&a.norm);
            w.put(&[a.regularization, a.alpha]);
        });
        opt(w, &self.content, |w, c| {
            w.one(c.1 as u64);
            w.put(&c.0);
        });
        opt(w, &self.neighbors, |w, l| w.lists(l));
        opt(w, &self.basket, |w, l| w.lists(l));
        opt(w, &self.popularity, |w, p| {
            w.put(&p.score);
            w.put(&p.by_hour);
            w.put(&p.by_weekday);
        });
        w.strs(&self.segments.names);
        w.lookup(&self.segments.names);
        w.lists(&self.segments.lists);
        for q in [&self.als_q, &self.content_q] {
            opt(w, q, |w, q| {
                w.one(q.dims as u64);
                w.put(&q.data);
                w.put(&q.scale);
            });
        }
        for k in [&self.als_knn, &self.content_knn] {
            opt(w, k, |w, k| {
                w.put(&k.start);
                w.put(&k.items);
            });
        }
        opt(w, &self.demand, |w, d| {
            w.put(&d.by_weekday);
            w.one(d.typical);
        });
    }

    /// A model over an image [`Model::image`] wrote: its arrays are read in place (shared),
    /// and every section is checked, so a damaged image is an error.
    pub fn read(r: &mut Reader) -> Result<Model, Error> {
        fn opt<T>(r: &mut Reader, f: impl FnOnce(&mut Reader) -> Result<T, Error>) -> Result<Option<T>, Error> {
            Ok(if r.one::<u8>()? == 1 { Some(f(r)?) } else { None })
        }
        let model_id = r.one()?;
        let weights: Slab<f32> = r.slab()?;
        let weights: [f32; 4] = weights[..].try_into().map_err(|_| super::flat::damaged("blend weights"))?;
        let (data_to_ms, items_until_ms) = (r.one()?, r.one()?);
        let cat = Catalogue::read(r)?;
        let n = cat.len();
        let width = |len: usize, w: u64, what: &str| -> Result<usize, Error> {
            let w = usize::try_from(w).map_err(|_| super::flat::damaged(what))?;
            if w == 0 || len != n * w {
                return Err(super::flat::damaged(what));
            }
            Ok(w)
        };
        let als = opt(r, |r| {
            let factors = r.one::<u64>()?;
            let (item, learned, yty, norm) = (r.slab::<f32>()?, r.slab()?, r.slab()?, r.slab()?);
            let rl: Slab<f32> = r.slab()?;
            let factors = width(item.len(), factors, "ALS factors")?;
            if learned.len() != n || norm.len() != n || yty.len() != factors * factors || rl.len() != 2 {
                return Err(super::flat::damaged("ALS"));
            }
            Ok(Als { factors, item, learned, yty, norm, regularization: rl[0], alpha: rl[1] })
        })?;
        let content = opt(r, |r| {
            let dims = r.one::<u64>()?;
            let v = r.slab::<f32>()?;
            let dims = width(v.len(), dims, "content vectors")?;
            Ok((v, dims))
        })?;
        let lists = |r: &mut Reader| -> Result<Lists<Neighbor>, Error> {
            let l = r.lists::<Neighbor>()?;
            if l.len() != n || l.iter().flatten().any(|x| x.item as usize >= n) {
                return Err(super::flat::damaged("neighbour lists"));
            }
            Ok(l)
        };
        let neighbors = opt(r, lists)?;
        let basket = opt(r, lists)?;
        let popularity = opt(r, |r| {
            let p = Popularity { score: r.slab()?, by_hour: r.slab()?, by_weekday: r.slab()? };
            if p.score.len() != n || p.by_hour.len() != n || p.by_weekday.len() != n {
                return Err(super::flat::damaged("popularity"));
            }
            Ok(p)
        })?;
        let names = r.strs()?;
        let index = r.lookup(&names)?;
        let seg_lists = r.lists::<(u32, f32)>()?;
        if seg_lists.len() != names.len() || seg_lists.iter().flatten().any(|x| x.0 as usize >= n) {
            return Err(super::flat::damaged("segments"));
        }
        let segments = Segments { names, index, lists: seg_lists };
        let mut quant = [None, None];
        for q in &mut quant {
            *q = opt(r, |r| {
                let dims = r.one::<u64>()?;
                let (data, scale) = (r.slab::<i8>()?, r.slab::<f32>()?);
                let dims = width(data.len(), dims, "quantized rows")?;
                if scale.len() != n {
                    return Err(super::flat::damaged("quantized rows"));
                }
                Ok(QuantRows { dims, data, scale })
            })?;
        }
        let mut knn = [None, None];
        for k in &mut knn {
            *k = opt(r, |r| {
                let k = Knn { start: r.slab()?, items: r.slab()? };
                let ok = k.start.len() == n + 1
                    && k.start.first() == Some(&0)
                    && k.start.windows(2).all(|w| w[0] <= w[1])
                    && k.start.last().is_some_and(|&e| e as usize == k.items.len())
                    && k.items.iter().all(|&j| (j as usize) < n);
                if !ok {
                    return Err(super::flat::damaged("nearest-item lists"));
                }
                Ok(k)
            })?;
        }
        let demand = opt(r, |r| {
            let d = Demand { by_weekday: r.slab()?, typical: r.one()? };
            if d.by_weekday.len() != n {
                return Err(super::flat::damaged("demand"));
            }
            Ok(d)
        })?;
        if !r.done() {
            return Err(super::flat::damaged("bytes after the last section"));
        }
        let [als_q, content_q] = quant;
        let [als_knn, content_knn] = knn;
        Ok(Model {
            model_id,
            cat,
            als,
            content,
            neighbors,
            basket,
            popularity,
            segments,
            als_q,
            content_q,
            als_knn,
            content_knn,
            weights,
            data_to_ms,
            items_until_ms,
            demand,
            popularity_cache: Default::default(),
        })
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
        let key = crate::models::popularity::hour_of_week(now_ms);
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
