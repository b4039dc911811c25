//! The experiment report as a page: `reco.experiment_report(name, format => 'html')` rendered
//! by headless Chromium (Debian's `chromium`, installed by scripts/bootstrap). The test reads
//! what the browser shows: the DOM after rendering (arms, verdicts, one interval per arm and
//! chart) and a screenshot, whose pixels must hold the verdict colours of the intervals (a
//! winning arm green, control grey) and, for a broken split, the mismatch banner.
// test code: a failed step stops the test where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use pg_reco_integration::{connect, fresh_db};
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> PathBuf {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("headless Chromium is missing: scripts/bootstrap installs Debian's chromium package");
}

/// Runs headless Chromium on a file with `extra` arguments; returns stdout.
fn browse(dir: &Path, page: &Path, extra: &[&str]) -> String {
    let profile = dir.join("profile");
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .env("HOME", dir)
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The screenshot's pixels as RGB triples.
fn screenshot(dir: &Path, page: &Path) -> Vec<[u8; 3]> {
    let png_path = dir.join("shot.png");
    let _ = std::fs::remove_file(&png_path);
    browse(dir, page, &[&format!("--screenshot={}", png_path.display()), "--window-size=1200,2400"]);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png_path).expect("a screenshot was written")));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    assert!(step >= 3, "{:?}", info.color_type);
    buf[..info.buffer_size()].chunks(step).map(|p| [p[0], p[1], p[2]]).collect()
}

fn count(px: &[[u8; 3]], rgb: [u8; 3]) -> usize {
    px.iter().filter(|p| p.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 6)).count()
}

#[test]
fn the_html_report_renders_its_intervals_and_verdicts_in_chromium() {
    let dsn = fresh_db("report_html");
    let mut c = connect(&dsn);
    // three arms, 3 000 lists each: b clicks 14% against control's 10%, c the same as control
    c.batch_execute(
        "INSERT INTO reco.placement_weights (placement, popularity, description) VALUES ('checkout_b', 2, 'arm'), ('checkout_c', 3, 'arm');
         INSERT INTO reco.experiments (name, surface, arms, salt, starts_at, planned_units) VALUES ('checkout_weights', 'checkout',
             '[{\"name\": \"control\", \"weight\": 1}, {\"name\": \"b\", \"weight\": 1, \"placement\": \"checkout_b\"},
               {\"name\": \"c\", \"weight\": 1, \"placement\": \"checkout_c\"}]', 'salt-html', '2026-01-01', 6000);
         INSERT INTO reco.recommendations (customer_id, placement, items, scores, context, shown_at)
         SELECT 'u' || i, 'checkout', '{x}', '{1}',
                jsonb_build_object('experiment', 'checkout_weights', 'arm', reco.experiment_arm('checkout_weights', 'u' || i)), '2026-03-01'
         FROM generate_series(1, 9000) i;
         INSERT INTO reco.events (customer_id, item_id, kind, occurred_at, context)
         SELECT r.customer_id, 'x', 'click', '2026-03-01 01:00+00', jsonb_build_object('rec_id', r.rec_id)
         FROM reco.recommendations r
         WHERE (r.rec_id % 100) < CASE r.context ->> 'arm' WHEN 'b' THEN 14 ELSE 10 END;",
    )
    .unwrap();
    let page: String = c.query_one("SELECT reco.experiment_report('checkout_weights', format => 'html')", &[]).unwrap().get(0);
    let dir = std::env::temp_dir().join(format!("reco_report_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("report.html");
    std::fs::write(&file, &page).unwrap();

    // what the browser built: every arm, the verdicts, one interval per arm and chart
    let dom = browse(&dir, &file, &["--dump-dom"]);
    assert!(dom.contains("Experiment <span class=\"name\">checkout_weights</span>"), "{dom}");
    let clicks = dom.split("<section").find(|s| s.contains("data-metric=\"click\"")).expect("a click section");
    assert_eq!(clicks.matches("<svg").count(), 2, "rates and differences");
    assert_eq!(clicks.matches("class=\"interval").count(), 3 + 2, "three rates, two differences");
    assert!(clicks.contains("<td class=\"verdict better\">better</td>"), "b wins: {clicks}");
    assert!(clicks.contains("<td class=\"verdict neutral\">no difference detected</td>"), "c ties: {clicks}");
    assert!(!dom.contains("class=\"banner srm\""));

    // what it shows: the winning arm's intervals in green, control's in grey, the others blue
    let px = screenshot(&dir, &file);
    let (green, grey, blue) = (count(&px, [0x1e, 0x7b, 0x34]), count(&px, [0x7f, 0x8c, 0x8d]), count(&px, [0x2e, 0x6f, 0xb7]));
    assert!(green > 200 && grey > 200 && blue > 200, "green {green}, grey {grey}, blue {blue}");
    assert_eq!(count(&px, [0xfd, 0xe2, 0xe1]), 0, "no mismatch banner");

    // a broken split (a fifth of b's lists logged under control): the banner, and no verdict
    // (logged again: the report's tallies follow what is inserted, and the log is append-only)
    c.batch_execute(
        "TRUNCATE reco.recommendations, reco.events;
         INSERT INTO reco.recommendations (customer_id, placement, items, scores, context, shown_at)
         SELECT 'u' || i, 'checkout', '{x}', '{1}',
                jsonb_build_object('experiment', 'checkout_weights', 'arm', CASE WHEN a.arm = 'b' AND i % 5 = 0 THEN 'control' ELSE a.arm END),
                '2026-03-01'
         FROM generate_series(1, 9000) i, LATERAL (SELECT reco.experiment_arm('checkout_weights', 'u' || i) AS arm) a;
         INSERT INTO reco.events (customer_id, item_id, kind, occurred_at, context)
         SELECT r.customer_id, 'x', 'click', '2026-03-01 01:00+00', jsonb_build_object('rec_id', r.rec_id)
         FROM reco.recommendations r
         WHERE (r.rec_id % 100) < CASE r.context ->> 'arm' WHEN 'b' THEN 14 ELSE 10 END;",
    )
    .unwrap();
    let page: String = c.query_one("SELECT reco.experiment_report('checkout_weights', format => 'html')", &[]).unwrap().get(0);
    std::fs::write(&file, &page).unwrap();
    let dom = browse(&dir, &file, &["--dump-dom"]);
    assert!(dom.contains("class=\"banner srm\"") && !dom.contains("verdict better"), "{dom}");
    let px = screenshot(&dir, &file);
    assert!(count(&px, [0xfd, 0xe2, 0xe1]) > 5000, "the banner is on screen");
    let _ = std::fs::remove_dir_all(&dir);
}
