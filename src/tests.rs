//! Contracts of the SQL functions inside a real backend (`cargo pgrx test`).
// test code: a failed step stops the test where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn fixture(name: &str) -> String {
        match name {
            "shopify" => include_str!("../engine/tests/fixtures/shopify.json"),
            "woocommerce" => include_str!("../engine/tests/fixtures/woocommerce.json"),
            "amazon" => include_str!("../engine/tests/fixtures/amazon.json"),
            "pos" => include_str!("../engine/tests/fixtures/pos.json"),
            "web" => include_str!("../engine/tests/fixtures/web.json"),
            "mobile" => include_str!("../engine/tests/fixtures/mobile.json"),
            _ => unreachable!(),
        }
        .to_string()
    }

    fn one<T: FromDatum + IntoDatum>(sql: &str) -> T {
        Spi::get_one::<T>(sql).expect("query failed").expect("NULL result")
    }

    fn q(s: &str) -> String {
        format!("'{}'::jsonb", s.replace('\'', "''"))
    }

    #[pg_test]
    fn every_builtin_channel_normalizes_its_fixture() {
        for (channel, order_id, total) in [
            ("shopify", "shopify:450789469", 60894i64),
            ("woocommerce", "woocommerce:727", 2935),
            ("amazon", "amazon:902-3159896-1390916", 4980),
            ("pos", "pos:BER-01:R-000123", 8497),
            ("web", "web:W-10001", 88451),
            ("mobile", "mobile:M-5521", 6295),
        ] {
            let sql = format!("SELECT reco.normalize_order('{channel}', {})", q(&fixture(channel)));
            let got: pgrx::JsonB = one(&sql);
            assert_eq!(got.0["order_id"], serde_json::json!(order_id), "{channel}");
            assert_eq!(got.0["total_minor"], serde_json::json!(total), "{channel}");
        }
    }

    #[pg_test]
    fn volatility_is_declared_honestly() {
        for (f, v) in [
            ("normalize_order", "i"),
            ("standardize_timestamp", "i"),
            ("standardize_money", "i"),
            ("standardize_size", "i"),
            ("standardize_color", "i"),
            ("normalize_event", "s"),
            ("channel_mapping", "s"),
            ("ingest_order", "v"),
            ("ingest_orders", "v"),
            ("record_event", "v"),
            ("ingest_events", "v"),
            ("resolve_preferences", "s"),
            ("capture_preference", "v"),
            ("capture_preferences", "v"),
            ("set_preference", "v"),
            ("revoke_preference", "v"),
            ("forget_customer", "v"),
        ] {
            let got: String =
                one(&format!("SELECT string_agg(DISTINCT provolatile::text, '') FROM pg_proc WHERE proname = '{f}' AND pronamespace = 'reco'::regnamespace"));
            assert_eq!(got, v, "{f}");
        }
    }

    #[pg_test]
    fn ingest_is_idempotent_and_updates_on_change() {
        let web = fixture("web");
        for _ in 0..3 {
            let id: String = one(&format!("SELECT reco.ingest_order('web', {})", q(&web)));
            assert_eq!(id, "web:W-10001");
        }
        assert_eq!(one::<i64>("SELECT count(*) FROM reco.orders"), 1);
        assert_eq!(one::<i64>("SELECT count(*) FROM reco.order_lines"), 2);
        assert_eq!(one::<i64>("SELECT count(*) FROM reco.events WHERE kind = 'purchase'"), 2);
        let updated_before: TimestampWithTimeZone = one("SELECT updated_at FROM reco.orders");
        // the replay did not touch the row
        assert_eq!(one::<TimestampWithTimeZone>("SELECT updated_at FROM reco.orders"), updated_before);
        // a changed payload (one line dropped, status cancelled) replaces lines and purchase events
        let mut v: serde_json::Value = serde_json::from_str(&web).unwrap();
        v["cart"]["items"].as_array_mut().unwrap().pop();
        v["status"] = serde_json::json!("cancelled");
        let r: i64 = one(&format!("SELECT updated FROM reco.ingest_orders('web', {})", q(&v.to_string())));
        assert_eq!(r, 1);
        assert_eq!(one::<i64>("SELECT count(*) FROM reco.order_lines"), 1);
        assert_eq!(one::<String>("SELECT status FROM reco.orders"), "cancelled");
        assert_eq!(one::<i64>("SELECT count(*) FROM reco.events WHERE kind = 'purchase'"), 0);
    }

    #[pg_test]
    fn batch_keeps_good_rows_and_dead_letters_bad_ones() {
        let web = fixture("web");
        let mut dup: serde_json::Value = serde_json::from_str(&web).unwrap();
        dup["status"] = serde_json::json!("shipped");
        let batch =
            format!("jsonb_build_array({}, {}, '{{\"id\": \"x\"}}'::jsonb, '\"junk\"'::jsonb, {})", q(&web), q(&fixture("mobile")), q(&dup.to_string()));
        let counts: String = one(&format!("SELECT concat_ws(',', received, inserted, updated, unchanged, failed) FROM reco.ingest_orders('web', {batch})"));
        assert_eq!(counts, "5,1,0,1,3"); // received, inserted, updated, unchanged (superseded), failed
                                         // the later payload for the same order won
        assert_eq!(one::<String>("SELECT status FROM reco.orders"), "shipped");
        assert_eq!(one::<i64>("SELECT count(*) FROM reco.ingest_errors WHERE channel = 'web' AND entity = 'order'"), 3);
        assert_eq!(one::<String>("SELECT json_path FROM reco.ingest_errors WHERE payload = '{\"id\": \"x\"}'"), "$.customer_id");
        assert_eq!(one::<String>("SELECT sqlstate::text FROM reco.ingest_errors WHERE payload = '\"junk\"'"), "22023");
    }

    #[pg_test]
    fn custom_channel_by_mapping_rows() {
        Spi::run(
            "INSERT INTO reco.channel_mappings (channel, field, path, value, transform, zone) VALUES
               ('kiosk', 'external_id', '$.txn', NULL, NULL, NULL),
               ('kiosk', 'customer_id', '$.member', NULL, 'upper', NULL),
               ('kiosk', 'placed_at', '$.when', NULL, NULL, 'Asia/Tokyo'),
               ('kiosk', 'currency', NULL, '\"JPY\"', NULL, NULL),
               ('kiosk', 'lines', '$.basket', NULL, NULL, NULL),
               ('kiosk', 'line.item_id', '$.code', NULL, NULL, NULL),
               ('kiosk', 'line.qty', '$.n', NULL, NULL, NULL),
               ('kiosk', 'line.unit_price', '$.yen', NULL, 'minor', NULL)",
        )
        .unwrap();
        let id: String = one(
            "SELECT reco.ingest_order('kiosk', '{\"txn\": 9, \"member\": \"m7\", \"when\": \"2024-05-01 09:00:00\", \"basket\": [{\"code\": \"TEA\", \"n\": 2, \"yen\": 450}]}')",
        );
        assert_eq!(id, "kiosk:9");
        assert_eq!(one::<String>("SELECT customer_id FROM reco.orders"), "M7");
        assert_eq!(one::<String>("SELECT placed_at::text FROM reco.orders"), "2024-05-01 00:00:00+00");
        assert_eq!(one::<i64>("SELECT total_minor FROM reco.orders"), 900);
        // the immutable form takes the same mapping explicitly
        let j: pgrx::JsonB = one("SELECT reco.normalize_order('kiosk', '{\"txn\": 1, \"member\": \"a\", \"when\": \"2024-05-01\", \"basket\": [{\"code\": \"T\", \"n\": 1, \"yen\": 1}]}', reco.channel_mapping('kiosk'))");
        assert_eq!(j.0["currency"], serde_json::json!("JPY"));
    }

    #[pg_test(error = "mapping field \"custmer_id\" is not a canonical field")]
    fn mapping_rows_are_validated_on_insert() {
        Spi::run("INSERT INTO reco.channel_mappings (channel, field, path) VALUES ('k', 'custmer_id', '$.x')").unwrap();
    }

    #[pg_test(error = "shopify order: quantity -1 is not positive (at $.line_items[0].quantity)")]
    fn negative_quantity_is_an_error_naming_the_path() {
        let bad = fixture("shopify").replacen("\"quantity\": 1", "\"quantity\": -1", 1);
        Spi::run(&format!("SELECT reco.ingest_order('shopify', {})", q(&bad))).unwrap();
    }

    #[pg_test(error = "ebay order: channel \"ebay\" is not known")]
    fn unknown_channel() {
        Spi::run("SELECT reco.normalize_order('ebay', '{}')").unwrap();
    }

    #[pg_test]
    fn record_event_creates_the_customer_and_checks_kind() {
        let id: i64 = one("SELECT reco.record_event('c1', 'A', 'view', 3.5, '2024-01-01T00:00:00Z', '{\"rec_id\": \"r1\"}', 's1', 'web', 'iPad')");
        assert!(id > 0);
        assert_eq!(one::<i64>("SELECT count(*) FROM reco.customers WHERE customer_id = 'c1'"), 1);
        assert_eq!(one::<String>("SELECT device FROM reco.events"), "tablet");
        let (ins, failed) = Spi::get_two::<i64, i64>(
            "SELECT inserted, failed FROM reco.ingest_events('web', '[{\"event\": \"add_to_cart\", \"user_id\": \"c2\", \"sku\": \"B\"}, {\"event\": \"teleport\", \"user_id\": \"c2\"}]')",
        )
        .unwrap();
        assert_eq!((ins, failed), (Some(1), Some(1)));
    }

    #[pg_test]
    fn standardizers() {
        assert_eq!(one::<i64>("SELECT reco.standardize_money('1.250', 'KWD')"), 1250);
        assert_eq!(one::<String>("SELECT reco.standardize_timestamp('2024-07-15 18:30:05', 'Europe/Berlin')::text"), "2024-07-15 16:30:05+00");
        assert_eq!(one::<String>("SELECT reco.standardize_size('xx-large')"), "XXL");
        assert_eq!(one::<String>("SELECT reco.standardize_color('charcoal')"), "grey");
        assert_eq!(one::<String>("SELECT reco.standardize_country('Deutschland')"), "DE");
        assert_eq!(one::<String>("SELECT reco.money_amount(1999, 'usd')::text"), "19.99");
        assert_eq!(one::<i32>("SELECT reco.currency_exponent('JPY')"), 0);
    }

    #[pg_test]
    fn vectors_are_written_and_read_as_pgvector_varlenas() {
        let v = [0.5f32, -1.25, 3.0];
        let t = crate::vector::vector_type();
        // written by us, read by pgvector
        // SAFETY: a vector varlena and pgvector's type oid
        let text: String =
            Spi::get_one_with_args("SELECT ($1::vector)::text", &[unsafe { pgrx::datum::DatumWithOid::new(crate::vector::to_datum(&v), t.oid) }])
                .unwrap()
                .unwrap();
        assert_eq!(text, "[0.5,-1.25,3]");
        // written by pgvector, read by us
        Spi::connect(|c| {
            let r = c.select("SELECT '[1,2.5,-4]'::vector", None, &[]).unwrap().first();
            let d = r.get_datum_by_ordinal(1).unwrap().unwrap();
            // SAFETY: a non-null datum of type vector
            assert_eq!(unsafe { crate::vector::from_datum(d) }, vec![1.0, 2.5, -4.0]);
        });
    }

    #[pg_test]
    fn a_column_that_is_not_a_vector_is_not_read_as_one() {
        Spi::connect(|c| {
            let r = c.select("SELECT 'not a vector'::text, '[1,2]'::vector", None, &[]).unwrap().first();
            assert!(r.get::<crate::vector::Vector>(1).is_err(), "text read as a vector");
            assert_eq!(r.get::<crate::vector::Vector>(2).unwrap().unwrap().0, vec![1.0, 2.0]);
        });
    }

    #[pg_test]
    fn event_weight_defaults_match_the_engine_copy() {
        // offline tools (engine/examples) use the engine's copy of the view's defaults
        for (kind, weight, _) in reco_engine::models::dataset::DEFAULT_WEIGHTS {
            assert_eq!(one::<f64>(&format!("SELECT default_weight FROM reco.event_weights WHERE kind = '{kind}'")), weight, "{kind}");
        }
        assert_eq!(one::<i64>("SELECT count(*) FROM reco.event_weights"), reco_engine::models::dataset::DEFAULT_WEIGHTS.len() as i64);
    }

    #[pg_test]
    fn model_kinds_in_sql_match_the_engine_list() {
        // reco.models' CHECK and reco.schedule_training's check are SQL; the list is the engine's
        let names: Vec<&str> = reco_engine::models::pipeline::KINDS.iter().map(|k| k.1).collect();
        let check: String = one("SELECT pg_get_constraintdef(oid) FROM pg_constraint
              WHERE conrelid = 'reco.models'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%kind%'");
        for n in &names {
            assert!(check.contains(&format!("'{n}'::text")), "{n} missing from {check}");
        }
        assert_eq!(check.matches("::text").count(), names.len(), "{check}");
        let src: String = one("SELECT prosrc FROM pg_proc WHERE proname = 'schedule_training'");
        let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
        assert!(src.contains(&format!("kind NOT IN ({})", quoted.join(", "))), "schedule_training's list differs");
        assert!(src.contains(&format!("HINT = 'kinds: {}'", names.join(", "))), "schedule_training's hint differs");
    }

    #[pg_test]
    fn train_and_deploy_in_one_transaction() {
        Spi::run("SELECT reco.load_demo('small')").unwrap();
        let id: i64 = one("SELECT reco.train('cooccurrence', '{\"evaluate\": false}')");
        assert_eq!(one::<String>(&format!("SELECT status FROM reco.models WHERE model_id = {id}")), "ready");
        assert_eq!(one::<i64>(&format!("SELECT reco.deploy({id}::bigint)")), id);
        assert!(one::<i64>(&format!("SELECT count(*) FROM reco.item_neighbors WHERE model_id = {id}")) > 100);
    }

    #[pg_test]
    fn the_raw_reader_reads_inline_compressed_and_out_of_line_values_and_nulls() {
        // a short text (1-byte header), a long compressible one (compressed inline), a long
        // incompressible one (stored out of line in the TOAST table), NULLs, by-value columns and
        // a text array; more rows than one batch, so batches are fetched and freed in turn
        Spi::run(
            "CREATE TEMP TABLE raw_rows AS
             SELECT g AS n, 'id-' || g AS short, repeat('ab', 5000) AS packed,
                    (SELECT string_agg(md5(g::text || x::text), '') FROM generate_series(1, 300) x) AS external,
                    CASE WHEN g % 2 = 0 THEN NULL ELSE g * 0.5 END::float8 AS half,
                    ARRAY['t' || g, NULL] AS tags
               FROM generate_series(1, 25) g",
        )
        .unwrap();
        let stored: String = one("SELECT pg_column_compression(packed) FROM raw_rows LIMIT 1");
        assert_eq!(stored, "pglz", "the long compressible value is stored compressed");
        let mut rows = 0;
        Spi::connect(|c| {
            crate::api::scan_raw(c, "SELECT n, short, packed, external, half, tags, NULL::text FROM raw_rows ORDER BY n", &[], 10, |r| {
                rows += 1;
                let n: i32 = r.value(1).unwrap();
                assert_eq!(r.text(2), Some(format!("id-{n}").as_str()));
                assert_eq!(r.text(3).map(str::len), Some(10_000));
                assert!(r.text(3).unwrap().starts_with("abab"));
                assert_eq!(r.text(4).map(str::len), Some(300 * 32), "the out-of-line value, fetched whole");
                assert_eq!(r.value::<f64>(5), (n % 2 == 1).then(|| f64::from(n) * 0.5));
                assert_eq!(r.value::<Vec<Option<String>>>(6), Some(vec![Some(format!("t{n}")), None]));
                assert_eq!(r.text(7), None);
                assert_eq!(r.text(0), None, "columns are numbered from 1");
                assert_eq!(r.text(99), None);
            });
        });
        assert_eq!(rows, 25);
    }
}
