//! Refusing a training, evaluation or demo load whose estimated memory
//! (`reco_engine::models::budget`) is above `reco.training_memory_limit`.
use crate::error::raise;
use reco_engine::models::budget::{self, Estimate};
use reco_engine::{Error, ErrorKind};

/// The memory this server may use: the machine's, or its control group's limit when lower.
fn server_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let total = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024;
    // cgroup v2, then v1; "max" (or a v1 figure near u64::MAX) means no limit
    let group = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        .iter()
        .find_map(|f| std::fs::read_to_string(f).ok()?.trim().parse::<u64>().ok());
    Some(group.map_or(total, |g| g.min(total)))
}

/// Raises 54000 when `e` is above the limit; otherwise returns a line for the progress NOTICE:
/// "estimated memory 627 MB (limit 12.0 GB)". `what` names the call: "reco.train('hybrid')".
pub(crate) fn check(what: &str, e: &Estimate) -> String {
    let limit = budget::limit(crate::gucs::TRAINING_MEMORY_LIMIT_KB.get() as i64, server_memory());
    let need = e.bytes();
    let Some(limit) = limit else {
        return format!("estimated memory {} (no limit)", budget::show(need));
    };
    if need > limit {
        let parts: Vec<String> = e.parts.iter().map(|p| format!("{} {}", p.name, budget::show(p.bytes))).collect();
        let lower = e.largest().and_then(|p| p.lower).unwrap_or("the data");
        raise(
            Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "{what} would need about {} of memory, more than reco.training_memory_limit allows ({}): {}",
                    budget::show(need),
                    budget::show(limit),
                    parts.join(", ")
                ),
            )
            .hint(format!("lower {lower}; or raise reco.training_memory_limit (superuser; -1 is half of the server's memory, 0 no limit)")),
        );
    }
    format!("estimated memory {} (limit {})", budget::show(need), budget::show(limit))
}
