//! Content model: item vectors from attributes by signed feature hashing, so an item with no
//! interactions still has neighbours. Features and their weights:
//!
//! | feature | weight |
//! |---|---|
//! | `cat:<category>` | 1.0 |
//! | `brand:<brand>` | 0.6 |
//! | `price:<category>:<band>` (band = ⌊2·log2(price + 1)⌋; the neighbouring bands at half weight) | 0.5 |
//! | `tag:<tag>` each | 0.5 |
//! | `word:<token>` each title token of 3+ letters or digits, lower-cased, not a size or color | 0.3 |
//! | `color:<color>` | 0.2 |
//!
//! A feature lands in dimension `fnv64(feature) mod dims` with sign from the hash's top bit;
//! vectors are L2-normalized, so the dot product is the cosine. A customer's content profile
//! is the weighted mean of the vectors of what they interacted with, normalized.
use super::linalg::{axpy, normalize};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemFeatures {
    pub category: Option<String>,
    pub brand: Option<String>,
    pub price: Option<f64>,
    pub title: Option<String>,
    pub tags: Vec<String>,
    pub color: Option<String>,
    pub size: Option<String>,
}

fn add(v: &mut [f32], feature: &str, w: f32) {
    let h = crate::hash::fnv1a64(feature.as_bytes());
    let d = (h % v.len() as u64) as usize;
    v[d] += if h >> 63 == 1 { -w } else { w };
}

/// The vector of one item, `dims` long (at least 1), unit length unless it has no features.
pub fn vector(it: &ItemFeatures, dims: usize) -> Vec<f32> {
    let mut v = vec![0f32; dims.max(1)];
    let low = |s: &str| s.trim().to_lowercase();
    let cat = it.category.as_deref().map(low).unwrap_or_default();
    if !cat.is_empty() {
        add(&mut v, &format!("cat:{cat}"), 1.0);
    }
    if let Some(b) = it.brand.as_deref().map(low).filter(|b| !b.is_empty()) {
        add(&mut v, &format!("brand:{b}"), 0.6);
    }
    if let Some(p) = it.price.filter(|p| p.is_finite() && *p >= 0.0) {
        let band = (2.0 * (p + 1.0).log2()).floor() as i64;
        add(&mut v, &format!("price:{cat}:{band}"), 0.5);
        add(&mut v, &format!("price:{cat}:{}", band - 1), 0.25);
        add(&mut v, &format!("price:{cat}:{}", band + 1), 0.25);
    }
    for t in &it.tags {
        let t = low(t);
        if !t.is_empty() {
            add(&mut v, &format!("tag:{t}"), 0.5);
        }
    }
    let color = it.color.as_deref().map(low);
    let size = it.size.as_deref().map(low);
    if let Some(title) = &it.title {
        for w in title.split(|c: char| !c.is_alphanumeric()).map(low) {
            if w.chars().count() >= 3 && Some(&w) != color.as_ref() && Some(&w) != size.as_ref() {
                add(&mut v, &format!("word:{w}"), 0.3);
            }
        }
    }
    if let Some(c) = color.filter(|c| !c.is_empty()) {
        add(&mut v, &format!("color:{c}"), 0.2);
    }
    normalize(&mut v);
    v
}

/// Vectors of all items, row-major.
pub fn vectors(items: &[ItemFeatures], dims: usize) -> Vec<f32> {
    items.iter().flat_map(|it| vector(it, dims)).collect()
}

/// The normalized weighted mean of item vectors (`vecs` row-major, `dims` wide); items with a
/// non-positive weight are skipped.
pub fn profile(vecs: &[f32], dims: usize, items: &[u32], weights: &[f32]) -> Vec<f32> {
    let mut p = vec![0f32; dims];
    for (&i, &w) in items.iter().zip(weights) {
        if w > 0.0 {
            if let Some(v) = vecs.get(i as usize * dims..(i as usize + 1) * dims) {
                axpy(w, v, &mut p);
            }
        }
    }
    normalize(&mut p);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::linalg::dot;

    fn item(cat: &str, brand: &str, price: f64, title: &str) -> ItemFeatures {
        ItemFeatures { category: Some(cat.into()), brand: Some(brand.into()), price: Some(price), title: Some(title.into()), ..Default::default() }
    }

    #[test]
    fn similar_items_are_closer_than_different_ones() {
        let a = vector(&item("shoes", "Acme", 80.0, "Trail runner"), 128);
        let b = vector(&item("shoes", "Acme", 90.0, "Road runner"), 128);
        let c = vector(&item("phones", "Orbit", 600.0, "Smartphone X"), 128);
        approx::assert_relative_eq!(dot(&a, &a), 1.0, epsilon = 1e-5);
        assert!(dot(&a, &b) > 0.7, "{}", dot(&a, &b));
        assert!(dot(&a, &c).abs() < 0.3, "{}", dot(&a, &c));
        assert_eq!(a, vector(&item("Shoes ", "acme", 80.0, "TRAIL runner"), 128), "case and spaces do not matter");
        assert!(vector(&ItemFeatures::default(), 8).iter().all(|x| *x == 0.0));
    }

    #[test]
    fn profile_is_the_normalized_weighted_mean() {
        let vecs = [1.0, 0.0, 0.0, 1.0];
        let p = profile(&vecs, 2, &[0, 1, 1], &[3.0, 2.0, -9.0]);
        approx::assert_relative_eq!(p[0], 3.0 / 13f32.sqrt(), epsilon = 1e-6);
        approx::assert_relative_eq!(p[1], 2.0 / 13f32.sqrt(), epsilon = 1e-6);
    }
}
