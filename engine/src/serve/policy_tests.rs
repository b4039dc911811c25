//! The serving policy without a server: a small shop (phones, cases, chargers, shoes) and a
//! [`Live`] with fixed answers, swept over every hour of a week.
use super::context::Context;
use super::policy::{self, Ask, Subject, NO_MODEL_REASON};
use super::request::{anchors, CART_WEIGHT};
use super::*;
use crate::models::content::ItemFeatures;
use crate::models::cooccurrence::Neighbor;
use crate::models::popularity::Popularity;
use crate::prefs::fit::ItemFacts;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};

/// 2025-01-06 00:00 UTC, a Monday.
const MONDAY: i64 = 1_736_121_600_000;
const HOUR: i64 = 3_600_000;

/// Fixed answers, and what was asked.
#[derive(Default)]
struct Shop {
    out_of_stock: HashSet<String>,
    category_now: HashMap<String, String>,
    new: Vec<(String, Option<String>)>,
    best_sellers: Vec<(String, f64)>,
    preferences: Map<String, Value>,
    back: HashSet<String>,
    asked_buyable: usize,
    /// units available (100 when not listed; 0 when out of stock)
    units: HashMap<String, f64>,
    asked_available: usize,
}

impl Live for Shop {
    fn buyable(&mut self, ids: &[&str]) -> Vec<bool> {
        self.asked_buyable += ids.len();
        ids.iter().map(|id| !self.out_of_stock.contains(*id)).collect()
    }
    fn available(&mut self, ids: &[&str]) -> Vec<f64> {
        self.asked_available += ids.len();
        ids.iter().map(|id| if self.out_of_stock.contains(*id) { 0.0 } else { self.units.get(*id).copied().unwrap_or(100.0) }).collect()
    }
    fn in_categories(&mut self, ids: &[&str], categories: &[String]) -> HashSet<String> {
        ids.iter().filter(|id| self.category_now.get(**id).is_some_and(|c| categories.contains(c))).map(|id| id.to_string()).collect()
    }
    fn back_in_stock(&mut self, ids: &[&str], _: i64, _: i64) -> HashSet<String> {
        ids.iter().filter(|id| self.back.contains(**id)).map(|id| id.to_string()).collect()
    }
    fn new_items(&mut self, _: i64, skip: &[String], category: Option<&str>, not: &[String], n: usize) -> Vec<(String, Option<String>)> {
        let ok = |x: &(String, Option<String>)| {
            let cat = x.1.clone().unwrap_or_default();
            !skip.contains(&x.0) && category.is_none_or(|c| c == cat) && !not.contains(&cat)
        };
        self.new.iter().filter(|x| ok(x)).take(n).cloned().collect()
    }
    fn recent_best_sellers(&mut self, skip: &[String], _: Option<&str>, n: usize, _: i64) -> Vec<(String, f64)> {
        self.best_sellers.iter().filter(|x| !skip.contains(&x.0)).take(n).cloned().collect()
    }
    fn nearest(&mut self, _: &Model, _: Space, _: &[f32], _: usize) -> Option<Vec<u32>> {
        None
    }
    fn preferences(&mut self, _: &str) -> Map<String, Value> {
        self.preferences.clone()
    }
}

/// phone-0..3 (phones; 0 and 1 variants of one product), case-4..7, charger-8..9, shoe-10..13
fn shop_model() -> Model {
    let mut cat = Catalogue::default();
    let mut groups = HashMap::new();
    let items: [(&str, &str, Option<&str>); 14] = [
        ("phone-0", "phones", Some("p")),
        ("phone-1", "phones", Some("p")),
        ("phone-2", "phones", None),
        ("phone-3", "phones", None),
        ("case-4", "cases", None),
        ("case-5", "cases", None),
        ("case-6", "cases", None),
        ("case-7", "cases", None),
        ("charger-8", "chargers", None),
        ("charger-9", "chargers", None),
        ("shoe-10", "shoes", None),
        ("shoe-11", "shoes", None),
        ("shoe-12", "shoes", None),
        ("shoe-13", "shoes", None),
    ];
    for (id, c, g) in items {
        cat.push(id.to_string(), Some(id.to_uppercase()), Some(c), g, ItemFacts::default(), &mut groups);
    }
    let n = cat.len();
    // phones sell best, then shoes; every hour and weekday alike except phone-3 (evenings only)
    let score: Vec<f32> = (0..n).map(|i| [9.0, 8.0, 7.0, 6.0, 3.0, 2.9, 2.8, 2.7, 2.0, 1.9, 5.0, 4.9, 4.8, 4.7][i]).collect();
    let mut by_hour = vec![[1.0f32; 24]; n];
    by_hour[3] = [0.0; 24];
    by_hour[3][18..22].iter_mut().for_each(|x| *x = 60.0);
    let popularity = Popularity { score: score.into(), by_hour: by_hour.into(), by_weekday: vec![[1.0; 7]; n].into() };
    let nb = |item: u32, score: f32| Neighbor { item, support: 5, confidence: 0.5, lift: 2.0, score, cross_category: true };
    let mut basket = vec![Vec::new(); n];
    // a phone is bought with cases and chargers, and (in the data) with other phones
    for phone in basket.iter_mut().take(4) {
        *phone = vec![nb(4, 0.9), nb(8, 0.8), nb(5, 0.7), nb(2, 0.95), nb(9, 0.5)];
    }
    basket[10] = vec![nb(11, 0.9)];
    Model {
        model_id: 7,
        cat,
        neighbors: Some(basket.clone().into()),
        basket: Some(basket.into()),
        popularity: Some(popularity),
        weights: [0.4, 0.6, 0.0, 0.0],
        data_to_ms: MONDAY - 24 * HOUR,
        items_until_ms: MONDAY - 24 * HOUR,
        ..Default::default()
    }
}

fn ctx(v: Value) -> Context {
    Context::parse(v.as_object().unwrap()).unwrap()
}

fn ids(list: &[Served]) -> Vec<&str> {
    list.iter().map(|s| s.item_id.as_str()).collect()
}

fn past(item: &str, kind: &str, at_ms: i64) -> Past {
    Past { item: item.into(), kind: kind.into(), value: None, at_ms, in_session: false, mine: true }
}

fn settings() -> Settings {
    let weights = [("view", 1.0), ("cart_add", 3.0), ("purchase", 5.0), ("return", -5.0)].into_iter().map(|(k, w)| (k.to_string(), w)).collect();
    Settings { weights, repeatable: vec!["chargers".to_string()], ..Settings::default() }
}

fn recommend(m: Option<&Model>, cust: &Customer, c: &Context, k: usize, now: i64, shop: &mut Shop) -> Vec<Served> {
    let (s, t) = (settings(), Tuning::default());
    let ask = Ask { customer_id: Some("c1"), k, ctx: c, now_ms: now, placement: Placement::default(), settings: &s, tuning: &t };
    policy::recommend(m, &ask, cust, shop, &mut Scores::default(), &mut Stats::default())
}

#[test]
fn the_cart_outweighs_the_history_by_the_cart_weight_times_the_session_boost() {
    let m = shop_model();
    let cust = Customer { history: vec![past("shoe-10", "view", MONDAY - HOUR)], ..Default::default() };
    let a = anchors(&m, &cust, &["phone-2".to_string()], MONDAY, 2.0, 30.0, &settings().weights);
    assert_eq!(a[0].item, 2, "the cart item is the strongest anchor");
    assert_eq!(a[0].verb, Verb::InCart);
    assert!((a[0].weight - (CART_WEIGHT * 2.0) as f32).abs() < 1e-6, "{a:?}");
    assert!(a[1].weight < 1.0, "a view an hour ago weighs about one: {a:?}");
}

#[test]
fn every_hour_of_the_week_the_list_is_full_buyable_and_never_holds_what_it_must_not() {
    let m = shop_model();
    let mut shop = Shop { out_of_stock: ["case-5".to_string()].into(), ..Default::default() };
    let bought = [("shoe-12".to_string(), (false, false)), ("shoe-13".to_string(), (true, false))].into_iter().collect();
    let cust = Customer { profile: Profile { timezone: Some("Europe/Berlin".into()), ..Default::default() }, bought, ..Default::default() };
    let c = ctx(json!({"cart": ["phone-2"], "exclude": ["charger-9"]}));
    for h in 0..24 * 7 {
        let now = MONDAY + h * HOUR;
        let list = recommend(Some(&m), &cust, &c, 8, now, &mut shop);
        let got = ids(&list);
        assert_eq!(got.len(), 8, "hour {h}: {got:?}");
        for never in ["phone-2", "charger-9", "case-5", "shoe-12", "shoe-13"] {
            assert!(!got.contains(&never), "hour {h}: {never} in {got:?}");
        }
        assert!(!(got.contains(&"phone-0") && got.contains(&"phone-1")), "one variant per product, hour {h}: {got:?}");
        assert!(list.iter().all(|s| !s.reason.is_empty()), "hour {h}");
        let unique: HashSet<&str> = got.iter().copied().collect();
        assert_eq!(unique.len(), got.len(), "hour {h}: {got:?}");
    }
}

#[test]
fn a_cart_brings_what_was_bought_with_it_first_and_says_so() {
    let m = shop_model();
    let c = ctx(json!({"cart": ["phone-2"]}));
    let list = recommend(Some(&m), &Customer::default(), &c, 3, MONDAY + 10 * HOUR, &mut Shop::default());
    assert_eq!(list[0].item_id, "case-4", "{list:?}");
    assert_eq!(list[0].reason, "bought together with PHONE-2");
}

#[test]
fn a_new_customer_is_one_with_no_vector_and_nothing_older_than_a_day() {
    let fresh = Customer { history: vec![past("shoe-10", "view", MONDAY - HOUR)], ..Default::default() };
    assert!(fresh.is_new(MONDAY));
    let known = Customer { history: vec![past("shoe-10", "view", MONDAY - 25 * HOUR)], ..Default::default() };
    assert!(!known.is_new(MONDAY));
    let learned = Customer { profile: Profile { stored: Some(vec![0.1; 4]), ..Default::default() }, ..Default::default() };
    assert!(!learned.is_new(MONDAY));
}

#[test]
fn a_new_customer_browsing_shoes_gets_shoes_first_at_any_hour() {
    let m = shop_model();
    let cust = Customer { history: vec![past("shoe-10", "view", MONDAY - HOUR)], ..Default::default() };
    let c = ctx(json!({"max_per_category": 2}));
    for h in 0..24 {
        let list = recommend(Some(&m), &cust, &c, 4, MONDAY + h * HOUR, &mut Shop::default());
        assert!(list[0].item_id.starts_with("shoe-"), "hour {h}: {list:?}");
        assert!(list.iter().take(2).all(|s| s.item_id.starts_with("shoe-")), "hour {h}: {list:?}");
        assert_eq!(list.iter().filter(|s| s.item_id.starts_with("shoe-")).count(), 2, "the cap holds: {list:?}");
    }
}

#[test]
fn a_category_with_a_limit_of_its_own_keeps_to_it_under_the_default_penalty_at_any_hour() {
    let m = shop_model();
    let cust = Customer { history: vec![past("shoe-10", "view", MONDAY - HOUR)], ..Default::default() };
    let mut s = settings();
    s.max_per_list = vec![("shoes".to_string(), 1), ("no such category".to_string(), 1)];
    let t = Tuning::default();
    assert_eq!((t.max_per_category, t.diversity_penalty > 0.0), (0, true), "the default rule is the soft penalty alone");
    let shoes = |list: &[Served]| list.iter().filter(|x| x.item_id.starts_with("shoe-")).count();
    for h in 0..24 {
        let serve = |c: &Context, k: usize| {
            let ask = Ask { customer_id: Some("c1"), k, ctx: c, now_ms: MONDAY + h * HOUR, placement: Placement::default(), settings: &s, tuning: &t };
            policy::recommend(Some(&m), &ask, &cust, &mut Shop::default(), &mut Scores::default(), &mut Stats::default())
        };
        let unlimited = recommend(Some(&m), &cust, &ctx(json!({})), 4, MONDAY + h * HOUR, &mut Shop::default());
        assert!(shoes(&unlimited) >= 2, "hour {h}: without the limit the shoe browser gets shoes: {unlimited:?}");
        let list = serve(&ctx(json!({})), 4);
        assert_eq!((list.len(), shoes(&list)), (4, 1), "hour {h}: one shoe, the list full: {list:?}");
        assert!(list[0].item_id.starts_with("shoe-"), "hour {h}: the best shoe keeps its place: {list:?}");
        // a request within the category is not capped by it
        let within = serve(&ctx(json!({"category": "shoes"})), 3);
        assert!(shoes(&within) >= 2, "hour {h}: {within:?}");
    }
}

#[test]
fn popularity_follows_the_hour() {
    let m = shop_model();
    let c = ctx(json!({"category": "phones"}));
    let at = |h: i64| ids(&policy::popular(Some(&m), &c, 4, MONDAY + h * HOUR, &mut Shop::default())).iter().position(|x| *x == "phone-3");
    assert_eq!(at(19), Some(0), "an evening item leads in the evening");
    assert!(at(9) > Some(0), "and not in the morning");
}

#[test]
fn without_a_model_every_call_falls_back_to_recent_best_sellers() {
    let mut shop = Shop { best_sellers: vec![("phone-2".into(), 30.0), ("case-4".into(), 20.0), ("shoe-10".into(), 10.0)], ..Default::default() };
    let c = ctx(json!({"cart": ["phone-2"]}));
    let list = recommend(None, &Customer::default(), &c, 5, MONDAY, &mut shop);
    assert_eq!(ids(&list), ["case-4", "shoe-10"], "the cart is left out");
    assert!(list.iter().all(|s| s.reason == NO_MODEL_REASON));
    let comp = policy::complements(None, &["case-4".into()], 5, None, &Customer::default(), &settings(), &Tuning::default(), MONDAY, &mut shop);
    assert_eq!(ids(&comp), ["phone-2", "shoe-10"]);
    assert_eq!(ids(&policy::popular(None, &Context::default(), 1, MONDAY, &mut shop)), ["phone-2"]);
}

#[test]
fn items_newer_than_the_model_fill_what_the_model_cannot() {
    let m = shop_model();
    let mut shop = Shop { new: vec![("phone-99".into(), Some("phones".into())), ("hat-98".into(), None)], ..Default::default() };
    let list = recommend(Some(&m), &Customer::default(), &ctx(json!({})), 16, MONDAY, &mut shop);
    assert_eq!(list.len(), 16);
    assert_eq!(list[14].item_id, "phone-99");
    assert_eq!(list[14].reason, "new in phones");
    assert_eq!(list[15].reason, "new in the shop");
}

#[test]
fn complements_leave_the_inputs_categories_out_and_fill_with_other_categories() {
    let m = shop_model();
    let mut shop = Shop { out_of_stock: ["case-4".to_string()].into(), ..Default::default() };
    let cust = Customer::default();
    let list = policy::complements(Some(&m), &["phone-2".into()], 6, None, &cust, &settings(), &Tuning::default(), MONDAY, &mut shop);
    let got = ids(&list);
    assert_eq!(&got[..3], ["charger-8", "case-5", "charger-9"], "bought together, out of stock left out: {got:?}");
    assert!(got.iter().all(|x| !x.starts_with("phone-")), "no phone with a phone: {got:?}");
    assert_eq!(list[0].reason, "bought together with PHONE-2");
    assert!(list[3..].iter().all(|s| s.reason.starts_with("popular")), "{list:?}");
}

#[test]
fn similar_items_leave_out_the_items_own_variants() {
    let mut m = shop_model();
    m.content = Some((vec![1.0; 14 * 2].into(), 2));
    let features = ItemFeatures { title: Some("Phone Zero".into()), category: Some("phones".into()), ..Default::default() };
    let subject = Subject { item_id: "phone-0", features: &features, has_group: true };
    let list = policy::similar_items(Some(&m), &subject, 5, MONDAY, &mut Shop::default());
    let got = ids(&list);
    assert!(!got.contains(&"phone-0") && !got.contains(&"phone-1"), "{got:?}");
    assert_eq!(list[0].reason, "similar to Phone Zero");
}

#[test]
fn a_bought_item_comes_back_only_while_its_category_is_still_repeatable() {
    let m = shop_model();
    let history = History { events: vec![past("charger-8", "purchase", MONDAY - 48 * HOUR), past("shoe-10", "purchase", MONDAY - 48 * HOUR)], purchases: None };
    let mut shop = Shop::default();
    let cust = Customer::new(Profile::default(), history, Some(&m), &settings(), &mut shop);
    assert_eq!(cust.bought["shoe-10"], (false, false), "shoes are not repeatable");
    assert_eq!(cust.bought["charger-8"], (false, true));
    assert!(cust.recheck.contains(&8));
    let c = ctx(json!({"category": "chargers"}));
    // the catalogue now puts charger-8 elsewhere: not offered
    let list = recommend(Some(&m), &cust, &c, 2, MONDAY, &mut shop);
    assert_eq!(ids(&list), ["charger-9"]);
    // still a charger: offered again
    shop.category_now.insert("charger-8".into(), "chargers".into());
    let list = recommend(Some(&m), &cust, &c, 2, MONDAY, &mut shop);
    assert_eq!(ids(&list), ["charger-8", "charger-9"]);
    // a returned item never comes back
    let history = History { events: vec![past("charger-8", "purchase", MONDAY - 48 * HOUR), past("charger-8", "return", MONDAY - 24 * HOUR)], purchases: None };
    let cust = Customer::new(Profile::default(), history, Some(&m), &settings(), &mut shop);
    assert_eq!(ids(&recommend(Some(&m), &cust, &c, 2, MONDAY, &mut shop)), ["charger-9"]);
}

#[test]
fn back_in_stock_in_the_customers_size_says_so() {
    let mut m = shop_model();
    let mut f = m.cat.facts.get(10).unwrap();
    f.size = Some("EU42".into());
    m.cat.facts.set(10, &f);
    let mut shop =
        Shop { back: ["shoe-10".to_string()].into(), preferences: json!({"size_shoes": {"value": "EU42"}}).as_object().unwrap().clone(), ..Default::default() };
    let list = recommend(Some(&m), &Customer::default(), &ctx(json!({"category": "shoes"})), 4, MONDAY, &mut shop);
    let shoe = list.iter().find(|s| s.item_id == "shoe-10").unwrap();
    assert_eq!(shoe.reason, "back in stock in your size", "{list:?}");
}

fn checkout() -> Placement {
    Placement { multipliers: [1.0, 3.0, 0.5, 1.0], session_boost: 3.0, complements_first: true, alternatives: false, demand: 0.0 }
}

#[test]
fn at_checkout_a_phone_in_the_cart_brings_cases_and_chargers_first_every_hour_of_the_week() {
    let m = shop_model();
    let (s, t) = (settings(), Tuning::default());
    let c = ctx(json!({"cart": ["phone-2"], "placement": "checkout"}));
    for h in 0..24 * 7 {
        let now = MONDAY + h * HOUR;
        for cust in [Customer::default(), Customer { history: vec![past("shoe-10", "view", now - HOUR)], ..Default::default() }] {
            let ask = Ask { customer_id: None, k: 10, ctx: &c, now_ms: now, placement: checkout(), settings: &s, tuning: &t };
            let list = policy::recommend(Some(&m), &ask, &cust, &mut Shop::default(), &mut Scores::default(), &mut Stats::default());
            let got = ids(&list);
            assert_eq!(got.len(), 10, "hour {h}: {got:?}");
            let first_phone = got.iter().position(|x| x.starts_with("phone-")).unwrap_or(got.len());
            let others = got.iter().filter(|x| !x.starts_with("phone-")).count();
            assert_eq!(first_phone, others, "hour {h}: phones only after everything else: {got:?}");
            assert_eq!(&got[..2], ["case-4", "charger-8"], "hour {h}: {got:?}");
            assert_eq!(list[0].reason, "bought together with PHONE-2", "hour {h}");
        }
    }
}

#[test]
fn the_home_placement_keeps_the_blend_as_trained_with_a_cart() {
    let m = shop_model();
    let (s, t) = (settings(), Tuning::default());
    let c = ctx(json!({"cart": ["phone-2"], "max_per_category": 0}));
    let ask = Ask { customer_id: None, k: 6, ctx: &c, now_ms: MONDAY + 10 * HOUR, placement: Placement::default(), settings: &s, tuning: &t };
    let list = policy::recommend(Some(&m), &ask, &Customer::default(), &mut Shop::default(), &mut Scores::default(), &mut Stats::default());
    assert!(ids(&list)[..4].iter().any(|x| x.starts_with("phone-")), "{list:?}");
}

#[test]
fn a_rated_item_counts_as_owned() {
    let m = shop_model();
    let history = History { events: vec![past("shoe-10", "rating", MONDAY - 48 * HOUR), past("charger-8", "rating", MONDAY - 48 * HOUR)], purchases: None };
    let mut shop = Shop { category_now: [("charger-8".to_string(), "chargers".to_string())].into(), ..Default::default() };
    let cust = Customer::new(Profile::default(), history, Some(&m), &settings(), &mut shop);
    assert_eq!(cust.bought["shoe-10"], (false, false));
    let got = recommend(Some(&m), &cust, &ctx(json!({"max_per_category": 0})), 14, MONDAY, &mut shop);
    assert!(!ids(&got).contains(&"shoe-10"), "a rated pair of shoes is not offered again: {got:?}");
    assert!(ids(&got).contains(&"charger-8"), "a rated charger is (chargers are repeatable): {got:?}");
}

#[test]
fn a_reason_names_an_anchor_only_when_the_two_are_linked() {
    let mut m = shop_model();
    // ALS alone, with factors that put everything near the phones (so raw arithmetic would
    // name the phone for shoes too)
    let n = m.cat.len();
    let f = 4;
    let item: Vec<f32> = (0..n).flat_map(|i| [1.0, 0.2 * (i % 3) as f32, 0.1 * (i % 5) as f32, 0.05 * i as f32]).collect();
    m.als = Some(Als::new(f, item, vec![true; n], 0.05, 2.0));
    m.weights = [0.0, 0.0, 0.0, 1.0];
    let history = History { events: vec![past("phone-2", "purchase", MONDAY - 2 * HOUR)], purchases: None };
    let mut shop = Shop::default();
    let cust = Customer::new(Profile::default(), history, Some(&m), &settings(), &mut shop);
    for h in [3, 11, 19] {
        let list = recommend(Some(&m), &cust, &ctx(json!({"max_per_category": 0})), 12, MONDAY + h * HOUR, &mut shop);
        assert_eq!(list.len(), 12);
        for s in &list {
            let i = m.cat.index.get(&s.item_id).copied().unwrap();
            if s.reason.contains("PHONE-2") {
                assert!(super::reasons::linked(&m, 2, i), "hour {h}: {} names the phone: {}", s.item_id, s.reason);
            }
        }
        let shoe = list.iter().find(|s| s.item_id.starts_with("shoe-")).unwrap();
        assert_eq!(shoe.reason, "picked for you from your order history", "hour {h}");
        let case = list.iter().find(|s| s.item_id == "case-4").unwrap();
        assert_eq!(case.reason, "because you bought PHONE-2", "hour {h}: a case is bought with phones");
    }
}

#[test]
fn a_popular_add_on_of_the_cart_says_bought_together_at_every_hour() {
    let m = shop_model();
    let (s, t) = (settings(), Tuning::default());
    let c = ctx(json!({"cart": ["phone-2"], "placement": "checkout"}));
    // popularity weighs far more than co-occurrence here: the case is picked for its popularity
    let placement = Placement { multipliers: [20.0, 0.2, 0.0, 0.0], session_boost: 1.0, complements_first: true, alternatives: false, demand: 0.0 };
    for h in 0..24 {
        let ask = Ask { customer_id: None, k: 4, ctx: &c, now_ms: MONDAY + h * HOUR, placement, settings: &s, tuning: &t };
        let list = policy::recommend(Some(&m), &ask, &Customer::default(), &mut Shop::default(), &mut Scores::default(), &mut Stats::default());
        let case = list.iter().find(|x| x.item_id == "case-4").unwrap();
        assert_eq!(case.reason, "bought together with PHONE-2", "hour {h}: {list:?}");
        let shoe = list.iter().find(|x| x.item_id.starts_with("shoe-")).unwrap();
        assert!(shoe.reason.starts_with("popular in shoes"), "hour {h}: {list:?}");
    }
}

#[test]
fn what_the_customer_viewed_and_does_not_own_comes_after_everything_new_to_them() {
    let m = shop_model();
    // viewed a best-selling phone and a shoe yesterday, bought nothing
    let history = History { events: vec![past("phone-2", "view", MONDAY - 20 * HOUR), past("shoe-10", "view", MONDAY - 20 * HOUR)], purchases: None };
    let mut shop = Shop::default();
    let cust = Customer::new(Profile::default(), history, Some(&m), &settings(), &mut shop);
    for h in 0..24 {
        let now = MONDAY + h * HOUR;
        let got = recommend(Some(&m), &cust, &ctx(json!({})), 5, now, &mut shop);
        assert!(!ids(&got).contains(&"phone-2") && !ids(&got).contains(&"shoe-10"), "hour {h}: {got:?}");
        // a list that needs them ends with them (after the second variant of phone-0, the
        // last of everything new to them)
        let all = recommend(Some(&m), &cust, &ctx(json!({})), 14, now, &mut shop);
        assert_eq!(all.len(), 14, "hour {h}: {all:?}");
        let tail: HashSet<&str> = ids(&all)[12..].iter().copied().collect();
        assert_eq!(tail, ["phone-2", "shoe-10"].into(), "hour {h}: {all:?}");
        // seen_last off: the viewed phone ranks as it scores
        let off = recommend(Some(&m), &cust, &ctx(json!({"seen_last": false})), 5, now, &mut shop);
        assert!(ids(&off).contains(&"phone-2"), "hour {h}: {off:?}");
    }
}

#[test]
fn the_diversity_penalty_spreads_the_list_over_categories_and_never_leaves_it_short() {
    let m = shop_model();
    let cust = Customer::default();
    let now = MONDAY + 10 * HOUR;
    let cats = |list: &[Served]| -> Vec<String> { list.iter().map(|s| m.cat.category_name(*m.cat.index.get(&s.item_id).unwrap()).to_string()).collect() };
    // no penalty: the best sellers as they rank (phones, then shoes)
    let flat = recommend(Some(&m), &cust, &ctx(json!({"diversity_penalty": 0})), 4, now, &mut Shop::default());
    assert_eq!(cats(&flat), ["phones", "phones", "shoes", "shoes"], "{flat:?}");
    // a large penalty: one of each category first, best sellers first
    let spread = recommend(Some(&m), &cust, &ctx(json!({"diversity_penalty": 100})), 4, now, &mut Shop::default());
    let distinct: HashSet<String> = cats(&spread).into_iter().collect();
    assert_eq!(distinct.len(), 4, "{spread:?}");
    assert_eq!(spread[0].item_id, "phone-0");
    // the default penalty (2 places) interleaves the two that outsell the rest by far: the
    // second phone (place 2, + 2) after the first shoe (place 3)
    let default = recommend(Some(&m), &cust, &ctx(json!({})), 4, now, &mut Shop::default());
    assert_eq!(cats(&default), ["phones", "shoes", "phones", "shoes"], "{default:?}");
    let all = recommend(Some(&m), &cust, &ctx(json!({"diversity_penalty": 100})), 13, now, &mut Shop::default());
    assert_eq!(all.len(), 13, "a penalty is not a cap: {all:?}");
}

#[test]
fn an_abandoned_cart_page_offers_alternatives_to_the_cart_items_after_what_goes_with_them() {
    let m = shop_model();
    let (settings, tuning) = (settings(), Tuning::default());
    let cart_page = Placement { multipliers: [1.0, 0.5, 3.0, 1.0], session_boost: 3.0, complements_first: true, alternatives: true, demand: 0.0 };
    let c = ctx(json!({"cart": ["phone-2"]}));
    for h in 0..24 {
        let now = MONDAY + h * HOUR;
        let serve = |placement: Placement| {
            let ask = Ask { customer_id: Some("c1"), k: 12, ctx: &c, now_ms: now, placement, settings: &settings, tuning: &tuning };
            policy::recommend(Some(&m), &ask, &Customer::default(), &mut Shop::default(), &mut Scores::default(), &mut Stats::default())
        };
        let list = serve(cart_page);
        // cases, chargers and shoes first; then the other phones, each "an alternative to" the one in the cart
        let first_phone = list.iter().position(|s| s.item_id.starts_with("phone-")).unwrap();
        assert!(list[..first_phone].len() >= 8 && list[first_phone..].iter().all(|s| s.item_id.starts_with("phone-")), "hour {h}: {list:?}");
        assert!(list[first_phone..].iter().all(|s| s.reason == "an alternative to PHONE-2 in your cart"), "hour {h}: {list:?}");
        assert!(list[..first_phone].iter().all(|s| !s.reason.starts_with("an alternative")), "hour {h}: {list:?}");
        // checkout fills with the same phones, but does not call them alternatives
        let at_checkout = serve(checkout());
        assert!(at_checkout.iter().all(|s| !s.reason.starts_with("an alternative")), "hour {h}: {at_checkout:?}");
    }
}

/// Demand-aware ranking at checkout, every hour of a week: case-4 (the cart's best add-on) sells
/// 10 a day and has 20 left, two days of cover, fewer than the three days an order takes to
/// arrive; case-5 sells 5 a day with plenty left. With the placement's `demand` weight case-4
/// goes below the other add-ons and case-5 comes first; without it (or without a forecast) the
/// list is as before and no stock level is read.
#[test]
fn a_demand_weight_pushes_down_what_sells_out_before_delivery_and_lifts_demand_with_cover() {
    let mut m = shop_model();
    let n = m.cat.len();
    let mut rows: Vec<(u32, [f32; 7])> = (0..n as u32).map(|i| (i, [1.0; 7])).collect();
    rows[4].1 = [10.0; 7];
    rows[5].1 = [5.0; 7];
    let forecast = Demand::from_rows(n, rows);
    let (s, t) = (settings(), Tuning::default());
    let c = ctx(json!({"cart": ["phone-2"], "placement": "checkout"}));
    let shop = || Shop { units: [("case-4".to_string(), 20.0), ("case-5".to_string(), 1000.0)].into_iter().collect(), ..Default::default() };
    for h in 0..24 * 7 {
        let now = MONDAY + h * HOUR;
        let run = |m: &Model, weight: f32| {
            let placement = Placement { demand: weight, ..checkout() };
            let ask = Ask { customer_id: None, k: 6, ctx: &c, now_ms: now, placement, settings: &s, tuning: &t };
            let mut live = shop();
            let list = policy::recommend(Some(m), &ask, &Customer::default(), &mut live, &mut Scores::default(), &mut Stats::default());
            (ids(&list).iter().map(|x| x.to_string()).collect::<Vec<_>>(), live.asked_available)
        };
        let (plain, asked) = run(&m, 0.0);
        assert_eq!(&plain[..2], ["case-4", "charger-8"], "hour {h}: {plain:?}");
        assert_eq!(asked, 0, "hour {h}: no stock level read without the weight");
        let (no_forecast, asked) = run(&m, 1.0);
        assert_eq!(no_forecast, plain, "hour {h}: a model without a forecast serves as before");
        assert_eq!(asked, 0);
        m.demand = Some(forecast.clone());
        let (aware, asked) = run(&m, 1.0);
        m.demand = None;
        assert!(asked > 0, "hour {h}");
        assert_eq!(aware[0], "case-5", "hour {h}: {aware:?}");
        let at = |id: &str, l: &[String]| l.iter().position(|x| x == id).unwrap_or(usize::MAX);
        assert!(at("case-4", &aware) > at("charger-8", &aware) && at("case-4", &aware) > at("case-4", &plain), "hour {h}: {aware:?}");
        assert_eq!(aware.len(), 6);
    }
}

/// The shop's model read back from its image (what a backend attaching the shared copy serves).
fn from_image(m: &Model) -> Model {
    let w = m.image();
    assert_eq!(w.len(), m.bytes());
    let img = std::sync::Arc::new(w.into_image());
    Model::read(&mut img.reader().unwrap()).unwrap()
}

#[test]
fn the_shared_image_serves_the_same_lists_every_hour_of_the_week() {
    let mut m = shop_model();
    m.segments = HashMap::from([("vip".to_string(), vec![(3u32, 2.0f32), (11, 1.0)])]).into();
    m.demand = Some(Demand::from_rows(m.cat.len(), [(2u32, [1.0f32; 7]), (5, [0.5; 7])]));
    let s = from_image(&m);
    assert!(s.own_bytes() < 64, "a shared model holds no copy of its data: {} bytes", s.own_bytes());
    assert!(s.cat.index.get("phone-2").is_some() && s.cat.index.get("nope").is_none());
    assert_eq!(s.segments.get("vip"), Some(&[(3u32, 2.0f32), (11, 1.0)][..]));
    assert_eq!(
        (0..m.cat.len()).map(|i| m.cat.facts.get(i).map(|f| f.size)).collect::<Vec<_>>(),
        (0..s.cat.len()).map(|i| s.cat.facts.get(i).map(|f| f.size)).collect::<Vec<_>>()
    );
    let cust = Customer { history: vec![past("shoe-10", "view", MONDAY - HOUR), past("case-4", "purchase", MONDAY - 30 * HOUR)], ..Default::default() };
    for c in [json!({}), json!({"cart": ["phone-2"], "placement": "checkout"}), json!({"category": "shoes"})] {
        let c = ctx(c);
        for h in (0..24 * 7).step_by(5) {
            let now = MONDAY + h * HOUR;
            let (a, b) = (recommend(Some(&m), &cust, &c, 6, now, &mut Shop::default()), recommend(Some(&s), &cust, &c, 6, now, &mut Shop::default()));
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "hour {h}");
        }
    }
}

#[test]
fn a_damaged_image_is_refused_whole() {
    let m = shop_model();
    let w = m.image();
    let img = std::sync::Arc::new(w.into_image());
    let (ptr, len) = (img.ptr(), img.len());
    // every cut short of the whole image is an error, never a partial model
    for cut in (0..len).step_by(8) {
        // SAFETY: a prefix of a live image
        let r = unsafe { flat::Reader::new(ptr, cut, img.clone()) };
        assert!(r.and_then(|mut r| Model::read(&mut r)).is_err(), "cut at {cut} of {len}");
    }
    // one byte past the image's end is not a model either
    let mut w = m.image();
    w.one(0u8);
    let img = std::sync::Arc::new(w.into_image());
    assert_eq!(Model::read(&mut img.reader().unwrap()).unwrap_err().kind, crate::ErrorKind::DataCorrupted);
}
