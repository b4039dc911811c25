//! SQLsmith (Debian's `sqlsmith`, a random query generator) against a database with the
//! extension, the demo data and a deployed model, as a login member of `reco_admin` (so every
//! `reco` function, table and view is within its reach, and no superuser-only one is; the
//! set-returning functions, which SQLsmith does not call, through scalar wrappers).
//!
//! From the server log of the run (`log_error_verbosity = verbose` for that database) it
//! records backend crashes ("terminated by signal"), XX000 errors and statements that ran well
//! past `statement_timeout`, and fails on a crash, on an overrun, or on an XX000 raised by
//! pg_reco (its LOCATION is a Rust file). XX000 errors that PostgreSQL itself raises for
//! SQLsmith's odd casts (`invalid INTERVAL typmod`, a location in a `.c` file) are listed, not
//! counted. Each finding is printed with the statement that found it, for a regression test.
//!
//! `make test` runs a short seeded pass (`FUZZ_QUERIES`, default 2 000; `FUZZ_SEED`, default
//! 42); `bench/fuzz.sh MINUTES` runs the same test for that long (`FUZZ_SECONDS`).
// test code: a failed step stops the test where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use pg_reco_integration::{as_user, connect, dsn, fresh_db, login_role};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DB: &str = "it_sqlsmith";
const ROLE: &str = "reco_fuzz";
/// statement_timeout of the fuzzing role; a statement that takes three times this has ignored it
const TIMEOUT_MS: u64 = 1_000;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The project cluster's log (scripts/cluster), or RECO_SERVER_LOG.
fn server_log() -> PathBuf {
    std::env::var("RECO_SERVER_LOG").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/pg.log"))
}

/// One log entry: its first line and the lines that continue it (tab-indented).
fn entries(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        match out.last_mut() {
            Some(last) if line.starts_with('\t') || !line.starts_with("20") => {
                last.push('\n');
                last.push_str(line);
            }
            _ => out.push(line.to_string()),
        }
    }
    out
}

/// "[pid] LEVEL:  text" → (pid, level, text)
fn parse(entry: &str) -> Option<(&str, &str, &str)> {
    let rest = &entry[entry.find(" [")? + 2..];
    let (pid, rest) = rest.split_once("] ")?;
    let (level, text) = rest.split_once(":  ")?;
    Some((pid, level, text))
}

#[derive(Debug, Default)]
struct Findings {
    crashes: Vec<String>,
    ours: Vec<String>,
    postgres: Vec<String>,
    overruns: Vec<String>,
}

fn scan(text: &str) -> Findings {
    let all = entries(text);
    let mut f = Findings::default();
    for (i, e) in all.iter().enumerate() {
        if e.contains("terminated by signal") {
            f.crashes.push(e.clone());
        }
        let Some((pid, level, text)) = parse(e) else { continue };
        if level == "LOG" && text.starts_with("duration: ") {
            let ms: f64 = text["duration: ".len()..].split(' ').next().and_then(|x| x.parse().ok()).unwrap_or(0.0);
            if ms > 3.0 * TIMEOUT_MS as f64 {
                f.overruns.push(e.clone());
            }
        }
        if level == "ERROR" && text.starts_with("XX000:") {
            // the LOCATION and STATEMENT among the lines that go with it (DETAIL, CONTEXT, ...)
            let (mut location, mut statement) = (String::new(), String::new());
            for (_, level, t) in all[i + 1..].iter().filter_map(|n| parse(n)).filter(|(p, _, _)| *p == pid) {
                match level {
                    "LOCATION" => location = t.to_string(),
                    "STATEMENT" => statement = t.to_string(),
                    "DETAIL" | "HINT" | "CONTEXT" | "QUERY" => {}
                    _ => break,
                }
            }
            let report = format!("{text}\n  at {location}\n  statement: {statement}");
            if location.contains(".rs:") {
                f.ours.push(report);
            } else {
                f.postgres.push(report);
            }
        }
    }
    f
}

#[test]
fn sqlsmith_finds_no_crash_no_internal_error_of_ours_and_no_statement_past_its_timeout() {
    let db = fresh_db(DB);
    let mut c = connect(&db);
    c.batch_execute(
        "SELECT reco.load_demo('small', 42);
         SELECT reco.deploy(reco.train('hybrid', '{\"tune\": false}'));",
    )
    .unwrap();
    // SQLsmith calls scalar functions only: each set-returning reco function gets a scalar
    // wrapper (its rows as one jsonb array) in schema fuzz, so recommend, complements,
    // similar_items, popular and the batch writers are reached with random arguments too
    c.batch_execute(
        "CREATE SCHEMA fuzz;
         DO $$
         DECLARE p record;
         BEGIN
             FOR p IN SELECT proname, pg_get_function_identity_arguments(oid) AS args, pronargs
                        FROM pg_proc WHERE pronamespace = 'reco'::regnamespace AND proretset LOOP
                 EXECUTE format('CREATE FUNCTION fuzz.%I(%s) RETURNS jsonb LANGUAGE sql AS $f$ SELECT jsonb_agg(to_jsonb(r)) FROM reco.%I(%s) r $f$',
                     p.proname, p.args, p.proname, (SELECT string_agg('$' || i, ', ') FROM generate_series(1, p.pronargs) i));
             END LOOP;
         END $$;",
    )
    .unwrap();
    login_role(ROLE, "reco_admin");
    c.batch_execute(&format!("GRANT USAGE ON SCHEMA fuzz TO {ROLE}")).unwrap();
    let mut admin = connect(&dsn("postgres"));
    admin
        .batch_execute(&format!(
            "ALTER ROLE {ROLE} IN DATABASE {DB} SET statement_timeout = '{TIMEOUT_MS}ms';
             ALTER DATABASE {DB} SET log_error_verbosity = 'verbose';
             ALTER DATABASE {DB} SET log_min_duration_statement = '{}ms';",
            3 * TIMEOUT_MS
        ))
        .unwrap();

    let log = server_log();
    let start = std::fs::metadata(&log).unwrap_or_else(|e| panic!("the server log {}: {e} (set RECO_SERVER_LOG)", log.display())).len();
    let seed: u64 = env_or("FUZZ_SEED", 42);
    let seconds: u64 = env_or("FUZZ_SECONDS", 0);
    let queries: u64 = env_or("FUZZ_QUERIES", 2_000);
    let mut cmd = Command::new("sqlsmith");
    cmd.arg(format!("--target={}", as_user(&dsn(DB), ROLE))).arg(format!("--seed={seed}")).arg("--exclude-catalog").arg("--verbose");
    if seconds == 0 {
        cmd.arg(format!("--max-queries={queries}"));
    }
    // its progress (a character per query) goes to a file: a pipe nobody reads would fill and stop it
    let progress = std::env::temp_dir().join(format!("pg_reco_sqlsmith_{}.txt", std::process::id()));
    let mut child =
        cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&progress).unwrap()).spawn().expect("sqlsmith (scripts/bootstrap installs Debian's package)");
    // a short pass is bounded too, in case a statement hangs
    let limit = Duration::from_secs(if seconds > 0 { seconds } else { 300 });
    let began = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if began.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.wait();
    let stderr = std::fs::read_to_string(&progress).unwrap_or_default();
    let _ = std::fs::remove_file(&progress);
    let ran = stderr.lines().rfind(|l| l.starts_with("queries: ")).unwrap_or("queries: ?").to_string();

    let mut file = std::fs::File::open(&log).unwrap();
    file.seek(SeekFrom::Start(start)).unwrap();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).unwrap();
    let f = scan(&String::from_utf8_lossy(&bytes));
    println!(
        "sqlsmith seed {seed}, {:.0} s, {ran}: {} crashes, {} XX000 of pg_reco, {} XX000 of PostgreSQL itself, {} statements past 3 × statement_timeout",
        began.elapsed().as_secs_f64(),
        f.crashes.len(),
        f.ours.len(),
        f.postgres.len(),
        f.overruns.len()
    );
    for p in &f.postgres {
        println!("PostgreSQL's own XX000 (not pg_reco's): {p}");
    }
    // the server is up, and still serves
    let mut after = connect(&dsn(DB));
    after.query("SELECT * FROM reco.popular(5)", &[]).unwrap();
    assert!(f.crashes.is_empty(), "backend crashes:\n{}", f.crashes.join("\n"));
    assert!(f.ours.is_empty(), "internal errors raised by pg_reco:\n{}", f.ours.join("\n\n"));
    assert!(f.overruns.is_empty(), "statements that ignored statement_timeout:\n{}", f.overruns.join("\n\n"));
    drop((c, after));
    admin.batch_execute(&format!("DROP DATABASE {DB} WITH (FORCE)")).unwrap();
}

#[test]
fn the_log_scan_finds_crashes_our_internal_errors_and_overruns() {
    let log = "2026-11-27 00:34:20.184 UTC [25060] ERROR:  XX000: argument 0 must not be null
2026-11-27 00:34:20.184 UTC [25060] CONTEXT:  SQL statement \"SELECT reco._check_mapping_row(NEW.channel)\"
2026-11-27 00:34:20.184 UTC [25060] LOCATION:  callconv.rs:276
2026-11-27 00:34:20.184 UTC [25060] STATEMENT:  insert into reco.channel_mappings values (
\tcast(null as text))
2026-11-27 00:34:49.946 UTC [25061] ERROR:  XX000: invalid INTERVAL typmod: 0x9
2026-11-27 00:34:49.946 UTC [25061] LOCATION:  intervaltypmodleastfield, timestamp.c:1225
2026-11-27 00:34:49.946 UTC [25061] STATEMENT:  select 1
2026-11-27 00:35:00.000 UTC [25062] LOG:  duration: 4012.5 ms  statement: select pg_sleep(4)
2026-11-27 00:35:00.100 UTC [25063] LOG:  duration: 2012.5 ms  statement: select pg_sleep(2)
2026-11-27 00:35:01.000 UTC [100] LOG:  server process (PID 25064) was terminated by signal 11: Segmentation fault
";
    let f = scan(log);
    assert_eq!(f.ours.len(), 1);
    assert!(f.ours[0].contains("callconv.rs") && f.ours[0].contains("channel_mappings"), "{}", f.ours[0]);
    assert_eq!(f.postgres.len(), 1);
    assert_eq!(f.overruns.len(), 1);
    assert_eq!(f.crashes.len(), 1);
}
