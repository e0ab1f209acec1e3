//! `weir-bench run`: machine limits first, then the scenarios on brokers started here,
//! each figure with its ratio to the limit; the table on stdout, JSON to a file.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use crate::broker::{Sample, Target};
use crate::consume::ConsumeResult;
use crate::dirty;
use crate::machine::{self, LimitPlan, Limits};
use crate::produce::ProduceResult;
use crate::raw::RawResult;
use crate::report::{
    self, BrokerInfo, ClusterRatio, Ratios, Report, Row, Spec, Startup, TargetCheck, TopicInfo,
};
use crate::stats::mono_ns;
use crate::RunArgs;

mod acl;
mod scenarios;
mod setups;
mod targets;

use targets::targets;

const KINDS: &[&str] = &[
    "produce", "consume", "e2e", "cluster", "startup", "tls", "acl",
];
const KIB: usize = 1024;
/// Most bytes a produce scenario sends (it stops earlier when its time is up).
const MAX_PRODUCE_BYTES: u64 = 4 << 30;

struct Bench {
    exe: PathBuf,
    weir: PathBuf,
    dir: PathBuf,
    args: RunArgs,
    kinds: BTreeSet<String>,
    seconds: f64,
    warmup: f64,
    rep: Report,
    started: u64,
    topic_seq: u32,
    /// The round of a repeated scenario, recorded in its spec.
    round: Option<u32>,
    /// The certificates of the single node's SSL listener (the `tls` rows).
    pki: Option<crate::tls::Pki>,
    /// Produce and consume go to the SSL listener, and their rows are the TLS ones.
    via_tls: bool,
    /// Produce and consume run on the node with an authorizer and 10,000 ACLs.
    via_acl: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let started = mono_ns();
    let kinds: BTreeSet<String> = if args.only.is_empty() {
        let mut k: BTreeSet<String> = KINDS.iter().map(|s| s.to_string()).collect();
        if args.quick {
            k.remove("cluster");
            k.remove("startup");
        }
        k
    } else {
        for k in &args.only {
            if !KINDS.contains(&k.as_str()) {
                bail!(
                    "--only: unknown scenario kind {k:?} (kinds: {})",
                    KINDS.join(", ")
                );
            }
        }
        args.only.iter().cloned().collect()
    };
    let exe = std::env::current_exe()?;
    let weir = match &args.weir {
        Some(w) => w.clone(),
        None => exe.with_file_name("weir"),
    };
    if !weir.is_file() {
        bail!("no weir binary at {} (give --weir)", weir.display());
    }
    let (dir, made_dir) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => {
            let d = std::env::temp_dir().join(format!("weir-bench.{}", std::process::id()));
            (d, true)
        }
    };
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    let seconds = args.seconds.unwrap_or(if args.quick { 2.0 } else { 5.0 });
    let mut b = Bench {
        exe,
        weir,
        dir: dir.clone(),
        kinds,
        seconds,
        warmup: if args.quick { 0.3 } else { 0.5 },
        rep: Report::default(),
        started,
        topic_seq: 0,
        round: None,
        pki: None,
        via_tls: false,
        via_acl: false,
        args,
    };
    b.rep.meta = meta(&b.args, seconds);
    b.rep.meta.nofile = crate::broker::raise_nofile();
    let result = b.all();
    if let Err(e) = &result {
        b.problem(format!("run aborted: {e:#}"));
    }
    b.rep.targets = targets(&b.rep);
    b.rep.meta.wall_s = (mono_ns() - started) as f64 / 1e9;
    let text = report::text(&b.rep);
    print!("{text}");
    let json = serde_json::to_string_pretty(&b.rep)?;
    match b.args.json.as_deref() {
        Some("-") => println!("{json}"),
        Some(path) => {
            std::fs::write(path, json + "\n").with_context(|| format!("writing {path}"))?;
            eprintln!("weir-bench: JSON written to {path}");
        }
        None => {}
    }
    if !b.args.keep {
        if made_dir {
            let _ = std::fs::remove_dir_all(&dir);
        } else {
            for sub in ["single", "p100", "p10000", "cluster", "startup"] {
                let _ = std::fs::remove_dir_all(dir.join(sub));
            }
        }
    }
    result
}

fn meta(args: &RunArgs, seconds: f64) -> report::Meta {
    let sh = |cmd: &str, a: &[&str]| {
        Command::new(cmd)
            .args(a)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let mut commit = sh("git", &["rev-parse", "--short", "HEAD"]);
    if !sh("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty() {
        commit.push_str("+dirty");
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    report::Meta {
        date_utc: sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        commit,
        command: args
            .command
            .clone()
            .unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" ")),
        quick: args.quick,
        kernel: sh("uname", &["-r"]),
        cpu,
        produce_seconds: seconds,
        wall_s: 0.0,
        nofile: 0,
    }
}

/// Where a scenario runs: nodes, replication factor, partitions.
#[derive(Clone, Copy)]
struct At {
    nodes: u32,
    rf: u32,
    partitions: u32,
}

/// How a scenario sends.
struct Send {
    acks: &'static str,
    policy: &'static str,
    compression: &'static str,
    /// The topic's compression.type (None: Kafka's default, `producer`).
    topic_compression: Option<&'static str>,
    size: usize,
}

impl Bench {
    fn has(&self, kind: &str) -> bool {
        self.kinds.contains(kind)
    }

    fn log(&self, msg: impl AsRef<str>) {
        eprintln!(
            "[{:6.1}s] {}",
            (mono_ns() - self.started) as f64 / 1e9,
            msg.as_ref()
        );
    }

    fn problem(&mut self, p: String) {
        self.log(format!("PROBLEM: {p}"));
        self.rep.problems.push(p);
    }

    fn partition_counts(&self) -> Vec<u32> {
        if !self.args.partitions.is_empty() {
            return self.args.partitions.clone();
        }
        if self.args.quick {
            vec![1]
        } else {
            vec![1, 100, 1000, 10_000]
        }
    }

    fn all(&mut self) -> anyhow::Result<()> {
        self.log(format!("data and logs in {}", self.dir.display()));
        let plan = if self.args.quick {
            LimitPlan {
                loopback_s: 1.0,
                rtt_s: 0.5,
                disk_s: 1.0,
                fsync_s: 0.5,
            }
        } else {
            LimitPlan {
                loopback_s: 2.0,
                rtt_s: 1.0,
                disk_s: 2.0,
                fsync_s: 2.0,
            }
        };
        self.limits(&plan, "start")?;

        let single = self.has("produce") || self.has("consume") || self.has("e2e");
        if single {
            for p in self.partition_counts() {
                if let Err(e) = self.single_node(p) {
                    self.problem(format!("single node, {p} partitions: {e:#}"));
                }
            }
        }
        if self.has("cluster") {
            if let Err(e) = self.cluster() {
                self.problem(format!("3-node cluster: {e:#}"));
            }
        }
        if self.has("startup") {
            if let Err(e) = self.startup() {
                self.problem(format!("start-up: {e:#}"));
            }
        }
        // Once more at the end: the machine is shared, and a neighbour's burst during one
        // measurement would otherwise skew every ratio. The better of the two is the limit.
        self.limits(&plan, "end")?;
        self.rep.limits = machine::best(&self.rep.limit_runs);
        let limits = self.rep.limits.clone();
        for row in &mut self.rep.rows {
            apply_ratios(row, &limits);
        }
        Ok(())
    }

    fn limits(&mut self, plan: &LimitPlan, when: &str) -> anyhow::Result<()> {
        self.log(format!(
            "machine limits ({when} of the run): loopback TCP, disk write, fdatasync"
        ));
        let l = machine::measure(&self.dir, plan)?;
        self.log(format!(
            "  loopback {:.0} MB/s, rtt p99 {:.3} ms, disk write {:.0} MB/s (prealloc {:.0}), \
             fdatasync p50 {:.2} ms p99 {:.2} ms",
            l.loopback_mb_s,
            l.loopback_rtt.p99_ms,
            l.disk_write_mb_s,
            l.disk_write_prealloc_mb_s,
            l.fdatasync.p50_ms,
            l.fdatasync.p99_ms
        ));
        self.rep.limit_runs.push(l);
        self.rep.limits = machine::best(&self.rep.limit_runs);
        Ok(())
    }

    fn start_single(&mut self, name: &str, sub: &str) -> anyhow::Result<(Target, usize)> {
        let dir = self.dir.join(sub);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        // The 1-partition node also listens for TLS clients, for the TLS rows.
        self.pki = if sub == "single" && self.has("tls") {
            Some(crate::tls::make(&dir.join("pki"))?)
        } else {
            None
        };
        let keystore = self.pki.as_ref().map(|p| p.keystore.clone());
        let (t, startup_s) = Target::start_single(&self.weir, &dir, keystore.as_deref())?;
        let idx = self.add_broker(name, &t, startup_s);
        Ok((t, idx))
    }

    /// Records a started single node (after a second of idling); its index.
    fn add_broker(&mut self, name: &str, t: &Target, startup_s: f64) -> usize {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let idle = t.sample();
        self.log(format!(
            "{name}: started in {startup_s:.2} s on {}, idle RSS {:.1} MB",
            t.bootstrap, idle.rss_mb
        ));
        self.rep.brokers.push(BrokerInfo {
            name: name.to_string(),
            nodes: 1,
            startup_s,
            idle_rss_mb: idle.rss_mb,
            idle_rss_ratio_mem: idle.rss_mb / self.rep.limits.mem_total_mb.max(1.0),
            topics: vec![],
            stop: None,
        });
        self.rep.brokers.len() - 1
    }

    fn stop(&mut self, t: Target, idx: usize) {
        match t.stop() {
            Ok(s) => {
                if !s.clean {
                    self.problem(format!(
                        "{}: shutdown not clean: {}",
                        self.rep.brokers[idx].name, s.detail
                    ));
                }
                self.rep.brokers[idx].stop = Some(s);
            }
            Err(e) => self.problem(format!("{}: stopping: {e:#}", self.rep.brokers[idx].name)),
        }
    }

    fn new_topic(
        &mut self,
        t: &Target,
        idx: usize,
        partitions: u32,
        rf: u32,
        policy: &str,
    ) -> anyhow::Result<String> {
        self.new_topic_compressed(t, idx, partitions, rf, policy, None)
    }

    /// [`Self::new_topic`] with the topic's compression.type set when `compression` is.
    fn new_topic_compressed(
        &mut self,
        t: &Target,
        idx: usize,
        partitions: u32,
        rf: u32,
        policy: &str,
        compression: Option<&str>,
    ) -> anyhow::Result<String> {
        self.topic_seq += 1;
        let name = format!("bench-{}-{}", self.topic_seq, policy);
        let admin = t.admin()?;
        let mut configs = vec![("flush.policy", policy)];
        configs.extend(compression.map(|c| ("compression.type", c)));
        let create_s = admin
            .create_topic(&name, partitions, rf, &configs)
            .with_context(|| format!("creating {name} ({partitions} partitions, RF{rf})"))?;
        // Metadata can list leaders before the broker has created every log; wait for
        // the directories too, so that creation does not run into the measurement.
        let t0 = mono_ns();
        let want = (partitions * rf) as usize;
        while t.partition_dirs(&name).len() < want {
            if mono_ns() - t0 > 300_000_000_000 {
                bail!(
                    "{name}: {} of {want} partition directories 300 s after Metadata listed \
                     every leader",
                    t.partition_dirs(&name).len()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let logs_s = create_s + (mono_ns() - t0) as f64 / 1e9;
        let rss_after_mb = if partitions >= 100 {
            std::thread::sleep(std::time::Duration::from_millis(500));
            t.sample().rss_mb
        } else {
            0.0
        };
        if partitions >= 100 {
            self.log(format!(
                "  topic {name}: {partitions} partitions: leaders in Metadata after \
                 {create_s:.2} s, all logs on disk after {logs_s:.2} s, RSS {rss_after_mb:.1} MB"
            ));
        }
        self.rep.brokers[idx].topics.push(TopicInfo {
            name: name.clone(),
            partitions,
            rf,
            create_s,
            logs_s,
            rss_after_mb,
        });
        Ok(name)
    }

    fn delete_topic(&mut self, t: &Target, name: &str) {
        let t0 = mono_ns();
        let r = t.admin().and_then(|a| a.delete_topic(name));
        if let Err(e) = r {
            self.problem(format!("deleting {name}: {e:#}"));
        }
        let secs = (mono_ns() - t0) as f64 / 1e9;
        if secs > 2.0 {
            self.log(format!("  deleting {name} took {secs:.1} s"));
        }
    }

    /// Flushes the data file system, so that one scenario's dirty pages are not written
    /// back during the next.
    fn sync_disk(&self) {
        if let Ok(f) = std::fs::File::open(&self.dir) {
            use std::os::fd::AsRawFd;
            // SAFETY: syncfs on an fd we hold open.
            unsafe { libc::syncfs(f.as_raw_fd()) };
        }
    }

    fn child(&self, sub: &str, args: &[String]) -> Command {
        let mut c = Command::new(&self.exe);
        c.arg(sub).args(args).stdin(Stdio::null());
        c
    }

    fn produce_args(&self, bootstrap: &str, topic: &str, s: &Send, linger: u32) -> Vec<String> {
        self.produce_args_warmup(bootstrap, topic, s, linger, self.warmup)
    }

    /// Where a produce or consume child connects on `t`, with the `--set` arguments that
    /// takes: the SSL listener while the TLS rows run.
    fn client_endpoint(&self, t: &Target) -> (String, Vec<String>) {
        match (&t.tls_bootstrap, &self.pki) {
            (Some(b), Some(pki)) if self.via_tls => (
                b.clone(),
                pki.client_sets()
                    .into_iter()
                    .flat_map(|kv| ["--set".to_string(), kv])
                    .collect(),
            ),
            _ => (t.bootstrap.clone(), vec![]),
        }
    }

    fn produce_args_warmup(
        &self,
        bootstrap: &str,
        topic: &str,
        s: &Send,
        linger: u32,
        warmup: f64,
    ) -> Vec<String> {
        vec![
            "--bootstrap".into(),
            bootstrap.into(),
            "--topic".into(),
            topic.into(),
            "--size".into(),
            s.size.to_string(),
            "--acks".into(),
            s.acks.into(),
            "--compression".into(),
            s.compression.into(),
            "--linger-ms".into(),
            linger.to_string(),
            "--warmup".into(),
            warmup.to_string(),
        ]
    }

    fn run_producer(&self, args: Vec<String>) -> anyhow::Result<ProduceResult> {
        self.run_child("produce", &args)
    }

    /// Runs a child (`produce`, `consume`, `raw-produce`, ...) to its end and parses the
    /// JSON line it prints.
    fn run_child<T: serde::de::DeserializeOwned>(
        &self,
        sub: &str,
        args: &[String],
    ) -> anyhow::Result<T> {
        let out = self
            .child(sub, args)
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running {sub}"))?;
        if !out.status.success() {
            bail!("{sub} failed ({})", out.status);
        }
        serde_json::from_slice(&out.stdout).with_context(|| format!("{sub} output"))
    }

    fn spec(&self, kind: &str, nodes: u32, rf: u32, partitions: u32, s: &Send) -> Spec {
        Spec {
            kind: kind.into(),
            nodes,
            rf,
            partitions,
            size: s.size,
            acks: s.acks.into(),
            policy: s.policy.into(),
            compression: s.compression.into(),
            topic_compression: s.topic_compression.map(Into::into),
            linger_ms: 5,
            rate_mb_s: None,
            round: self.round,
        }
    }

    /// Fills in the resource figures and ratios of a row and records it.
    fn finish_row(&mut self, mut row: Row, before: Sample, after: Sample, client_cpu: f64) -> Row {
        let l = &self.rep.limits;
        let gb = row.bytes as f64 / 1e9;
        row.id = row.spec.id();
        row.broker_cpu_s_per_gb = (after.cpu_s - before.cpu_s) / gb.max(1e-9);
        row.client_cpu_s_per_gb = client_cpu / gb.max(1e-9);
        row.peak_rss_mb = after.hwm_mb;
        apply_ratios(&mut row, l);
        let lat = row.lat.map_or(String::new(), |l| {
            format!(
                ", p50 {:.2} ms p99 {:.2} ms p99.9 {:.2} ms",
                l.p50_ms, l.p99_ms, l.p999_ms
            )
        });
        self.log(format!(
            "  {}: {:.0} msgs/s, {:.1} MB/s ({:.2} of {}){lat}, broker {:.2} CPU s/GB, \
             peak RSS {:.1} MB",
            row.id,
            row.msgs_per_s,
            row.mb_per_s,
            row.ratios.mb,
            row.ratios.mb_limit,
            row.broker_cpu_s_per_gb,
            row.peak_rss_mb
        ));
        self.rep.rows.push(row.clone());
        row
    }
}

/// Text without ANSI colour sequences (ESC [ ... letter).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Each figure of a row divided by the machine limit it is compared with.
fn apply_ratios(row: &mut Row, l: &Limits) {
    let durable_ack = row.spec.acks == "all" && row.spec.policy == "durable";
    // Sustained background flush is held to the disk's rate once the page cache is full
    // of dirty pages (dirty.rs), so that row compares with the disk too.
    let disk_bound =
        (durable_ack && row.spec.kind == "produce") || row.spec.kind == "produce-raw-sustained";
    let mb_limit = if disk_bound {
        l.disk_write_mb_s
    } else {
        l.loopback_mb_s
    };
    row.ratios = Ratios {
        mb_limit: if disk_bound { "disk" } else { "loopback" }.into(),
        mb: row.mb_per_s / mb_limit.max(1e-9),
        cpu: row.broker_cpu_s_per_gb / l.loopback_cpu_s_per_gb.max(1e-9),
        rss_mem: row.peak_rss_mb / l.mem_total_mb.max(1.0),
        ..Ratios::default()
    };
    if let Some(lat) = &row.lat {
        let (name, lim) = if durable_ack {
            ("fdatasync", &l.fdatasync)
        } else {
            ("loopback_rtt", &l.loopback_rtt)
        };
        row.ratios.lat_limit = Some(name.into());
        row.ratios.p50 = Some(lat.p50_ms / lim.p50_ms.max(1e-6));
        row.ratios.p99 = Some(lat.p99_ms / lim.p99_ms.max(1e-6));
        row.ratios.p999 = Some(lat.p999_ms / lim.p999_ms.max(1e-6));
    }
}

/// The last "elapsed_ms=N" of a "broker started" log line.
fn last_elapsed_ms(log: &str) -> Option<f64> {
    strip_ansi(log)
        .lines()
        .rev()
        .find(|l| l.contains("broker started"))
        .and_then(|l| l.split("elapsed_ms=").nth(1))
        .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|v| v.parse().ok())
}

fn find<'a>(rep: &'a Report, spec: &Spec) -> Option<&'a Row> {
    let id = spec.id();
    rep.rows.iter().find(|r| r.id == id)
}

fn spec(kind: &str, p: u32, size: usize, acks: &str, policy: &str) -> Spec {
    Spec {
        kind: kind.into(),
        nodes: 1,
        rf: 1,
        partitions: p,
        size,
        acks: acks.into(),
        policy: policy.into(),
        compression: "none".into(),
        topic_compression: None,
        linger_ms: 5,
        rate_mb_s: None,
        round: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_from_the_log() {
        let log = "x broker started node_id=1 elapsed_ms=12\ny\n\
                   z INFO weir::broker: broker started node_id=1 elapsed_ms=345\n";
        assert_eq!(last_elapsed_ms(log), Some(345.0));
        let coloured = "\u{1b}[2mweir::broker\u{1b}[0m broker started \
                        \u{1b}[3melapsed_ms\u{1b}[0m\u{1b}[2m=\u{1b}[0m10\n";
        assert_eq!(last_elapsed_ms(coloured), Some(10.0));
        assert_eq!(last_elapsed_ms("nothing"), None);
    }

    #[test]
    fn targets_unmeasured_are_none() {
        let t = targets(&Report::default());
        assert_eq!(t.len(), 9);
        assert!(t.iter().all(|c| c.met.is_none()));
    }
}
