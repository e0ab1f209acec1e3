//! The results: one JSON document, and the same as text tables (the figure, then its
//! ratio to the machine limit measured in the same run).

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::broker::Stopped;
use crate::machine::Limits;
use crate::stats::Lat;

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Report {
    pub meta: Meta,
    /// The limits the ratios use: the best of `limit_runs`.
    pub limits: Limits,
    /// Each measurement of the limits (at the start of the run and at its end).
    #[serde(default)]
    pub limit_runs: Vec<Limits>,
    pub brokers: Vec<BrokerInfo>,
    pub rows: Vec<Row>,
    pub cluster: Option<ClusterRatio>,
    pub startup: Option<Startup>,
    pub targets: Vec<TargetCheck>,
    /// Errors and misbehaviour seen during the run.
    pub problems: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Meta {
    pub date_utc: String,
    pub commit: String,
    pub command: String,
    pub quick: bool,
    pub kernel: String,
    pub cpu: String,
    pub produce_seconds: f64,
    pub wall_s: f64,
    /// The open-file limit the brokers ran with (RLIMIT_NOFILE, raised by the driver).
    #[serde(default)]
    pub nofile: u64,
}

/// One broker (or cluster) started for the run.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct BrokerInfo {
    pub name: String,
    pub nodes: u32,
    /// Spawn until it answered Metadata (for a cluster: scripts/cluster start).
    pub startup_s: f64,
    /// RSS one second after start, no topics (summed over nodes).
    pub idle_rss_mb: f64,
    pub idle_rss_ratio_mem: f64,
    pub topics: Vec<TopicInfo>,
    pub stop: Option<Stopped>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: u32,
    pub rf: u32,
    /// CreateTopics until Metadata lists a leader (and full ISR) for every partition.
    pub create_s: f64,
    /// CreateTopics until every partition's log directory exists on disk.
    #[serde(default)]
    pub logs_s: f64,
    /// RSS after creating it, idle.
    pub rss_after_mb: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Spec {
    /// produce, consume or e2e.
    pub kind: String,
    pub nodes: u32,
    pub rf: u32,
    pub partitions: u32,
    pub size: usize,
    /// "1" or "all".
    pub acks: String,
    /// durable or background (the topic's flush.policy).
    pub policy: String,
    pub compression: String,
    /// The topic's compression.type when not `producer` (the broker recompresses).
    #[serde(default)]
    pub topic_compression: Option<String>,
    pub linger_ms: u32,
    /// e2e: the fixed produce rate, MB/s.
    pub rate_mb_s: Option<f64>,
    /// Which repetition of the same scenario (the cluster's RF1/RF3 rounds).
    #[serde(default)]
    pub round: Option<u32>,
}

impl Spec {
    pub fn id(&self) -> String {
        let mut s = format!(
            "{}/n{}/rf{}/p{}/{}B/acks={}/{}/{}",
            self.kind,
            self.nodes,
            self.rf,
            self.partitions,
            self.size,
            self.acks,
            self.policy,
            self.compression
        );
        if let Some(c) = &self.topic_compression {
            let _ = write!(s, "/topic-{c}");
        }
        if self.kind == "e2e" {
            let _ = write!(
                s,
                "/{}MBps/linger{}",
                self.rate_mb_s.unwrap_or(0.0),
                self.linger_ms
            );
        }
        s
    }

    fn setup(&self) -> String {
        format!("{}n RF{} P{}", self.nodes, self.rf, self.partitions)
    }

    fn label(&self) -> String {
        let size = if self.size.is_multiple_of(1024) {
            format!("{}KiB", self.size / 1024)
        } else {
            format!("{}B", self.size)
        };
        let policy = if self.policy == "background" {
            "bg"
        } else {
            "durable"
        };
        match self.kind.as_str() {
            "consume" => format!("consume {size} from start"),
            "consume-raw" => format!("consume {size} from start, raw client"),
            "consume-tls" => format!("consume {size} from start, TLS"),
            "consume-acl" => format!("consume {size} from start, 10,000 ACLs"),
            "produce-acl" => format!(
                "produce {size} acks={} {policy} {}, 10,000 ACLs",
                self.acks, self.compression
            ),
            "produce-tls" => format!(
                "produce {size} acks={} {policy} {}, TLS",
                self.acks, self.compression
            ),
            "produce-raw" => format!(
                "produce {size} acks={} {policy} {}, raw client",
                self.acks, self.compression
            ),
            "produce-raw-sustained" => format!(
                "produce {size} acks={} {policy} {}, raw client, past the dirty-page limit",
                self.acks, self.compression
            ),
            "e2e" => format!(
                "e2e {size} @{}MB/s acks={} {policy} linger={}",
                self.rate_mb_s.unwrap_or(0.0),
                self.acks,
                self.linger_ms
            ),
            _ => match &self.topic_compression {
                Some(c) => format!(
                    "produce {size} acks={} {policy} {} -> broker {c}",
                    self.acks, self.compression
                ),
                None => format!(
                    "produce {size} acks={} {policy} {}",
                    self.acks, self.compression
                ),
            },
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Row {
    pub id: String,
    pub spec: Spec,
    pub msgs_per_s: f64,
    /// Payload MB (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// produce: send to delivery report; e2e: scheduled send to consumer receipt.
    pub lat: Option<Lat>,
    /// e2e: send to delivery report at that rate.
    pub ack_lat: Option<Lat>,
    /// Payload bytes moved in the scenario (warm-up and drain included), what CPU is
    /// divided by.
    pub bytes: u64,
    /// Broker CPU (user + system, all nodes) per GB moved.
    pub broker_cpu_s_per_gb: f64,
    /// Client CPU (producer and/or consumer process) per GB moved.
    pub client_cpu_s_per_gb: f64,
    /// Peak broker RSS during the scenario (VmHWM after a reset; summed over nodes).
    pub peak_rss_mb: f64,
    /// Log segment bytes on disk / payload bytes (all replicas).
    pub stored_per_payload: Option<f64>,
    pub ratios: Ratios,
    pub errors: u64,
    pub notes: Vec<String>,
}

/// Each figure divided by the machine limit it is compared with.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Ratios {
    /// "loopback" (MB/s / loopback MB/s) or "disk" (/ fdatasync-every-4MiB write MB/s,
    /// for acks=all under the durable policy).
    pub mb_limit: String,
    pub mb: f64,
    /// "fdatasync" (fsync before the ack) or "loopback_rtt".
    pub lat_limit: Option<String>,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    /// Broker CPU s/GB / loopback CPU s/GB.
    pub cpu: f64,
    /// Peak RSS / MemTotal.
    pub rss_mem: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct ClusterRatio {
    /// acks=all produce msgs/s, RF3 / RF1 on the same 3-node cluster, durable policy
    /// (fsync before the ack), mean over the rounds.
    pub rf3_over_rf1_acks_all_durable: f64,
    pub rf1_durable_msgs_per_s: Vec<f64>,
    pub rf3_durable_msgs_per_s: Vec<f64>,
    /// RF3/RF1 of each round (RF1 then RF3 on new topics, back to back).
    pub per_round: Vec<f64>,
    /// The same with the background flush policy.
    pub rf3_over_rf1_acks_all_background: Option<f64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Startup {
    pub gb: f64,
    pub partitions: u32,
    pub fill_mb_per_s: f64,
    pub stored_gb: f64,
    pub shutdown: Stopped,
    /// Spawn until a Metadata answer lists the topic.
    pub startup_s: f64,
    /// "broker started elapsed_ms" from the broker's own log, seconds.
    pub startup_logged_s: Option<f64>,
    pub idle_rss_mb: f64,
    pub messages_before: u64,
    pub messages_after: i64,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct TargetCheck {
    pub target: String,
    pub figure: String,
    /// None: not measured in this run.
    pub met: Option<bool>,
}

fn f(v: f64, digits: usize) -> String {
    format!("{v:.digits$}")
}

/// 1234567.8 -> "1,234,568".
fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        f(v, 0)
    } else if v >= 10.0 {
        f(v, 1)
    } else {
        f(v, 2)
    }
}

fn ratio(v: f64) -> String {
    if v >= 100.0 {
        f(v, 0)
    } else if v >= 10.0 {
        f(v, 1)
    } else {
        f(v, 2)
    }
}

fn short_limit(name: &str) -> &str {
    match name {
        "loopback" => "lo",
        "loopback_rtt" => "rtt",
        "fdatasync" => "fsync",
        other => other,
    }
}

/// Renders rows as an aligned text table (also valid Markdown).
pub fn table(rows: &[Row]) -> String {
    let head = [
        "setup",
        "scenario",
        "msgs/s",
        "MB/s",
        "MB/s ×limit",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "p99 ×limit",
        "broker CPU s/GB",
        "CPU ×lo",
        "client CPU s/GB",
        "peak RSS MB",
    ];
    let mut cells: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let lat = r.lat.as_ref().filter(|l| l.count > 0);
        let p99r = match (&r.ratios.lat_limit, r.ratios.p99, lat) {
            (Some(l), Some(v), Some(_)) => format!("{} {}", ratio(v), short_limit(l)),
            _ => "-".into(),
        };
        cells.push(vec![
            r.spec.setup(),
            r.spec.label(),
            thousands(r.msgs_per_s),
            f(r.mb_per_s, 1),
            format!("{} {}", f(r.ratios.mb, 2), short_limit(&r.ratios.mb_limit)),
            lat.map_or("-".into(), |l| ms(l.p50_ms)),
            lat.map_or("-".into(), |l| ms(l.p99_ms)),
            lat.map_or("-".into(), |l| ms(l.p999_ms)),
            p99r,
            f(r.broker_cpu_s_per_gb, 2),
            ratio(r.ratios.cpu),
            f(r.client_cpu_s_per_gb, 2),
            f(r.peak_rss_mb, 1),
        ]);
    }
    let mut right = vec![true; cells[0].len()];
    right[0] = false;
    right[1] = false;
    render(&cells, &right)
}

fn render(cells: &[Vec<String>], right: &[bool]) -> String {
    let cols = cells[0].len();
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in cells.iter().enumerate() {
        out.push('|');
        for c in 0..cols {
            let pad = width[c] - row[c].chars().count();
            if right[c] {
                let _ = write!(out, " {}{} |", " ".repeat(pad), row[c]);
            } else {
                let _ = write!(out, " {}{} |", row[c], " ".repeat(pad));
            }
        }
        out.push('\n');
        if i == 0 {
            out.push('|');
            for c in 0..cols {
                let dashes = "-".repeat(width[c]);
                if right[c] {
                    let _ = write!(out, " {}: |", &dashes[1..]);
                } else {
                    let _ = write!(out, " {dashes} |");
                }
            }
            out.push('\n');
        }
    }
    out
}

/// The whole report as text.
pub fn text(r: &Report) -> String {
    let mut o = String::new();
    let m = &r.meta;
    let _ = writeln!(
        o,
        "Weir benchmark, {}, commit {}{}; {} ({} CPUs, {:.0} MB RAM), kernel {}; wall {:.0} s",
        m.date_utc,
        m.commit,
        if m.quick { " (--quick)" } else { "" },
        m.cpu,
        r.limits.cpus,
        r.limits.mem_total_mb,
        m.kernel,
        m.wall_s
    );
    let _ = writeln!(
        o,
        "command: {}\nbrokers' open-file limit: {}\n",
        m.command, m.nofile
    );
    let l = &r.limits;
    let _ = writeln!(o, "Machine limits (same run):");
    let _ = writeln!(
        o,
        "  loopback TCP, process to process: {:.0} MB/s ({:.2} CPU s/GB, both ends); \
         64-byte round trip p50 {} ms, p99 {} ms",
        l.loopback_mb_s,
        l.loopback_cpu_s_per_gb,
        ms(l.loopback_rtt.p50_ms),
        ms(l.loopback_rtt.p99_ms)
    );
    let _ = writeln!(
        o,
        "  sequential write, 1 MiB writes, fdatasync every 4 MiB, growing file: {:.0} MB/s \
         (preallocated file: {:.0} MB/s)",
        l.disk_write_mb_s, l.disk_write_prealloc_mb_s
    );
    let _ = writeln!(
        o,
        "  fdatasync after a 4 KiB append: p50 {} ms, p99 {} ms, p99.9 {} ms ({} samples)",
        ms(l.fdatasync.p50_ms),
        ms(l.fdatasync.p99_ms),
        ms(l.fdatasync.p999_ms),
        l.fdatasync.count
    );
    if r.limit_runs.len() > 1 {
        let each = |g: &dyn Fn(&Limits) -> String| {
            r.limit_runs.iter().map(g).collect::<Vec<_>>().join(" / ")
        };
        let _ = writeln!(
            o,
            "  (best of {} measurements, start / end of the run: loopback {} MB/s, disk write \
             {} MB/s, fdatasync p99 {} ms)",
            r.limit_runs.len(),
            each(&|l| format!("{:.0}", l.loopback_mb_s)),
            each(&|l| format!("{:.0}", l.disk_write_mb_s)),
            each(&|l| ms(l.fdatasync.p99_ms)),
        );
    }
    o.push('\n');
    o.push_str(&table(&r.rows));
    let _ = writeln!(
        o,
        "\n×limit: lo = loopback MB/s, disk = fdatasync-every-4MiB write MB/s, fsync = \
         fdatasync latency (same percentile), rtt = loopback round trip (same percentile).\n\
         MB = 10^6 bytes of record values. produce latency: send to delivery report at full \
         speed (client queue ≤ 32 MiB); e2e: scheduled send to consumer receipt at a fixed rate.\n\
         CPU s/GB: user + system seconds per GB of record values moved; client: the producer \
         and/or consumer process (librdkafka), which share the machine's CPUs with the broker."
    );
    let e2e: Vec<&Row> = r.rows.iter().filter(|r| r.ack_lat.is_some()).collect();
    if !e2e.is_empty() {
        let _ = writeln!(o, "e2e rows, send to delivery report at the same rate:");
        for row in e2e {
            let a = row.ack_lat.unwrap_or_default();
            let _ = writeln!(
                o,
                "  {} {}: p50 {} ms, p99 {} ms, p99.9 {} ms",
                row.spec.setup(),
                row.spec.label(),
                ms(a.p50_ms),
                ms(a.p99_ms),
                ms(a.p999_ms)
            );
        }
    }
    let notes: Vec<&Row> = r.rows.iter().filter(|r| !r.notes.is_empty()).collect();
    if !notes.is_empty() {
        let _ = writeln!(o, "Notes:");
        for row in notes {
            let _ = writeln!(
                o,
                "  {} {}: {}",
                row.spec.setup(),
                row.spec.label(),
                row.notes.join("; ")
            );
        }
    }
    let _ = writeln!(o, "\nBrokers:");
    for b in &r.brokers {
        let _ = writeln!(
            o,
            "  {}: start {:.2} s, idle RSS {:.1} MB ({:.4} of RAM){}",
            b.name,
            b.startup_s,
            b.idle_rss_mb,
            b.idle_rss_ratio_mem,
            b.stop.as_ref().map_or(String::new(), |s| format!(
                ", stop {:.2} s{}",
                s.secs,
                if s.clean { "" } else { " (NOT clean)" }
            ))
        );
        for t in &b.topics {
            if t.partitions >= 100 {
                let _ = writeln!(
                    o,
                    "    topic {} ({} partitions, RF{}): leaders in Metadata after {:.2} s, all \
                     logs on disk after {:.2} s, RSS after {:.1} MB",
                    t.name, t.partitions, t.rf, t.create_s, t.logs_s, t.rss_after_mb
                );
            }
        }
    }
    if let Some(c) = &r.cluster {
        let _ =
            writeln!(
            o,
            "\n3-node cluster, 1 partition, 1 KiB, acks=all: RF3/RF1 produce throughput = {:.3} \
             (durable: fsync before the ack; mean of RF3 over mean of RF1; per round {:?}; \
             RF1 {:?} msgs/s, RF3 {:?} msgs/s){}",
            c.rf3_over_rf1_acks_all_durable,
            c.per_round.iter().map(|v| (v * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
            c.rf1_durable_msgs_per_s.iter().map(|v| v.round() as u64).collect::<Vec<_>>(),
            c.rf3_durable_msgs_per_s.iter().map(|v| v.round() as u64).collect::<Vec<_>>(),
            c.rf3_over_rf1_acks_all_background
                .map_or(String::new(), |b| format!("; background flush: {b:.3}"))
        );
    }
    if let Some(s) = &r.startup {
        let _ = writeln!(
            o,
            "\nStart-up with {:.1} GB ({} partitions, {:.1} GB of segments): filled at {:.0} MB/s, \
             clean shutdown {:.2} s{}, start {:.2} s until Metadata lists the topic{}, idle RSS \
             {:.1} MB; messages {} before, {} after",
            s.gb,
            s.partitions,
            s.stored_gb,
            s.fill_mb_per_s,
            s.shutdown.secs,
            if s.shutdown.clean { "" } else { " (NOT clean)" },
            s.startup_s,
            s.startup_logged_s
                .map_or(String::new(), |v| format!(" (broker log: {v:.2} s)")),
            s.idle_rss_mb,
            s.messages_before,
            s.messages_after
        );
    }
    if !r.targets.is_empty() {
        let _ = writeln!(o, "\nTargets:");
        let mut cells = vec![vec!["target".to_string(), "this run".into(), "".into()]];
        for t in &r.targets {
            cells.push(vec![
                t.target.clone(),
                t.figure.clone(),
                match t.met {
                    Some(true) => "met".into(),
                    Some(false) => "MISSED".into(),
                    None => "not measured".into(),
                },
            ]);
        }
        o.push_str(&render(&cells, &[false, false, false]));
    }
    if !r.problems.is_empty() {
        let _ = writeln!(o, "\nProblems:");
        for p in &r.problems {
            let _ = writeln!(o, "  - {p}");
        }
    }
    o
}

/// `weir-bench show FILE`.
pub fn show(file: &Path) -> anyhow::Result<()> {
    let r: Report = serde_json::from_slice(&std::fs::read(file)?)?;
    print!("{}", text(&r));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        let spec = Spec {
            kind: "produce".into(),
            nodes: 1,
            rf: 1,
            partitions: 1,
            size: 1024,
            acks: "all".into(),
            policy: "durable".into(),
            compression: "none".into(),
            topic_compression: None,
            linger_ms: 5,
            rate_mb_s: None,
            round: None,
        };
        Row {
            id: spec.id(),
            spec,
            msgs_per_s: 1_234_567.0,
            mb_per_s: 1264.2,
            lat: Some(Lat {
                count: 10,
                p50_ms: 1.5,
                p99_ms: 12.25,
                p999_ms: 130.0,
                max_ms: 140.0,
            }),
            ratios: Ratios {
                mb_limit: "disk".into(),
                mb: 0.75,
                lat_limit: Some("fdatasync".into()),
                p99: Some(2.5),
                ..Ratios::default()
            },
            ..Row::default()
        }
    }

    #[test]
    fn table_is_aligned_markdown() {
        let t = table(&[row()]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines
            .iter()
            .all(|l| l.chars().count() == lines[0].chars().count()));
        assert!(lines[1].starts_with("| ---"));
        assert!(lines[2].contains("1,234,567"));
        assert!(lines[2].contains("0.75 disk"));
        assert!(lines[2].contains("2.50 fsync"));
        assert!(lines[2].contains("produce 1KiB acks=all durable none"));
    }

    #[test]
    fn report_round_trips_through_json() {
        let r = Report {
            rows: vec![row()],
            ..Report::default()
        };
        let back: Report = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back.rows[0].spec, r.rows[0].spec);
        assert!(text(&back).contains("produce 1KiB"));
    }

    #[test]
    fn ids_distinguish_scenarios() {
        let a = row().spec;
        let mut b = a.clone();
        b.policy = "background".into();
        assert_ne!(a.id(), b.id());
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
    }
}
