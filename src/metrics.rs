//! Metric names in one place, and the Prometheus exporter.
//!
//! Names follow Prometheus conventions: `weir_` prefix, base units in the name, `_total`
//! for counters. Recording goes through the `metrics` facade so subsystems need no
//! handle; the exporter serves `/metrics` on `metrics.listen`.

use std::net::SocketAddr;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

pub const REQUESTS_TOTAL: &str = "weir_requests_total";
pub const REQUEST_ERRORS_TOTAL: &str = "weir_request_errors_total";
pub const REQUEST_DURATION_SECONDS: &str = "weir_request_duration_seconds";
pub const BYTES_IN_TOTAL: &str = "weir_topic_bytes_in_total";
pub const BYTES_OUT_TOTAL: &str = "weir_topic_bytes_out_total";
pub const RECORDS_IN_TOTAL: &str = "weir_topic_records_in_total";
pub const RECORDS_OUT_TOTAL: &str = "weir_topic_records_out_total";
pub const CONNECTIONS_OPEN: &str = "weir_connections_open";
pub const CONNECTIONS_ACCEPTED_TOTAL: &str = "weir_connections_accepted_total";
pub const CONNECTIONS_CLOSED_TOTAL: &str = "weir_connections_closed_total";
pub const PARTITIONS: &str = "weir_partitions";
pub const UP: &str = "weir_up";
pub const LOG_CLEANER_RUNS_TOTAL: &str = "weir_log_cleaner_runs_total";
pub const LOG_CLEANER_CLEANED_BYTES_TOTAL: &str = "weir_log_cleaner_cleaned_bytes_total";
pub const LOG_RECOVERY_TRUNCATED_BYTES_TOTAL: &str = "weir_log_recovery_truncated_bytes_total";
pub const LOG_APPENDED_BYTES_TOTAL: &str = "weir_log_appended_bytes_total";
pub const LOG_RECOMPRESSED_BATCHES_TOTAL: &str = "weir_log_recompressed_batches_total";
pub const LOG_SEGMENTS_ROLLED_TOTAL: &str = "weir_log_segments_rolled_total";
pub const LOG_SEGMENT_FILES_OPEN: &str = "weir_log_segment_files_open";
pub const LOG_SEGMENT_FILES_OPEN_MAX: &str = "weir_log_segment_files_open_max";
pub const LOG_SEGMENT_FILES_EVICTED_TOTAL: &str = "weir_log_segment_files_evicted_total";
pub const LOG_PARTITIONS_UNAVAILABLE: &str = "weir_log_partitions_unavailable";
pub const LOG_FLUSHES_TOTAL: &str = "weir_log_flushes_total";
pub const LOG_PARTITION_FLUSH_DURATION_SECONDS: &str = "weir_log_partition_flush_duration_seconds";
pub const LOG_RETENTION_DELETED_SEGMENTS_TOTAL: &str = "weir_log_retention_deleted_segments_total";
pub const GROUP_MEMBERS: &str = "weir_group_members";
pub const GROUP_GENERATION: &str = "weir_group_generation";
pub const GROUP_STATE: &str = "weir_group_state";
pub const GROUP_REBALANCES_TOTAL: &str = "weir_group_rebalances_total";
pub const GROUP_LAG_RECORDS: &str = "weir_group_lag_records";
pub const GROUP_RECORDS_WRITTEN_TOTAL: &str = "weir_group_records_written_total";
pub const GROUP_OFFSETS_EXPIRED_TOTAL: &str = "weir_group_offsets_expired_total";
pub const GROUP_COMMITTED_OFFSET: &str = "weir_group_committed_offset";
pub const TXN_ONGOING: &str = "weir_txn_ongoing";
pub const TXN_ENDED_TOTAL: &str = "weir_txn_ended_total";
pub const TXN_TIMED_OUT_TOTAL: &str = "weir_txn_timed_out_total";
pub const TXN_MARKER_SECONDS: &str = "weir_txn_marker_write_seconds";
pub const TXN_RECORDS_WRITTEN_TOTAL: &str = "weir_txn_records_written_total";
pub const LOG_FLUSH_DURATION_SECONDS: &str = "weir_log_flush_duration_seconds";
pub const ISR_SHRINKS_TOTAL: &str = "weir_isr_shrinks_total";
pub const ISR_EXPANDS_TOTAL: &str = "weir_isr_expands_total";
pub const UNDER_REPLICATED_PARTITIONS: &str = "weir_under_replicated_partitions";
pub const REPLICA_FETCH_LAG_RECORDS: &str = "weir_replica_fetch_lag_records";
pub const REPLICA_FETCH_ERRORS_TOTAL: &str = "weir_replica_fetch_errors_total";
pub const REQUEST_STAGE_SECONDS: &str = "weir_request_stage_seconds";
pub const PARTITION_LEADERS: &str = "weir_partition_leaders";
pub const OFFLINE_PARTITIONS: &str = "weir_offline_partitions";
pub const CLIENT_TELEMETRY_PUSHES_TOTAL: &str = "weir_client_telemetry_pushes_total";
pub const CLIENT_TELEMETRY_CLIENTS: &str = "weir_client_telemetry_clients";
pub const LOG_DIR_MOVES_IN_PROGRESS: &str = "weir_log_dir_moves_in_progress";
pub const PREFERRED_REPLICA_IMBALANCE: &str = "weir_preferred_replica_imbalance";
pub const LEADER_REBALANCE_ELECTIONS_TOTAL: &str = "weir_leader_rebalance_elections_total";
pub const BROKERS: &str = "weir_brokers";
pub const BROKERS_FENCED: &str = "weir_brokers_fenced";
pub const PARTITION_LOG_START_OFFSET: &str = "weir_partition_log_start_offset";
pub const PARTITION_LOG_END_OFFSET: &str = "weir_partition_log_end_offset";
pub const PARTITION_HIGH_WATERMARK: &str = "weir_partition_high_watermark";
pub const PARTITION_LAST_STABLE_OFFSET: &str = "weir_partition_last_stable_offset";
pub const LOG_OLDEST_OPEN_TXN_SECONDS: &str = "weir_log_oldest_open_transaction_seconds";
pub const LOG_UNSTABLE_PARTITIONS: &str = "weir_log_unstable_partitions";
pub const PARTITION_SIZE_BYTES: &str = "weir_partition_size_bytes";
pub const LOG_SEGMENTS: &str = "weir_log_segments";
pub const LOG_SIZE_BYTES: &str = "weir_log_size_bytes";
pub const LOG_DIR_TOTAL_BYTES: &str = "weir_log_dir_total_bytes";
pub const LOG_DIR_USABLE_BYTES: &str = "weir_log_dir_usable_bytes";
pub const LOG_DIR_OFFLINE: &str = "weir_log_dir_offline";
pub const PRODUCE_PURGATORY_SIZE: &str = "weir_produce_purgatory_size";
pub const FETCH_LONG_POLL_SIZE: &str = "weir_fetch_long_poll_size";
pub const TLS_HANDSHAKE_FAILURES_TOTAL: &str = "weir_tls_handshake_failures_total";
pub const TLS_CERTIFICATE_EXPIRY_SECONDS: &str = "weir_tls_certificate_expiry_seconds";
pub const AUTHENTICATIONS_TOTAL: &str = "weir_authentications_total";
pub const SASL_SESSIONS_EXPIRED_TOTAL: &str = "weir_sasl_sessions_expired_total";
pub const OAUTH_JWKS_REFRESHES_TOTAL: &str = "weir_oauth_jwks_refreshes_total";
pub const OAUTH_JWKS_KEYS: &str = "weir_oauth_jwks_keys";
pub const AUTHORIZATION_DENIALS_TOTAL: &str = "weir_authorization_denials_total";
pub const AUDIT_EVENTS_TOTAL: &str = "weir_audit_events_total";
pub const AUDIT_EVENTS_DROPPED_TOTAL: &str = "weir_audit_events_dropped_total";
pub const RAFT_TERM: &str = "weir_raft_term";
pub const RAFT_LEADER_ID: &str = "weir_raft_leader_id";
pub const RAFT_IS_LEADER: &str = "weir_raft_is_leader";
pub const RAFT_LAST_LOG_INDEX: &str = "weir_raft_last_log_index";
pub const RAFT_COMMIT_INDEX: &str = "weir_raft_commit_index";
pub const RAFT_APPLIED_INDEX: &str = "weir_raft_applied_index";
pub const RAFT_VOTERS: &str = "weir_raft_voters";
pub const RAFT_LEARNERS: &str = "weir_raft_learners";
pub const BUILD_INFO: &str = "weir_build_info";
// Process metrics under the names every Prometheus client library uses.
pub const PROCESS_CPU_SECONDS_TOTAL: &str = "process_cpu_seconds_total";
pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "process_resident_memory_bytes";
pub const PROCESS_VIRTUAL_MEMORY_BYTES: &str = "process_virtual_memory_bytes";
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
pub const PROCESS_THREADS: &str = "process_threads";
pub const PROCESS_START_TIME_SECONDS: &str = "process_start_time_seconds";

static PARTITION_SERIES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// `metrics.partition.series.enable`, set by the broker at start: whether series with a
/// `partition` label are exported (cardinality bound for brokers with many partitions).
pub fn set_partition_series(on: bool) {
    PARTITION_SERIES.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub fn partition_series() -> bool {
    PARTITION_SERIES.load(std::sync::atomic::Ordering::Relaxed)
}

/// A gauge counting something while it lasts: incremented when made, decremented when
/// dropped (a request parked in the produce purgatory, a long-polling fetch).
pub struct InFlight(metrics::Gauge);

impl InFlight {
    pub fn new(name: &'static str) -> InFlight {
        let g = metrics::gauge!(name);
        g.increment(1.0);
        InFlight(g)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Latency buckets from 50 µs to 30 s: produce with fsync sits in the ms range, long-poll
/// fetches up to `fetch.max.wait.ms`.
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0,
];

/// Install the global recorder and serve the metrics port (see `metrics_http`).
pub fn install(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = crate::metrics_http::bind(addr)?;
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .install_recorder()?;
    tokio::spawn(crate::metrics_http::serve(listener, handle));
    describe();
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(())
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(REQUESTS_TOTAL, "Requests received, by API and version.");
    describe_counter!(
        REQUEST_ERRORS_TOTAL,
        "Error codes returned, by API and error."
    );
    describe_histogram!(
        REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time from a request's arrival to its response, by API."
    );
    describe_counter!(
        BYTES_IN_TOTAL,
        Unit::Bytes,
        "Record bytes appended, by topic."
    );
    describe_counter!(
        BYTES_OUT_TOTAL,
        Unit::Bytes,
        "Record bytes sent to fetchers, by topic."
    );
    describe_counter!(RECORDS_IN_TOTAL, "Records appended, by topic.");
    describe_counter!(
        RECORDS_OUT_TOTAL,
        "Record batches' records sent to fetchers, by topic."
    );
    describe_gauge!(GROUP_MEMBERS, "Members of a consumer group.");
    describe_gauge!(
        GROUP_GENERATION,
        "Generation (classic) or group epoch (consumer protocol) of a group."
    );
    describe_gauge!(
        GROUP_STATE,
        "1 for the state a group is in, by group and state."
    );
    describe_counter!(
        GROUP_REBALANCES_TOTAL,
        "Rebalances (generation bumps) of a group seen by this coordinator."
    );
    describe_gauge!(
        GROUP_LAG_RECORDS,
        "Consumer lag: high watermark minus committed offset, by group, topic and partition, for partitions with a replica on the group's coordinator."
    );
    describe_counter!(
        GROUP_RECORDS_WRITTEN_TOTAL,
        "Records written to __consumer_offsets by the group coordinator."
    );
    describe_gauge!(
        TXN_ONGOING,
        "Transactions in the Ongoing state on this broker's transaction coordinators."
    );
    describe_counter!(
        TXN_ENDED_TOTAL,
        "Transactions whose markers were all written, by result (commit, abort)."
    );
    describe_counter!(
        TXN_TIMED_OUT_TOTAL,
        "Transactions aborted by the coordinator because they passed their timeout."
    );
    describe_histogram!(
        TXN_MARKER_SECONDS,
        Unit::Seconds,
        "Time to write every marker of an ended transaction (commit or abort)."
    );
    describe_counter!(
        TXN_RECORDS_WRITTEN_TOTAL,
        "Records written to __transaction_state by the transaction coordinator."
    );
    describe_gauge!(
        GROUP_COMMITTED_OFFSET,
        "Committed offset of a group, by group, topic and partition (on its coordinator)."
    );
    describe_counter!(
        GROUP_OFFSETS_EXPIRED_TOTAL,
        "Committed offsets removed after offsets.retention.minutes."
    );
    describe_gauge!(CONNECTIONS_OPEN, "Open client connections, by listener.");
    describe_counter!(
        CONNECTIONS_ACCEPTED_TOTAL,
        "Accepted client connections, by listener."
    );
    describe_counter!(
        CONNECTIONS_CLOSED_TOTAL,
        "Closed client connections, by listener."
    );
    describe_gauge!(PARTITIONS, "Partition logs hosted by this broker.");
    describe_counter!(
        ISR_SHRINKS_TOTAL,
        "ISR shrinks committed for partitions this broker leads."
    );
    describe_counter!(
        ISR_EXPANDS_TOTAL,
        "ISR expansions committed for partitions this broker leads."
    );
    describe_gauge!(
        UNDER_REPLICATED_PARTITIONS,
        "Partitions led here whose ISR is smaller than their replica set."
    );
    describe_gauge!(
        REPLICA_FETCH_LAG_RECORDS,
        "Follower lag: the leader's high watermark minus this follower's log end, by topic and partition."
    );
    describe_counter!(
        REPLICA_FETCH_ERRORS_TOTAL,
        "Failed follower fetch round trips (connection or protocol errors), by leader."
    );
    describe_gauge!(UP, "1 while the broker is serving.");
    describe_counter!(
        LOG_CLEANER_RUNS_TOTAL,
        "Compaction passes that rewrote segments."
    );
    describe_counter!(
        LOG_CLEANER_CLEANED_BYTES_TOTAL,
        "Bytes removed from compacted logs."
    );
    describe_counter!(
        LOG_RECOVERY_TRUNCATED_BYTES_TOTAL,
        "Bytes of torn or corrupt log tail truncated at start."
    );
    describe_counter!(
        LOG_APPENDED_BYTES_TOTAL,
        "Bytes appended to partition logs."
    );
    describe_counter!(LOG_SEGMENTS_ROLLED_TOTAL, "Segments rolled.");
    describe_counter!(
        LOG_RECOMPRESSED_BATCHES_TOTAL,
        "Produced batches the leader rewrote in their topic's compression.type, by codec received (from) and stored (to)."
    );
    describe_gauge!(
        LOG_SEGMENT_FILES_OPEN,
        "Segment files holding an open descriptor in the handle cache."
    );
    describe_gauge!(
        LOG_SEGMENT_FILES_OPEN_MAX,
        "Capacity of the segment handle cache (log.segment.files.open.max, or sized from the open-file limit)."
    );
    describe_counter!(
        LOG_SEGMENT_FILES_EVICTED_TOTAL,
        "Segment file descriptors closed to stay within the handle cache's capacity (reopened when next used); a fast rise means the cache is too small for the partitions in use."
    );
    describe_gauge!(
        LOG_PARTITIONS_UNAVAILABLE,
        "Partitions this broker should host whose log cannot be created or opened (their creation is retried with backoff; Metadata shows no leader for them here)."
    );
    describe_counter!(LOG_FLUSHES_TOTAL, "Partition fsyncs.");
    describe_histogram!(
        LOG_PARTITION_FLUSH_DURATION_SECONDS,
        Unit::Seconds,
        "Time to fsync one partition."
    );
    describe_counter!(
        LOG_RETENTION_DELETED_SEGMENTS_TOTAL,
        "Segments deleted by retention."
    );
    describe_histogram!(
        REQUEST_STAGE_SECONDS,
        Unit::Seconds,
        "Time per request stage, by API: queue (read to handler start), handle (in the handler, acks and long-poll waits included), send (until the response is written)."
    );
    describe_gauge!(PARTITION_LEADERS, "Partitions this broker leads.");
    describe_gauge!(
        OFFLINE_PARTITIONS,
        "Partitions without a leader, in this node's view of the cluster metadata."
    );
    describe_gauge!(
        LOG_DIR_MOVES_IN_PROGRESS,
        "Partitions being moved between this broker's log directories (AlterReplicaLogDirs)."
    );
    describe_counter!(
        CLIENT_TELEMETRY_PUSHES_TOTAL,
        "PushTelemetry requests (KIP-714 client metrics), by result: accepted, unknown_subscription, too_soon, too_large, unsupported_compression, invalid."
    );
    describe_gauge!(
        CLIENT_TELEMETRY_CLIENTS,
        "Clients whose pushed metrics this broker exports (they subscribed and have not gone silent)."
    );
    describe_gauge!(
        PREFERRED_REPLICA_IMBALANCE,
        "Partitions not led by their preferred (first) replica, in this node's view of the cluster metadata."
    );
    describe_counter!(
        LEADER_REBALANCE_ELECTIONS_TOTAL,
        "Preferred-leader elections made by the active controller's automatic rebalancing (auto.leader.rebalance.enable)."
    );
    describe_gauge!(BROKERS, "Live (unfenced) brokers in the cluster metadata.");
    describe_gauge!(BROKERS_FENCED, "Fenced brokers in the cluster metadata.");
    describe_gauge!(
        PARTITION_LOG_START_OFFSET,
        "First offset of a partition log hosted here, by topic and partition."
    );
    describe_gauge!(
        PARTITION_LOG_END_OFFSET,
        "Log end offset of a partition log hosted here, by topic and partition."
    );
    describe_gauge!(
        PARTITION_HIGH_WATERMARK,
        "High watermark of a partition log hosted here, by topic and partition."
    );
    describe_gauge!(
        PARTITION_LAST_STABLE_OFFSET,
        "Last stable offset of a partition log hosted here (read_committed consumers stop there), by topic and partition."
    );
    describe_gauge!(
        LOG_OLDEST_OPEN_TXN_SECONDS,
        Unit::Seconds,
        "Age of the oldest transaction still open in any partition log of this broker (0: none)."
    );
    describe_gauge!(
        LOG_UNSTABLE_PARTITIONS,
        "Partition logs of this broker whose last stable offset is below the high watermark (an open transaction holds them)."
    );
    describe_gauge!(
        PARTITION_SIZE_BYTES,
        Unit::Bytes,
        "Bytes of a partition log's segments, by topic and partition."
    );
    describe_gauge!(LOG_SEGMENTS, "Log segments on this broker.");
    describe_gauge!(
        LOG_SIZE_BYTES,
        Unit::Bytes,
        "Bytes of all partition logs on this broker."
    );
    describe_gauge!(
        LOG_DIR_TOTAL_BYTES,
        Unit::Bytes,
        "Size of a log directory's filesystem."
    );
    describe_gauge!(
        LOG_DIR_USABLE_BYTES,
        Unit::Bytes,
        "Bytes still usable in a log directory's filesystem."
    );
    describe_gauge!(
        LOG_DIR_OFFLINE,
        "1 when a log directory has failed (I/O error)."
    );
    describe_gauge!(
        PRODUCE_PURGATORY_SIZE,
        "Produce requests waiting for their acknowledgement (replication, fsync)."
    );
    describe_gauge!(
        FETCH_LONG_POLL_SIZE,
        "Fetch requests parked until data arrives."
    );
    describe_counter!(
        TLS_HANDSHAKE_FAILURES_TOTAL,
        "TLS handshakes that failed, by listener and reason (certificate, incompatible, protocol, io, timeout)."
    );
    describe_gauge!(
        TLS_CERTIFICATE_EXPIRY_SECONDS,
        Unit::Seconds,
        "Seconds until the listener's certificate chain expires (its earliest notAfter); negative once expired."
    );
    describe_counter!(
        AUTHENTICATIONS_TOTAL,
        "SASL authentications, by listener, mechanism, result (success, failure) and whether they renewed a session (reauthentication)."
    );
    describe_counter!(
        OAUTH_JWKS_REFRESHES_TOTAL,
        "Loads of OAUTHBEARER verification keys (JWKS) from their file or endpoint, by result (ok, error)."
    );
    describe_gauge!(
        OAUTH_JWKS_KEYS,
        "Usable verification keys in the JWKS of each OAUTHBEARER key source."
    );
    describe_counter!(
        SASL_SESSIONS_EXPIRED_TOTAL,
        "Connections closed because their SASL session ended (connections.max.reauth.ms) without re-authentication, by listener."
    );
    describe_counter!(
        AUTHORIZATION_DENIALS_TOTAL,
        "Requests (or parts of them) refused by the authorizer, by API and resource type."
    );
    describe_counter!(
        AUDIT_EVENTS_TOTAL,
        "Events written to the audit log, by kind (authentication, authorization) and outcome."
    );
    describe_counter!(
        AUDIT_EVENTS_DROPPED_TOTAL,
        "Audit events left out: over audit.log.events.per.second, or the writer behind."
    );
    describe_gauge!(RAFT_TERM, "Current term of the metadata Raft log.");
    describe_gauge!(
        RAFT_LEADER_ID,
        "Node id of the metadata Raft leader (-1: none known)."
    );
    describe_gauge!(
        RAFT_IS_LEADER,
        "1 on the node that leads the metadata Raft log."
    );
    describe_gauge!(
        RAFT_LAST_LOG_INDEX,
        "Last index of this node's metadata log."
    );
    describe_gauge!(
        RAFT_COMMIT_INDEX,
        "Committed index of the metadata log (on followers: the applied index)."
    );
    describe_gauge!(
        RAFT_APPLIED_INDEX,
        "Last metadata log index applied on this node."
    );
    describe_gauge!(RAFT_VOTERS, "Voters of the metadata quorum.");
    describe_gauge!(
        RAFT_LEARNERS,
        "Learners (observers) of the metadata quorum."
    );
    describe_gauge!(BUILD_INFO, "1, labelled with the Weir version.");
    describe_gauge!(
        PROCESS_CPU_SECONDS_TOTAL,
        Unit::Seconds,
        "User and system CPU time."
    );
    describe_gauge!(
        PROCESS_RESIDENT_MEMORY_BYTES,
        Unit::Bytes,
        "Resident memory."
    );
    describe_gauge!(PROCESS_VIRTUAL_MEMORY_BYTES, Unit::Bytes, "Virtual memory.");
    describe_gauge!(PROCESS_OPEN_FDS, "Open file descriptors.");
    describe_gauge!(PROCESS_MAX_FDS, "Limit of open file descriptors.");
    describe_gauge!(PROCESS_THREADS, "Threads of the process.");
    describe_gauge!(
        PROCESS_START_TIME_SECONDS,
        Unit::Seconds,
        "Start time of the process since the Unix epoch."
    );
    describe_histogram!(
        LOG_FLUSH_DURATION_SECONDS,
        Unit::Seconds,
        "Time of one group-commit flush round (all partitions of a log dir)."
    );
}
