//! Storing what a model serves with: vectors (and their HNSW indexes), nearest-item lists,
//! neighbours, popularity and segment best sellers.
use super::*;
use reco_engine::models::linalg::nearest::{nearest, nearest_by_cosine};

pub(super) const ITEM_VECTORS_SQL: &str = "INSERT INTO reco.item_vectors (model_id, space, item_id, v) SELECT $3, $4, unnest($1::text[]), unnest($2)";
pub(super) const CUSTOMER_VECTORS_SQL: &str =
    "INSERT INTO reco.customer_vectors (model_id, space, customer_id, v) SELECT $3, $4, unnest($1::text[]), unnest($2)";

/// The model's HNSW index on a space, built by reco._index_item_vectors (owned by the owner of
/// reco.item_vectors, so that reco_admin can train without owning the table).
/// While the training yields to serving (`reco.training_nice` above 0) the build runs on the
/// backend alone: pgvector's parallel build workers are processes the postmaster starts at full
/// priority, and on a small server they took every core from serving for the build's seconds.
pub(super) fn hnsw(model_id: i64, space: &str, dims: usize) {
    let serial = if crate::gucs::TRAINING_NICE.get() > 0 { vec![(c"max_parallel_maintenance_workers", "0".to_string())] } else { vec![] };
    with_local_settings(&serial, || {
        Spi::run_with_args(
            "SELECT reco._index_item_vectors($1, $2, $3)",
            &[DatumWithOid::from(model_id), DatumWithOid::from(space), DatumWithOid::from(dims as i32)],
        )
        .or_raise()
    });
}

/// Runs `f` with each of `settings` set for this transaction, then puts back the values they had
/// (an error rolls back the training's subtransaction, which puts them back too).
fn with_local_settings<R>(settings: &[(&std::ffi::CStr, String)], f: impl FnOnce() -> R) -> R {
    let set = |name: &std::ffi::CStr, value: &str| {
        Spi::run_with_args("SELECT set_config($1, $2, true)", &[DatumWithOid::from(name.to_str().unwrap_or_default()), DatumWithOid::from(value)]).or_raise()
    };
    let before: Vec<_> = settings.iter().map(|(name, _)| (*name, crate::gucs::setting(name))).collect();
    for (name, value) in settings {
        set(name, value);
    }
    let r = f();
    for (name, value) in &before {
        if let Some(v) = value {
            set(name, v);
        }
    }
    r
}

/// A space's HNSW index (ALS by inner product, content by cosine) and, for a catalogue served
/// from the nearest-item lists (`reco.hnsw_min_items`), each item's nearest items: computed
/// exactly from `rows` (one row per item, `dims` wide; `stored` says which rows were written)
/// up to `reco.exact_knn_max_items` items, found with the index above.
pub(super) fn index_space(model_id: i64, space: &str, dims: usize, rows: &[f32], stored: &[bool], l: &Loaded, progress: &mut dyn FnMut(&str)) {
    let name = if space == "als" { "ALS" } else { "content" };
    // On Citus (docs/citus.md) the definer function would build the index over connections of
    // its own role, which wait on this transaction's writes to the same reference table: no
    // index there, serving scores the cached vectors and the nearest-item lists are exact.
    let citus = crate::api::distributed();
    if citus {
        progress(&format!("not indexing {name} item vectors on Citus (exact search)"));
    } else {
        progress(&format!("indexing {name} item vectors (HNSW)"));
        hnsw(model_id, space, dims);
    }
    if crate::gucs::index_backed(l.ds.n_items) {
        let lists = if citus || l.ds.n_items <= crate::gucs::EXACT_KNN_MAX_ITEMS.get().max(0) as usize {
            progress(&format!("finding each item's nearest items by {name} (exact)"));
            Some(exact_knn(space, dims, rows, stored))
        } else {
            progress(&format!("finding each item's nearest items by {name} (HNSW)"));
            None
        };
        knn(model_id, space, dims, &l.items, lists);
    }
}

/// How many nearest items training keeps per item and space (reco.item_knn).
pub const KNN: usize = 30;

/// Every stored row's [`KNN`] nearest stored rows, exactly, on a training pool: ALS by inner
/// product, content by cosine.
fn exact_knn(space: &str, dims: usize, rows: &[f32], stored: &[bool]) -> Vec<Vec<u32>> {
    on_training_pool(|exec| match space {
        "als" => nearest(rows, dims, KNN, stored, stored, &exec),
        _ => nearest_by_cosine(rows, dims, KNN, stored, &exec),
    })
}

/// Writes each item's nearest items in `space` to reco.item_knn, stored as the model's item
/// numbers so that a backend loads them without a lookup per neighbour: `lists` when given
/// (one per item number, empty for items without a list), else found with the model's HNSW
/// index for the space.
pub(super) fn knn(model_id: i64, space: &str, dims: usize, items: &Interner, lists: Option<Vec<Vec<u32>>>) {
    let (mut ids, mut nos, mut ends, mut flat): (Vec<String>, Vec<i32>, Vec<i32>, Vec<i32>) = Default::default();
    match lists {
        Some(lists) => {
            for (no, list) in lists.iter().enumerate().filter(|(_, l)| !l.is_empty()) {
                flat.extend(list.iter().map(|&n| n as i32));
                ends.push(flat.len() as i32);
                nos.push(no as i32);
                ids.push(items.ids[no].clone());
            }
        }
        None => hnsw_knn(model_id, space, dims, items, (&mut ids, &mut nos, &mut ends, &mut flat)),
    }
    const BATCH: usize = 20_000;
    let mut start = 0usize;
    while start < ids.len() {
        let end = (start + BATCH).min(ids.len());
        let base = if start == 0 { 0 } else { ends[start - 1] as usize };
        let offsets: Vec<i32> = ends[start..end].iter().map(|e| *e - base as i32).collect();
        let slice: Vec<i32> = flat[base..ends[end - 1] as usize].to_vec();
        Spi::connect_mut(|c| {
            crate::plans::update(
                c,
                "INSERT INTO reco.item_knn (model_id, space, item_id, item_no, neighbors)
                 SELECT $1, $2, $3[i], $4[i], $6[coalesce($5[i - 1], 0) + 1 : $5[i]]
                   FROM generate_subscripts($3::text[], 1) i",
                &[
                    DatumWithOid::from(model_id),
                    DatumWithOid::from(space),
                    DatumWithOid::from(ids[start..end].to_vec()),
                    DatumWithOid::from(nos[start..end].to_vec()),
                    DatumWithOid::from(offsets),
                    DatumWithOid::from(slice),
                ],
            )
            .or_raise();
        });
        start = end;
    }
}

/// Columns of reco.item_knn rows: item ids, item numbers, list ends, the lists one after another.
type KnnColumns<'a> = (&'a mut Vec<String>, &'a mut Vec<i32>, &'a mut Vec<i32>, &'a mut Vec<i32>);

/// Each item's nearest items found with the model's HNSW index for `space` (one search per
/// item, `hnsw.ef_search` deep; ALS by inner product, content by cosine, items without content
/// features skipped).
fn hnsw_knn(model_id: i64, space: &str, dims: usize, items: &Interner, out: KnnColumns) {
    let op = crate::api::hnsw::operator(space);
    let vs = vector::schema();
    let skip_zero = if space == "als" { String::new() } else { format!("AND {vs}.vector_norm(a.v::{vs}.vector({dims})) > 0") };
    let sql = format!(
        "SELECT a.item_id, ARRAY(SELECT b.item_id FROM reco.item_vectors b WHERE b.model_id = {model_id} AND b.space = '{space}'
                                  ORDER BY b.v::{vs}.vector({dims}) OPERATOR({vs}.{op}) a.v::{vs}.vector({dims}) LIMIT {})
           FROM reco.item_vectors a WHERE a.model_id = {model_id} AND a.space = '{space}' {skip_zero}",
        KNN + 1
    );
    let (ids, nos, ends, flat) = out;
    // the vectors were written by this transaction, after the statistics: without enable_sort
    // off the planner sorts every item's whole space instead of searching the index
    // (quadratic); and a search returns at most hnsw.ef_search items
    let mut settings = vec![(c"enable_sort", "off".to_string())];
    if crate::api::hnsw::ef_search() <= KNN {
        settings.push((c"hnsw.ef_search", (KNN + 1).to_string()));
    }
    with_local_settings(&settings, || {
        Spi::connect(|c| {
            crate::api::scan(c, &sql, &[], 10_000, |r| {
                let Some(id) = r.get::<String>(1).or_raise() else { return };
                let Some(no) = items.get(&id) else { return };
                let list: Vec<Option<String>> = r.get(2).or_raise().unwrap_or_default();
                flat.extend(list.iter().flatten().filter_map(|n| items.get(n)).filter(|&n| n != no).take(KNN).map(|n| n as i32));
                ends.push(flat.len() as i32);
                nos.push(no as i32);
                ids.push(id);
            });
        })
    });
}

/// Writes what the model needs for scoring.
pub(super) fn store(model_id: i64, l: &Loaded, t: &Trained, p: &Params, progress: &mut dyn FnMut(&str)) {
    let vt = vector::vector_type();
    if let Some(a) = &t.als {
        progress("storing ALS vectors");
        let (keys, vecs): (Vec<&str>, Vec<&[f32]>) = (0..l.ds.n_items).filter(|&i| t.has_item[i]).map(|i| (l.items.ids[i].as_str(), a.item_vec(i))).unzip();
        vector::insert_batched(vt, ITEM_VECTORS_SQL, model_id, "als", &keys, &vecs);
        let (keys, vecs): (Vec<&str>, Vec<&[f32]>) = (0..l.ds.n_users).filter(|&u| t.has_user[u]).map(|u| (l.users.ids[u].as_str(), a.user_vec(u))).unzip();
        vector::insert_batched(vt, CUSTOMER_VECTORS_SQL, model_id, "als", &keys, &vecs);
        if p.hnsw {
            index_space(model_id, "als", a.factors, &a.item, &t.has_item, l, progress);
        }
    }
    if let Some(c) = &t.content {
        progress("storing content vectors");
        let dims = p.content_dims;
        let (keys, vecs): (Vec<&str>, Vec<&[f32]>) = (0..l.ds.n_items).map(|i| (l.items.ids[i].as_str(), &c[i * dims..(i + 1) * dims])).unzip();
        vector::insert_batched(vt, ITEM_VECTORS_SQL, model_id, "content", &keys, &vecs);
        if p.hnsw {
            index_space(model_id, "content", dims, c, &vec![true; l.ds.n_items], l, progress);
        }
    }
    for (source, lists) in [("basket", &t.basket), ("session", &t.session), ("history", &t.history)] {
        let Some(lists) = lists else { continue };
        progress(&format!("storing {source} neighbours"));
        let mut cols: NeighbourColumns = Default::default();
        for (i, list) in lists.iter().enumerate() {
            for (rank, n) in list.iter().enumerate() {
                cols.0.push(&l.items.ids[i]);
                cols.1.push(rank as i32 + 1);
                cols.2.push(&l.items.ids[n.item as usize]);
                cols.3.push(n.support as i32);
                cols.4.push(n.confidence);
                cols.5.push(n.lift);
                cols.6.push(n.score);
                cols.7.push(n.cross_category);
            }
        }
        Spi::connect_mut(|c| {
            crate::plans::update(
                c,
                "INSERT INTO reco.item_neighbors (model_id, source, item_id, rank, neighbor_id, support, confidence, lift, score, cross_category)
                 SELECT $1, $2, * FROM unnest($3::text[], $4::int[], $5::text[], $6::int[], $7::real[], $8::real[], $9::real[], $10::bool[])",
                &[
                    DatumWithOid::from(model_id),
                    DatumWithOid::from(source),
                    DatumWithOid::from(cols.0),
                    DatumWithOid::from(cols.1),
                    DatumWithOid::from(cols.2),
                    DatumWithOid::from(cols.3),
                    DatumWithOid::from(cols.4),
                    DatumWithOid::from(cols.5),
                    DatumWithOid::from(cols.6),
                    DatumWithOid::from(cols.7),
                ],
            )
            .or_raise();
        });
    }
    if let Some(pop) = &t.popularity {
        progress("storing popularity");
        store_segments(model_id, l, p);
        let idx: Vec<usize> = (0..l.ds.n_items).filter(|&i| pop.score[i] > 0.0).collect();
        for chunk in idx.chunks(10_000) {
            let ids: Vec<&str> = chunk.iter().map(|&i| l.items.ids[i].as_str()).collect();
            let cats: Vec<Option<&str>> = chunk.iter().map(|&i| l.features.features[i].category.as_deref()).collect();
            let score: Vec<f32> = chunk.iter().map(|&i| pop.score[i]).collect();
            let hours: Vec<f32> = chunk.iter().flat_map(|&i| pop.by_hour[i]).collect();
            let days: Vec<f32> = chunk.iter().flat_map(|&i| pop.by_weekday[i]).collect();
            Spi::connect_mut(|c| {
                crate::plans::update(
                    c,
                    "INSERT INTO reco.item_popularity (model_id, item_id, category, score, by_hour, by_weekday)
                     SELECT $1, i, c, s, $5[(n - 1) * 24 + 1 : n * 24], $6[(n - 1) * 7 + 1 : n * 7]
                       FROM unnest($2::text[], $3::text[], $4::real[]) WITH ORDINALITY AS u(i, c, s, n)",
                    &[
                        DatumWithOid::from(model_id),
                        DatumWithOid::from(ids),
                        DatumWithOid::from(cats),
                        DatumWithOid::from(score),
                        DatumWithOid::from(hours),
                        DatumWithOid::from(days),
                    ],
                )
                .or_raise();
            });
        }
    }
}

/// Best sellers per customer segment (`reco.customers.attributes->>'segment'`), decayed like
/// the popularity member, top [`SEGMENT_TOP`] each: the starter packs of new customers.
pub(super) fn store_segments(model_id: i64, l: &Loaded, p: &Params) {
    use reco_engine::models::popularity::{top_by_group, Interaction};
    use reco_engine::standardize::time::PG_EPOCH_UNIX_MICROS;
    let mut names = Interner::default();
    let mut group: Vec<Option<u32>> = vec![None; l.ds.n_users];
    Spi::connect(|c| {
        crate::api::scan(c, "SELECT customer_id, attributes->>'segment' FROM reco.customers WHERE attributes ? 'segment'", &[], 20_000, |r| {
            let (Some(id), Some(seg)) = (r.get::<String>(1).or_raise(), r.get::<String>(2).or_raise()) else { return };
            if let Some(u) = l.users.get(&id) {
                group[u as usize] = Some(names.get_or_insert(&seg));
            }
        });
    });
    if names.is_empty() {
        return;
    }
    let xs: Vec<(u32, Interaction)> =
        l.ds.events
            .iter()
            .filter_map(|e| {
                let g = group.get(e.user as usize).copied().flatten()?;
                Some((g, Interaction { item: e.item, weight: e.weight, at_ms: (e.at + PG_EPOCH_UNIX_MICROS) / 1000 }))
            })
            .collect();
    let now_ms = (l.data_to.unwrap_or(0) + PG_EPOCH_UNIX_MICROS) / 1000;
    let tops = top_by_group(&xs, names.len(), l.ds.n_items, now_ms, p.popularity_half_life_days, SEGMENT_TOP);
    let (mut seg, mut rank, mut item, mut score) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (g, top) in tops.iter().enumerate() {
        for (r, (i, s)) in top.iter().enumerate() {
            seg.push(names.ids[g].as_str());
            rank.push(r as i32 + 1);
            item.push(l.items.ids[*i as usize].as_str());
            score.push(*s);
        }
    }
    Spi::connect_mut(|c| {
        crate::plans::update(
            c,
            "INSERT INTO reco.segment_popularity (model_id, segment, rank, item_id, score)
             SELECT $1, s, r, i, x FROM unnest($2::text[], $3::int[], $4::text[], $5::real[]) AS u(s, r, i, x)",
            &[DatumWithOid::from(model_id), DatumWithOid::from(seg), DatumWithOid::from(rank), DatumWithOid::from(item), DatumWithOid::from(score)],
        )
        .or_raise();
    });
}

/// Neighbour rows by column (item, rank, neighbour, support, confidence, lift, score,
/// cross-category), bound as arrays in one INSERT.
type NeighbourColumns<'a> = (Vec<&'a str>, Vec<i32>, Vec<&'a str>, Vec<i32>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<bool>);

/// Items kept per segment in reco.segment_popularity.
pub(super) const SEGMENT_TOP: usize = 100;
