//! Gauges read at scrape time (see `metrics_http`): the process (from /proc), the
//! logs on this broker, the cluster as this node's metadata image shows it, and the
//! metadata Raft log. Everything here is a snapshot; counters and histograms are
//! recorded where things happen.
//!
//! Per-partition series are exported only with `metrics.partition.series.enable`: a
//! broker with 10,000 partitions would otherwise export 40,000 series for them alone.

use metrics::gauge;

use crate::metrics as m;
use crate::state::BrokerState;

/// Refresh every scrape-time gauge of `state`.
pub fn collect(state: &BrokerState) {
    collect_process();
    collect_logs(state);
    collect_cluster(state);
    collect_raft(state);
    collect_tls(state);
}

fn collect_tls(state: &BrokerState) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for tls in &state.tls {
        if let Some(not_after) = tls.expires_at() {
            gauge!(m::TLS_CERTIFICATE_EXPIRY_SECONDS, "listener" => tls.listener().to_string())
                .set((not_after - now) as f64);
        }
    }
}

/// Readiness: the broker serves, and in a cluster it is registered and unfenced (so
/// clients and other brokers can reach it through Metadata).
pub fn ready(state: &BrokerState) -> Result<(), String> {
    if state.is_shutting_down() {
        return Err("shutting down".into());
    }
    let image = state.controller.image();
    if image.brokers.contains_key(&state.node_id) {
        return Ok(());
    }
    if image.fenced_brokers.contains_key(&state.node_id) {
        return Err(format!("broker {} is fenced", state.node_id));
    }
    Err(format!("broker {} is not registered", state.node_id))
}

fn collect_logs(state: &BrokerState) {
    let per_partition = m::partition_series();
    let (mut segments, mut bytes) = (0usize, 0u64);
    let (mut unstable, mut oldest_txn) = (0usize, None::<i64>);
    for log in state.logs.all() {
        let size = log.size_bytes();
        segments += log.num_segments();
        bytes += size;
        let lso = log.last_stable_offset();
        if lso < log.high_watermark() {
            unstable += 1;
        }
        if let Some(since) = log.oldest_open_txn_since() {
            oldest_txn = Some(oldest_txn.map_or(since, |o| o.min(since)));
        }
        if per_partition {
            let labels = [
                ("topic", log.topic().to_string()),
                ("partition", log.partition().to_string()),
            ];
            gauge!(m::PARTITION_LOG_START_OFFSET, &labels).set(log.log_start_offset() as f64);
            gauge!(m::PARTITION_LOG_END_OFFSET, &labels).set(log.log_end_offset() as f64);
            gauge!(m::PARTITION_HIGH_WATERMARK, &labels).set(log.high_watermark() as f64);
            gauge!(m::PARTITION_LAST_STABLE_OFFSET, &labels).set(lso as f64);
            gauge!(m::PARTITION_SIZE_BYTES, &labels).set(size as f64);
        }
    }
    gauge!(m::LOG_SEGMENTS).set(segments as f64);
    gauge!(m::LOG_UNSTABLE_PARTITIONS).set(unstable as f64);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let age_s = oldest_txn.map_or(0.0, |since| (now - since).max(0) as f64 / 1000.0);
    gauge!(m::LOG_OLDEST_OPEN_TXN_SECONDS).set(age_s);
    gauge!(m::LOG_SIZE_BYTES).set(bytes as f64);
    let handles = state.logs.handles();
    gauge!(m::LOG_SEGMENT_FILES_OPEN).set(handles.len() as f64);
    gauge!(m::LOG_SEGMENT_FILES_OPEN_MAX).set(handles.capacity() as f64);
    gauge!(m::LOG_PARTITIONS_UNAVAILABLE).set(state.logs.unavailable_count() as f64);
    // Exported from the first scrape, so that a rate over it reads 0 rather than nothing.
    metrics::counter!(m::LOG_SEGMENT_FILES_EVICTED_TOTAL).increment(0);
    gauge!(m::LOG_DIR_MOVES_IN_PROGRESS).set(state.logs.moves().len() as f64);
    for d in state.logs.dirs() {
        let dir = d.path.display().to_string();
        gauge!(m::LOG_DIR_TOTAL_BYTES, "dir" => dir.clone()).set(d.total_bytes as f64);
        gauge!(m::LOG_DIR_USABLE_BYTES, "dir" => dir.clone()).set(d.usable_bytes as f64);
        gauge!(m::LOG_DIR_OFFLINE, "dir" => dir).set(if d.error.is_some() { 1.0 } else { 0.0 });
    }
}

fn collect_cluster(state: &BrokerState) {
    let image = state.controller.image();
    let (mut led, mut offline) = (0usize, 0usize);
    for t in image.topics.values() {
        for p in &t.partitions {
            if p.leader == state.node_id {
                led += 1;
            }
            if p.leader < 0 {
                offline += 1;
            }
        }
    }
    gauge!(m::PARTITION_LEADERS).set(led as f64);
    gauge!(m::OFFLINE_PARTITIONS).set(offline as f64);
    gauge!(m::CLIENT_TELEMETRY_CLIENTS).set(state.telemetry.clients() as f64);
    metrics::counter!(m::CLIENT_TELEMETRY_PUSHES_TOTAL, "result" => "accepted").increment(0);
    gauge!(m::PREFERRED_REPLICA_IMBALANCE)
        .set(crate::cluster::rebalance::imbalance_count(&image) as f64);
    // Exported from the first scrape, so that a rate over it reads 0 rather than nothing.
    metrics::counter!(m::LEADER_REBALANCE_ELECTIONS_TOTAL).increment(0);
    gauge!(m::BROKERS).set(image.brokers.len() as f64);
    gauge!(m::BROKERS_FENCED).set(image.fenced_brokers.len() as f64);
}

fn collect_raft(state: &BrokerState) {
    let r = state.controller.raft_view();
    gauge!(m::RAFT_TERM).set(r.term as f64);
    gauge!(m::RAFT_LEADER_ID).set(r.leader as f64);
    gauge!(m::RAFT_IS_LEADER).set(if r.is_leader { 1.0 } else { 0.0 });
    gauge!(m::RAFT_LAST_LOG_INDEX).set(r.last_log_index as f64);
    gauge!(m::RAFT_COMMIT_INDEX).set(r.committed as f64);
    gauge!(m::RAFT_APPLIED_INDEX).set(r.applied as f64);
    gauge!(m::RAFT_VOTERS).set(r.voters as f64);
    gauge!(m::RAFT_LEARNERS).set(r.learners as f64);
}

/// CPU, memory, threads and descriptors of this process, as the Prometheus client
/// libraries report them (Linux /proc; silently nothing elsewhere).
fn collect_process() {
    let Some(p) = read_proc() else {
        return;
    };
    // A gauge: the metrics facade's counters are integers, and CPU seconds are not.
    gauge!(m::PROCESS_CPU_SECONDS_TOTAL).set(p.cpu_millis as f64 / 1000.0);
    gauge!(m::PROCESS_RESIDENT_MEMORY_BYTES).set(p.rss_bytes as f64);
    gauge!(m::PROCESS_VIRTUAL_MEMORY_BYTES).set(p.vsize_bytes as f64);
    gauge!(m::PROCESS_THREADS).set(p.threads as f64);
    gauge!(m::PROCESS_START_TIME_SECONDS).set(p.start_time_seconds);
    if let Some(n) = p.open_fds {
        gauge!(m::PROCESS_OPEN_FDS).set(n as f64);
    }
    if let Some(n) = p.max_fds {
        gauge!(m::PROCESS_MAX_FDS).set(n as f64);
    }
}

struct ProcStats {
    cpu_millis: u64,
    rss_bytes: u64,
    vsize_bytes: u64,
    threads: u64,
    start_time_seconds: f64,
    open_fds: Option<usize>,
    max_fds: Option<u64>,
}

fn read_proc() -> Option<ProcStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Field numbers from proc(5), minus 3 (pid, comm and state are not in `fields`
    // except state, at index 0).
    let num = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    let ticks = sysconf(libc::_SC_CLK_TCK)?;
    let page = sysconf(libc::_SC_PAGESIZE)?;
    let cpu_ticks = num(14)? + num(15)?;
    let start_ticks = num(22)?;
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    })?;
    let limits = std::fs::read_to_string("/proc/self/limits").ok();
    let max_fds = limits.as_deref().and_then(|l| {
        let line = l.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse().ok()
    });
    Some(ProcStats {
        cpu_millis: cpu_ticks * 1000 / ticks,
        rss_bytes: num(24)? * page,
        vsize_bytes: num(23)?,
        threads: num(20)?,
        start_time_seconds: boot as f64 + start_ticks as f64 / ticks as f64,
        open_fds: std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count()),
        max_fds,
    })
}

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf reads a configuration value; it has no memory effects.
    let v = unsafe { libc::sysconf(name) };
    u64::try_from(v).ok().filter(|v| *v > 0)
}
