//! Reading an item's content features from `reco.items`, the same way for training (every
//! item) and serving (an item `reco.similar_items` is asked about).
use crate::error::OrRaise;
use reco_engine::models::content::ItemFeatures;

/// The columns of `reco.items i` that [`features`] reads, in its order (7 columns).
macro_rules! feature_columns {
    () => {
        "i.category, i.brand, i.price::float8, i.title, i.attributes->>'color', i.attributes->>'size',
         CASE WHEN jsonb_typeof(i.attributes->'tags') = 'array' THEN ARRAY(SELECT jsonb_array_elements_text(i.attributes->'tags')) END"
    };
}
pub(crate) use feature_columns;

/// An item's content features from the [`feature_columns`] of a raw row (training's reader).
pub(crate) fn features_raw(r: &crate::api::RawRow, first: usize) -> ItemFeatures {
    ItemFeatures {
        category: r.text(first).map(str::to_owned),
        brand: r.text(first + 1).map(str::to_owned),
        price: r.value(first + 2),
        title: r.text(first + 3).map(str::to_owned),
        color: r.text(first + 4).map(str::to_owned),
        size: r.text(first + 5).map(str::to_owned),
        tags: r.value::<Vec<Option<String>>>(first + 6).unwrap_or_default().into_iter().flatten().collect(),
    }
}

/// An item's content features from the [`feature_columns`] of row `r`, starting at column `first`.
pub(crate) fn features(r: &pgrx::spi::SpiHeapTupleData, first: usize) -> ItemFeatures {
    ItemFeatures {
        category: r.get(first).or_raise(),
        brand: r.get(first + 1).or_raise(),
        price: r.get(first + 2).or_raise(),
        title: r.get(first + 3).or_raise(),
        color: r.get(first + 4).or_raise(),
        size: r.get(first + 5).or_raise(),
        tags: r.get::<Vec<Option<String>>>(first + 6).or_raise().unwrap_or_default().into_iter().flatten().collect(),
    }
}
