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

/// A row the [`feature_columns`] are read from: pgrx's (serving, one item) or a raw one
/// (training's reader), so both read the same columns the same way.
pub(crate) trait FeatureRow {
    fn text_at(&self, col: usize) -> Option<String>;
    fn float_at(&self, col: usize) -> Option<f64>;
    fn texts_at(&self, col: usize) -> Vec<String>;
}

impl FeatureRow for pgrx::spi::SpiHeapTupleData<'_> {
    fn text_at(&self, col: usize) -> Option<String> {
        self.get(col).or_raise()
    }
    fn float_at(&self, col: usize) -> Option<f64> {
        self.get(col).or_raise()
    }
    fn texts_at(&self, col: usize) -> Vec<String> {
        self.get::<Vec<Option<String>>>(col).or_raise().unwrap_or_default().into_iter().flatten().collect()
    }
}

impl FeatureRow for crate::api::RawRow<'_> {
    fn text_at(&self, col: usize) -> Option<String> {
        self.text(col).map(str::to_owned)
    }
    fn float_at(&self, col: usize) -> Option<f64> {
        self.value(col)
    }
    fn texts_at(&self, col: usize) -> Vec<String> {
        self.value::<Vec<Option<String>>>(col).unwrap_or_default().into_iter().flatten().collect()
    }
}

/// An item's content features from the [`feature_columns`] of row `r`, starting at column `first`.
pub(crate) fn features(r: &impl FeatureRow, first: usize) -> ItemFeatures {
    ItemFeatures {
        category: r.text_at(first),
        brand: r.text_at(first + 1),
        price: r.float_at(first + 2),
        title: r.text_at(first + 3),
        color: r.text_at(first + 4),
        size: r.text_at(first + 5),
        tags: r.texts_at(first + 6),
    }
}
