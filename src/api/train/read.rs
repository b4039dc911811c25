//! Reading the canonical model for a training: items and weighted events in one snapshot.
use super::*;

/// Everything training reads, from one statement (one snapshot).
pub(super) struct Loaded {
    pub(super) ds: Dataset,
    pub(super) features: TrainingItems,
    pub(super) items: Interner,
    pub(super) users: Interner,
    pub(super) categories: Interner,
    pub(super) data_from: Option<i64>,
    pub(super) data_to: Option<i64>,
}

/// The events a training reads: with a weight, a customer and an item, in the window ($1 days,
/// 0 = all).
macro_rules! weighted_events {
    () => {
        "
  FROM reco.events e JOIN reco.event_weights w ON w.kind = e.kind
 WHERE e.customer_id IS NOT NULL AND e.item_id IS NOT NULL AND w.weight <> 0
   AND ($1 = 0 OR e.occurred_at >= now() - make_interval(secs => $1 * 86400))"
    };
}

pub(super) const READ_SQL: &str = concat!(
    "SELECT 0, i.item_id, NULL::text, NULL::text, NULL::text, NULL::float8, NULL::float8, NULL::timestamptz, ",
    crate::api::items::feature_columns!(),
    ", i.group_id
  FROM reco.items i
UNION ALL
SELECT 1, e.item_id, e.customer_id, e.session_id, e.order_id, w.weight, e.value, e.occurred_at,
       e.kind, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
    weighted_events!()
);

/// The shape of what `load` will read, counted (a scan of the events: about 0.15 s per 2 million;
/// the planner's row estimates cost nothing but were off tenfold after a bulk load).
pub(super) fn shape(window_days: f64) -> Shape {
    const SQL: &str = concat!("SELECT (SELECT count(*) ", weighted_events!(), "), (SELECT count(*) FROM reco.customers), (SELECT count(*) FROM reco.items)");
    let (events, customers, items) = Spi::get_three_with_args::<i64, i64, i64>(SQL, &[DatumWithOid::from(window_days)]).or_raise();
    let n = |x: Option<i64>| x.unwrap_or(0).max(0) as usize;
    Shape { events: n(events), customers: n(customers), items: n(items) }
}

pub(super) fn item_index(l: &mut Loaded, id: &str) -> u32 {
    let i = l.items.get_or_insert(id);
    if i as usize == l.features.features.len() {
        l.features.features.push(ItemFeatures::default());
        l.features.category.push(l.categories.get_or_insert(""));
        l.features.group.push(NONE);
    }
    i
}

pub(super) fn load(window_days: f64, progress: &mut dyn FnMut(&str)) -> Loaded {
    let mut l = Loaded {
        ds: Dataset::default(),
        features: TrainingItems::default(),
        items: Interner::default(),
        users: Interner::default(),
        categories: Interner::default(),
        data_from: None,
        data_to: None,
    };
    let (mut baskets, mut sessions, mut groups) = (Interner::default(), Interner::default(), Interner::default());
    Spi::connect(|c| {
        crate::api::scan_raw(c, READ_SQL, &[DatumWithOid::from(window_days)], 20_000, |r| {
            let src: i32 = r.value(1).unwrap_or(1);
            let item_id = r.text(2).unwrap_or_default();
            if src == 0 {
                let i = item_index(&mut l, item_id) as usize;
                let f = crate::api::items::features(r, 9);
                l.features.category[i] = l.categories.get_or_insert(f.category.as_deref().unwrap_or(""));
                l.features.features[i] = f;
                l.features.group[i] = r.text(16).map_or(NONE, |g| groups.get_or_insert(g));
                return;
            }
            let customer = r.text(3).unwrap_or_default();
            let session = r.text(4);
            let order = r.text(5);
            let weight: f64 = r.value(6).unwrap_or(0.0);
            let value: Option<f64> = r.value(7);
            // timestamptz: PostgreSQL's microseconds since 2000-01-01, the engine's own unit
            let at: i64 = r.value(8).unwrap_or(0);
            let kind = r.text(9).unwrap_or_default();
            let w = contribution(kind, value, weight) as f32;
            let basket = match (order, kind) {
                (Some(o), "purchase") => baskets.get_or_insert(o),
                _ => NONE,
            };
            let session = match (session, kind) {
                (Some(s), "view" | "click" | "cart_add") => sessions.get_or_insert(s),
                _ => NONE,
            };
            let ev = Event {
                user: l.users.get_or_insert(customer),
                item: item_index(&mut l, item_id),
                weight: w,
                at,
                basket,
                session,
                kind: l.ds.kind(kind),
                value: value.map_or(f32::NAN, |v| v as f32),
            };
            l.data_from = Some(l.data_from.map_or(at, |x| x.min(at)));
            l.data_to = Some(l.data_to.map_or(at, |x| x.max(at)));
            l.ds.events.push(ev);
            if l.ds.events.len().is_multiple_of(100_000) {
                progress(&format!("read {} events", l.ds.events.len()));
            }
        });
    });
    progress(&format!("read {} events", l.ds.events.len()));
    canonicalize(&mut l, &mut baskets, &mut sessions, &mut groups);
    l.ds.n_users = l.users.len();
    l.ds.n_items = l.items.len();
    l
}

/// Numbers customers, items, orders, sessions, categories and groups in byte order of their
/// ids and sorts the events by content (`Dataset::canonicalize`): the rows' read order (heap
/// order on one node, shard by shard on Citus) then changes nothing in the trained model.
fn canonicalize(l: &mut Loaded, baskets: &mut Interner, sessions: &mut Interner, groups: &mut Interner) {
    let users = l.users.sort();
    let items = l.items.sort();
    l.ds.canonicalize(&users, &items, &baskets.sort(), &sessions.sort());
    let categories = l.categories.sort();
    let group_map = groups.sort();
    let n = items.len();
    let mut features = vec![Default::default(); n];
    let mut category = vec![0u32; n];
    let mut group = vec![NONE; n];
    let old = std::mem::take(&mut l.features);
    for (i, ((f, c), g)) in old.features.into_iter().zip(old.category).zip(old.group).enumerate() {
        let j = items[i] as usize;
        features[j] = f;
        category[j] = categories[c as usize];
        group[j] = if g == NONE { NONE } else { group_map[g as usize] };
    }
    l.features = TrainingItems { features, category, group };
}
