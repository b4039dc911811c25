//! Training against a live cluster: the registry row is visible while a training runs, the
//! deployed model keeps serving, a cancelled or killed training is recorded as failed, and
//! schedule_training creates a pg_cron job whose command trains and deploys.
// test code: a failed step stops the test where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use pg_reco_integration::{as_user, connect, demo_deployed, dsn, login_role};
use std::time::{Duration, Instant};

/// Waits for a model in status `training` and returns (model_id, backend_pid).
fn wait_training(c: &mut postgres::Client) -> (i64, i32) {
    let t = Instant::now();
    loop {
        if let Some(r) = c.query_opt("SELECT model_id, backend_pid FROM reco.models WHERE status = 'training'", &[]).unwrap() {
            return (r.get(0), r.get(1));
        }
        assert!(t.elapsed() < Duration::from_secs(30), "no training row appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `reco.train('hybrid', params)` on its own connection and thread (one training thread).
fn spawn_training(db: &str, params: &'static str) -> std::thread::JoinHandle<Result<i64, postgres::Error>> {
    let db = db.to_string();
    std::thread::spawn(move || {
        let mut b = connect(&db);
        b.batch_execute("SET reco.training_threads = 1")?;
        b.query_one("SELECT reco.train('hybrid', $1::text::jsonb)", &[&params]).map(|r| r.get::<_, i64>(0))
    })
}

fn deployed(c: &mut postgres::Client) -> i64 {
    c.query_one("SELECT model_id FROM reco.models WHERE status = 'deployed'", &[]).unwrap().get(0)
}

#[test]
fn a_running_training_is_visible_and_the_deployed_model_keeps_serving() {
    let (db, first) = demo_deployed("it_train_visible");
    let h = spawn_training(&db, r#"{"iterations": 30}"#);
    let mut a = connect(&db);
    let (id, _) = wait_training(&mut a);
    assert_eq!(deployed(&mut a), first, "the deployed model is untouched while another trains");
    let done = h.join().unwrap().unwrap();
    assert_eq!(done, id);
    let status: String = a.query_one("SELECT status FROM reco.models WHERE model_id = $1", &[&id]).unwrap().get(0);
    assert_eq!(status, "ready");
    assert_eq!(deployed(&mut a), first, "training does not deploy");
    assert_eq!(a.query_one("SELECT reco.deploy('best_score')", &[]).unwrap().get::<_, i64>(0), id);
}

#[test]
fn pg_cancel_backend_marks_the_training_failed() {
    let (db, first) = demo_deployed("it_train_cancel");
    let h = spawn_training(&db, r#"{"iterations": 60}"#);
    let mut a = connect(&db);
    let (id, pid) = wait_training(&mut a);
    std::thread::sleep(Duration::from_millis(200));
    assert!(a.query_one("SELECT pg_cancel_backend($1)", &[&pid]).unwrap().get::<_, bool>(0));
    let err = h.join().unwrap().unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");
    let r = a.query_one("SELECT status, error FROM reco.models WHERE model_id = $1", &[&id]).unwrap();
    assert_eq!(r.get::<_, String>(0), "failed");
    assert!(r.get::<_, String>(1).starts_with("57014: canceling statement due to user request"), "{:?}", r.get::<_, String>(1));
    assert_eq!(deployed(&mut a), first);
    let stored: i64 = a.query_one("SELECT count(*) FROM reco.item_vectors WHERE model_id = $1", &[&id]).unwrap().get(0);
    assert_eq!(stored, 0, "nothing of the failed training remains");
}

/// A thread's nice value and scheduling policy.
type Sched = (i64, i64);

/// The nice value and scheduling policy (0 normal, 5 idle) of each of a backend's threads named
/// `pg_reco train …`, and of the backend's own thread (from /proc: the 19th and 41st fields).
fn thread_nices(pid: i32) -> (Vec<Sched>, Option<Sched>) {
    let (mut pool, mut own) = (Vec::new(), None);
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        let (Some(Ok(nice)), Some(Ok(policy))) = (fields.get(16).map(|n| n.parse()), fields.get(38).map(|n| n.parse())) else { continue };
        if comm.starts_with("pg_reco train") {
            pool.push((nice, policy));
        } else if task.file_name().to_str() == Some(&pid.to_string()) {
            own = Some((nice, policy));
        }
    }
    (pool, own)
}

/// Each of a backend's threads (whether it is the backend's own, its name, its EEVDF slice in
/// ns) as /proc shows it: empty before Linux 6.12, whose /proc/…/sched has no se.slice.
fn thread_slices(pid: i32) -> Vec<(bool, String, i64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default().trim().to_string();
        let sched = std::fs::read_to_string(task.path().join("sched")).unwrap_or_default();
        let slice = sched.lines().find(|l| l.starts_with("se.slice")).and_then(|l| l.split(':').nth(1)).and_then(|v| v.trim().parse().ok());
        if let Some(slice) = slice {
            out.push((task.file_name().to_str() == Some(&pid.to_string()), comm, slice));
        }
    }
    out
}

#[test]
fn the_training_threads_run_at_reco_training_nice_and_the_backend_keeps_its_priority() {
    let (db, _) = demo_deployed("it_train_nice");
    // the backend's own EEVDF slice as it sees it, from /proc (Linux 6.12 on; None before)
    const OWN_SLICE: &str = r"SELECT substring(pg_read_file('/proc/self/sched'), 'se\.slice\s*:\s*(\d+)')::bigint";
    // 7: a nice value; 20: the idle scheduling class (SCHED_IDLE, policy 5) at the nice value 0
    for (setting, expected) in [(7, (7, 0)), (20, (0, 5))] {
        let h = {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut b = connect(&db);
                b.batch_execute(&format!("SET reco.training_threads = 2; SET reco.training_nice = {setting}"))?;
                let before: Option<i64> = b.query_one(OWN_SLICE, &[])?.get(0);
                let id = b.query_one("SELECT reco.train('hybrid', '{\"iterations\": 200}')", &[]).map(|r| r.get::<_, i64>(0))?;
                // the backend's slice is its own again once the training ends
                assert_eq!(b.query_one(OWN_SLICE, &[])?.get::<_, Option<i64>>(0), before, "the backend's slice after the training");
                Ok::<i64, postgres::Error>(id)
            })
        };
        let mut a = connect(&db);
        let (_, pid) = wait_training(&mut a);
        let t = Instant::now();
        // a thread is named as it starts and lowers itself a moment later (rayon's start handler):
        // once both are seen, give them a second to have done so
        let mut both_seen: Option<Instant> = None;
        let (pool, own) = loop {
            let (pool, own) = thread_nices(pid);
            if pool.len() == 2 {
                let since = *both_seen.get_or_insert_with(Instant::now);
                if pool.iter().all(|&n| n == expected) || since.elapsed() > Duration::from_secs(1) {
                    break (pool, own);
                }
            }
            assert!(!h.is_finished() && t.elapsed() < Duration::from_secs(60), "the training's two threads were never seen");
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(pool, [expected, expected], "each training thread at reco.training_nice = {setting}");
        assert_eq!(own, Some((0, 0)), "the backend's own thread keeps its priority and class");
        // while it yields, the training asks for the kernel's longest slice (100 ms) on its threads
        // (not in the idle class, which has none) and its backend: a serving backend, at the
        // default slice, then takes the CPU from them as soon as it wakes (Linux 6.12 on, where
        // /proc shows se.slice)
        let slices = thread_slices(pid);
        if !slices.is_empty() {
            let long = 100_000_000;
            for (own, comm, slice) in &slices {
                if *own || comm.starts_with("pg_reco train") && setting != 20 {
                    assert_eq!(*slice, long, "{comm}'s slice while training at reco.training_nice = {setting}");
                }
            }
        }
        // (a training in the idle class need not be waited for)
        if setting == 20 {
            a.query_one("SELECT pg_cancel_backend($1)", &[&pid]).unwrap();
        }
        let r = h.join().unwrap();
        assert!(r.is_ok() || setting == 20, "{r:?}");
    }
    // a non-superuser cannot change it (each value lowers only its own trainings, but the
    // setting is the DBA's, as reco.training_threads)
    login_role("it_nice_app", "reco_reader");
    let mut app = connect(&as_user(&db, "it_nice_app"));
    // (a call first loads the library, in case the cluster does not preload it)
    app.query_one("SELECT count(*) FROM reco.recommend('nobody', 1)", &[]).unwrap();
    let err = app.batch_execute("SET reco.training_nice = 0").unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
}

#[test]
fn a_killed_training_is_marked_failed_by_the_next_one() {
    let (db, first) = demo_deployed("it_train_kill");
    let h = spawn_training(&db, r#"{"iterations": 60}"#);
    let mut a = connect(&db);
    let (id, pid) = wait_training(&mut a);
    assert!(a.query_one("SELECT pg_terminate_backend($1)", &[&pid]).unwrap().get::<_, bool>(0));
    assert!(h.join().unwrap().is_err());
    // wait for the backend to be gone, then the next training reaps the orphan
    let t = Instant::now();
    while a.query_one("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", &[&pid]).unwrap().get::<_, i64>(0) > 0 {
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    a.query_one("SELECT reco.train('popularity', '{\"evaluate\": false}')", &[]).unwrap();
    let r = a.query_one("SELECT status, error FROM reco.models WHERE model_id = $1", &[&id]).unwrap();
    assert_eq!(r.get::<_, String>(0), "failed");
    assert!(r.get::<_, String>(1).contains("ended without finishing"), "{}", r.get::<_, String>(1));
    assert_eq!(deployed(&mut a), first);
}

#[test]
fn a_rolled_back_training_is_recorded_as_failed_by_the_next_one() {
    let (db, _) = demo_deployed("it_train_rollback");
    let mut a = connect(&db);
    a.batch_execute("BEGIN").unwrap();
    let id: i64 = a.query_one("SELECT reco.train('popularity', '{\"evaluate\": false}')", &[]).unwrap().get(0);
    a.batch_execute("ROLLBACK").unwrap();
    // the registry row committed on its own (so others could see the training) stays behind...
    let status: String = a.query_one("SELECT status FROM reco.models WHERE model_id = $1", &[&id]).unwrap().get(0);
    assert_eq!(status, "training");
    // ...until the next training (or prune) finds nobody holding its lock
    a.query_one("SELECT reco.train('popularity', '{\"evaluate\": false}')", &[]).unwrap();
    let r = a.query_one("SELECT status, error FROM reco.models WHERE model_id = $1", &[&id]).unwrap();
    assert_eq!(r.get::<_, String>(0), "failed");
    assert!(r.get::<_, String>(1).contains("rolled back"), "{}", r.get::<_, String>(1));
}

#[test]
fn a_training_of_another_role_is_not_reaped_while_it_runs() {
    // two admins without pg_read_all_stats: neither can see the other's backend in
    // pg_stat_activity, which used to make the second mark the first one's training failed
    let (db, _) = demo_deployed("it_train_two_roles");
    login_role("it_ops_one", "reco_admin");
    login_role("it_ops_two", "reco_admin");
    let one = as_user(&db, "it_ops_one");
    let h = std::thread::spawn(move || connect(&one).query_one("SELECT reco.train('hybrid', '{\"iterations\": 40}')", &[]).map(|r| r.get::<_, i64>(0)));
    let mut a = connect(&db);
    let (id, _) = wait_training(&mut a);
    let mut two = connect(&as_user(&db, "it_ops_two"));
    two.query_one("SELECT reco.train('popularity', '{\"evaluate\": false}')", &[]).unwrap();
    two.query_one("SELECT reco.prune_models(0)", &[]).unwrap();
    let status: String = a.query_one("SELECT status FROM reco.models WHERE model_id = $1", &[&id]).unwrap().get(0);
    assert_eq!(status, "training", "the other role's training and prune left the running one alone");
    assert_eq!(h.join().unwrap().unwrap(), id);
    let status: String = a.query_one("SELECT status FROM reco.models WHERE model_id = $1", &[&id]).unwrap().get(0);
    assert_eq!(status, "ready");
}

#[test]
fn schedule_training_creates_a_pg_cron_job_whose_command_trains_and_deploys() {
    // pg_cron runs in cron.database_name, which is `postgres` on the test cluster. The admin is
    // a non-superuser member of reco_admin with pg_cron's documented grant (USAGE on cron).
    let mut su = connect(&dsn("postgres"));
    su.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_cron; DROP EXTENSION IF EXISTS pg_reco CASCADE; CREATE EXTENSION pg_reco CASCADE;").unwrap();
    login_role("it_cron_ops", "reco_admin");
    su.batch_execute("GRANT USAGE ON SCHEMA cron TO it_cron_ops").unwrap();
    let mut c = connect(&as_user(&dsn("postgres"), "it_cron_ops"));
    c.batch_execute("SELECT reco.load_demo('small')").unwrap();
    let job: i64 = c.query_one("SELECT reco.schedule_training('0 3 * * *', 'popularity', 'most_recent')", &[]).unwrap().get(0);
    let again: i64 = c.query_one("SELECT reco.schedule_training('30 2 * * *', 'popularity', 'most_recent')", &[]).unwrap().get(0);
    assert_eq!(job, again, "one schedule per kind: scheduling again replaces it");
    let r = c.query_one("SELECT schedule, command, database FROM cron.job WHERE jobid = $1", &[&job]).unwrap();
    assert_eq!(r.get::<_, String>(0), "30 2 * * *");
    let command: String = r.get(1);
    assert_eq!(command, "SELECT reco.train('popularity'); SELECT reco.deploy('most_recent')");
    // what pg_cron will run, run now
    c.batch_execute(&command).unwrap();
    let (kind, status): (String, String) = {
        let r = c.query_one("SELECT kind, status FROM reco.models ORDER BY model_id DESC LIMIT 1", &[]).unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((kind.as_str(), status.as_str()), ("popularity", "deployed"));
    let owner: String = su.query_one("SELECT username FROM cron.job WHERE jobid = $1", &[&job]).unwrap().get(0);
    assert_eq!(owner, "it_cron_ops", "the job runs as the admin who scheduled it, not as a superuser");
    c.batch_execute(&format!("SELECT cron.unschedule({job})")).unwrap();
    su.batch_execute("DROP EXTENSION pg_reco CASCADE").unwrap();
}
