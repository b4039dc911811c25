//! Item-to-item scores: what goes with a cart (bought-together neighbours from other
//! categories) and what is like an item (ALS and content cosine).
use super::blend::score_rows;
use super::Model;
use crate::models::linalg::normalize;
use std::collections::HashMap;

/// Items that go with `inputs`: their basket neighbours from other categories, strength summed
/// over the inputs. Returns (item, score, the input it goes with best).
pub fn bought_together(m: &Model, inputs: &[u32], excluded: &[bool]) -> Vec<(u32, f32, u32)> {
    let Some(nb) = m.basket.as_ref().or(m.neighbors.as_ref()) else { return Vec::new() };
    let in_cats: Vec<u32> = inputs.iter().map(|&i| m.cat.category[i as usize]).collect();
    let mut acc: HashMap<u32, (f32, f32, u32)> = HashMap::new();
    for &i in inputs {
        for x in nb.get(i as usize).unwrap_or(&[]) {
            let j = x.item;
            if (j as usize) >= m.cat.len() || excluded.get(j as usize).copied().unwrap_or(false) || in_cats.contains(&m.cat.category[j as usize]) {
                continue;
            }
            let e = acc.entry(j).or_insert((0.0, 0.0, i));
            e.0 += x.score;
            if x.score > e.1 {
                e.1 = x.score;
                e.2 = i;
            }
        }
    }
    let mut v: Vec<(u32, f32, u32)> = acc.into_iter().map(|(j, (s, _, via))| (j, s, via)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// How much every item is like item `i`: cosine of ALS factors and of content vectors, averaged
/// over the spaces the model has (`content` overrides the item's stored content vector, for an
/// item the model has not seen). Item `i` and `excluded` items get −∞; empty when no space applies.
/// Rank with [`top_n`].
pub fn likeness(m: &Model, i: Option<u32>, content: Option<&[f32]>, excluded: &[bool]) -> Vec<f32> {
    let n = m.cat.len();
    let mut out = vec![0f32; n];
    let mut spaces = 0f32;
    if let (Some(a), Some(i)) = (&m.als, i) {
        if a.learned[i as usize] {
            let mut y = a.vec(i).to_vec();
            normalize(&mut y);
            let mut d = vec![0f32; out.len()];
            score_rows(&y, &a.item, a.factors, m.als_q.as_ref(), &mut d);
            for (j, (o, x)) in out.iter_mut().zip(d).enumerate() {
                if a.learned[j] && a.norm[j] > 0.0 {
                    *o += x / a.norm[j];
                }
            }
            spaces += 1.0;
        }
    }
    if let Some((vecs, d)) = &m.content {
        let q: Option<Vec<f32>> = content.map(<[f32]>::to_vec).or_else(|| i.map(|i| vecs[i as usize * d..(i as usize + 1) * d].to_vec()));
        if let Some(q) = q.filter(|q| q.iter().any(|x| *x != 0.0)) {
            let mut x = vec![0f32; out.len()];
            score_rows(&q, vecs, *d, m.content_q.as_ref(), &mut x);
            out.iter_mut().zip(x).for_each(|(o, x)| *o += x);
            spaces += 1.0;
        }
    }
    if spaces == 0.0 {
        return Vec::new();
    }
    for (j, o) in out.iter_mut().enumerate() {
        *o = if Some(j as u32) == i || excluded.get(j).copied().unwrap_or(false) { f32::NEG_INFINITY } else { *o / spaces };
    }
    out
}
