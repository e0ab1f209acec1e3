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

const KINDS: &[&str] = &["produce", "consume", "e2e", "cluster", "startup"];
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
        let (t, startup_s) = Target::start_single(&self.weir, &dir, &[])?;
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
        Ok((t, self.rep.brokers.len() - 1))
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

    /// A produce scenario on its own topic (deleted afterwards unless `keep`).
    fn produce(
        &mut self,
        t: &Target,
        idx: usize,
        at: At,
        s: &Send,
        keep: bool,
    ) -> anyhow::Result<(Row, String, ProduceResult)> {
        let At {
            nodes,
            rf,
            partitions,
        } = at;
        let topic =
            self.new_topic_compressed(t, idx, partitions, rf, s.policy, s.topic_compression)?;
        self.sync_disk();
        let stored_before = t.stored_bytes(&topic);
        let mut args = self.produce_args(&t.bootstrap, &topic, s, 5);
        args.extend(["--seconds".into(), self.seconds.to_string()]);
        args.extend(["--max-bytes".into(), MAX_PRODUCE_BYTES.to_string()]);
        t.reset_peak();
        let before = t.sample();
        let r = self.run_producer(args)?;
        let after = t.sample();
        let spec = self.spec("produce", nodes, rf, partitions, s);
        if r.errors > 0 {
            self.problem(format!(
                "{}: {} delivery errors, first: {}",
                spec.id(),
                r.errors,
                r.first_error.clone().unwrap_or_default()
            ));
        }
        let stored = t.stored_bytes(&topic).saturating_sub(stored_before);
        let row = Row {
            spec,
            msgs_per_s: r.msgs_per_s,
            mb_per_s: r.mb_per_s,
            lat: Some(r.lat),
            bytes: r.delivered_bytes,
            stored_per_payload: Some(stored as f64 / (r.delivered_bytes as f64).max(1.0)),
            errors: r.errors,
            notes: if r.queue_full > 0 {
                vec![format!("client queue full {} times", r.queue_full)]
            } else {
                vec![]
            },
            ..Row::default()
        };
        let cpu = r.cpu_s;
        let row = self.finish_row(row, before, after, cpu);
        if !keep {
            self.delete_topic(t, &topic);
        }
        Ok((row, topic, r))
    }

    /// Consumes `topic` from the beginning; `expect` messages are in it.
    fn consume(
        &mut self,
        t: &Target,
        nodes: u32,
        rf: u32,
        partitions: u32,
        topic: &str,
        expect: u64,
    ) -> anyhow::Result<Row> {
        t.reset_peak();
        let before = t.sample();
        let mut args: Vec<String> = vec![
            "--bootstrap".into(),
            t.bootstrap.clone(),
            "--topic".into(),
            topic.into(),
            "--partitions".into(),
            partitions.to_string(),
            "--expect".into(),
            expect.to_string(),
            "--deadline".into(),
            "120".into(),
        ];
        if partitions >= 10_000 {
            // librdkafka 2.12 with its default queued.min.messages (100,000 per partition)
            // stalls on 10,000 partitions: the consumer spins a CPU and stops receiving
            // with 5-20 % unread (confluent-kafka 2.16 reads everything from the same
            // broker). Asking it to prefetch less per partition avoids that; it then spends its
            // time in fetches that long-poll on the drained partitions (see performance.md).
            args.extend(["--set".into(), "queued.min.messages=1000".into()]);
        }
        let r: ConsumeResult = self.run_child("consume", &args)?;
        let after = t.sample();
        let spec = Spec {
            kind: "consume".into(),
            nodes,
            rf,
            partitions,
            size: KIB,
            acks: "1".into(),
            policy: "background".into(),
            compression: "none".into(),
            topic_compression: None,
            linger_ms: 5,
            rate_mb_s: None,
            round: None,
        };
        let mut notes = vec![format!("first message {:.3} s after assign", r.startup_s)];
        if r.incomplete || r.errors > 0 {
            self.problem(format!(
                "{}: read {} of {} messages, {} errors{}",
                spec.id(),
                r.msgs,
                expect,
                r.errors,
                r.first_error
                    .as_ref()
                    .map_or(String::new(), |e| format!(", first: {e}"))
            ));
            notes.push("incomplete".into());
        }
        let row = Row {
            spec,
            msgs_per_s: r.msgs_per_s,
            mb_per_s: r.mb_per_s,
            lat: None,
            bytes: r.bytes,
            errors: r.errors,
            notes,
            ..Row::default()
        };
        Ok(self.finish_row(row, before, after, r.cpu_s))
    }

    /// End-to-end latency at a fixed rate: the consumer (started first) reads what the
    /// producer sends, each payload stamped with its scheduled send time.
    fn e2e(
        &mut self,
        t: &Target,
        idx: usize,
        nodes: u32,
        rf: u32,
        s: &Send,
        linger: u32,
    ) -> anyhow::Result<Row> {
        let topic = self.new_topic(t, idx, 1, rf, s.policy)?;
        self.sync_disk();
        let rate_mb = self.args.e2e_mbps;
        let rate = rate_mb * 1e6 / s.size as f64;
        t.reset_peak();
        let before = t.sample();
        let cargs: Vec<String> = vec![
            "--bootstrap".into(),
            t.bootstrap.clone(),
            "--topic".into(),
            topic.clone(),
            "--e2e".into(),
            "--ready".into(),
            "--idle".into(),
            "1.5".into(),
            "--warmup".into(),
            self.warmup.to_string(),
            "--deadline".into(),
            (self.seconds + 60.0).to_string(),
        ];
        let mut consumer = self
            .child("consume", &cargs)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the consumer")?;
        let mut out = BufReader::new(consumer.stdout.take().context("consumer stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        if line.trim() != "READY" {
            let _ = consumer.kill();
            let _ = consumer.wait();
            bail!("consumer did not get ready: {line:?}");
        }
        let mut pargs = self.produce_args(&t.bootstrap, &topic, s, linger);
        pargs.extend(["--seconds".into(), self.seconds.to_string()]);
        pargs.extend(["--rate".into(), rate.to_string()]);
        let p = self.run_producer(pargs);
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                let _ = consumer.kill();
                let _ = consumer.wait();
                return Err(e);
            }
        };
        line.clear();
        out.read_line(&mut line)?;
        consumer.wait()?;
        let after = t.sample();
        let c: ConsumeResult = serde_json::from_str(&line).context("consumer output")?;
        let mut spec = self.spec("e2e", nodes, rf, 1, s);
        spec.linger_ms = linger;
        spec.rate_mb_s = Some(rate_mb);
        if c.msgs != p.delivered || p.errors > 0 || c.errors > 0 {
            self.problem(format!(
                "{}: produced {} (errors {}), consumed {} (errors {})",
                spec.id(),
                p.delivered,
                p.errors,
                c.msgs,
                c.errors
            ));
        }
        let mut notes = vec![];
        let achieved = p.mb_per_s;
        if achieved < 0.95 * rate_mb {
            notes.push(format!("producer reached only {achieved:.1} MB/s"));
        }
        let row = Row {
            spec,
            msgs_per_s: p.msgs_per_s,
            mb_per_s: p.mb_per_s,
            lat: c.lat,
            ack_lat: Some(p.lat),
            bytes: p.delivered_bytes,
            errors: p.errors + c.errors,
            notes,
            ..Row::default()
        };
        let row = self.finish_row(row, before, after, p.cpu_s + c.cpu_s);
        self.log(format!(
            "    send→ack at that rate: p50 {:.2} ms p99 {:.2} ms",
            p.lat.p50_ms, p.lat.p99_ms
        ));
        self.delete_topic(t, &topic);
        Ok(row)
    }

    /// The base produce case and its consume again, with the raw client of `raw.rs`:
    /// what the broker does when the client costs next to no CPU. The full run adds
    /// 100-byte records, and a run long enough to pass the kernel's dirty-page limit
    /// (`dirty.rs`), where background flush is held to the disk's rate.
    fn raw(&mut self, t: &Target, idx: usize) -> anyhow::Result<()> {
        let topic = self.new_topic(t, idx, 1, 1, "background")?;
        // A short window: the page cache takes all of it before the kernel's dirty-page
        // limit, so this is the broker's own rate (the sustained row below is the disk's).
        let burst = self.seconds.min(1.0);
        let (r, mut spec) = self.raw_produce(t, &topic, "produce-raw", KIB, self.warmup, burst)?;
        let args: Vec<String> = vec![
            "--bootstrap".into(),
            t.bootstrap.clone(),
            "--topic".into(),
            topic.clone(),
            "--size".into(),
            KIB.to_string(),
            "--expect".into(),
            r.total_msgs.to_string(),
        ];
        t.reset_peak();
        let before = t.sample();
        let c = self.run_child::<RawResult>("raw-consume", &args)?;
        let after = t.sample();
        spec.kind = "consume-raw".into();
        let row = Row {
            spec,
            msgs_per_s: c.msgs_per_s,
            mb_per_s: c.mb_per_s,
            bytes: c.bytes,
            errors: c.errors,
            notes: vec!["records counted from batch headers, not parsed".into()],
            ..Row::default()
        };
        self.finish_row(row, before, after, c.cpu_s);
        self.delete_topic(t, &topic);
        if self.args.quick {
            return Ok(());
        }
        let topic = self.new_topic(t, idx, 1, 1, "background")?;
        self.raw_produce(t, &topic, "produce-raw", 100, self.warmup, burst)?;
        self.delete_topic(t, &topic);
        // Warm up until well past the dirty-page limit at the ~2 GB/s the page cache takes.
        let warmup = (dirty::free_run_bytes() as f64 / 1e9 + 2.0).clamp(3.0, 30.0);
        let topic = self.new_topic(t, idx, 1, 1, "background")?;
        let seconds = self.seconds;
        self.raw_produce(t, &topic, "produce-raw-sustained", KIB, warmup, seconds)?;
        self.delete_topic(t, &topic);
        Ok(())
    }

    /// One raw-client produce row on `topic` (1 partition, acks=1, background flush),
    /// after flushing the disk so that earlier rows' dirty pages do not count here.
    fn raw_produce(
        &mut self,
        t: &Target,
        topic: &str,
        kind: &str,
        size: usize,
        warmup: f64,
        seconds: f64,
    ) -> anyhow::Result<(RawResult, Spec)> {
        self.sync_disk();
        let args: Vec<String> = vec![
            "--bootstrap".into(),
            t.bootstrap.clone(),
            "--topic".into(),
            topic.into(),
            "--size".into(),
            size.to_string(),
            "--seconds".into(),
            seconds.to_string(),
            "--warmup".into(),
            warmup.to_string(),
        ];
        t.reset_peak();
        let before = t.sample();
        let r = self.run_child::<RawResult>("raw-produce", &args)?;
        let after = t.sample();
        let dirty_mb = dirty::dirty_bytes() as f64 / 1e6;
        let mut spec = self.spec(
            kind,
            1,
            1,
            1,
            &Send {
                acks: "1",
                policy: "background",
                compression: "none",
                topic_compression: None,
                size,
            },
        );
        spec.linger_ms = 0;
        if r.errors > 0 {
            self.problem(format!(
                "{}: {} errors, first: {}",
                spec.id(),
                r.errors,
                r.first_error.clone().unwrap_or_default()
            ));
        }
        let row = Row {
            spec: spec.clone(),
            msgs_per_s: r.msgs_per_s,
            mb_per_s: r.mb_per_s,
            lat: r.lat,
            bytes: r.total_msgs * size as u64,
            errors: r.errors,
            notes: vec![
                "one pre-encoded 1 MiB batch sent over and over, 5 in flight".into(),
                format!(
                    "{seconds:.1} s measured after {warmup:.1} s of warm-up; page cache dirty \
                     or under writeback at the end: {dirty_mb:.0} MB"
                ),
            ],
            ..Row::default()
        };
        self.finish_row(row, before, after, r.cpu_s);
        Ok((r, spec))
    }

    fn single_node(&mut self, partitions: u32) -> anyhow::Result<()> {
        // Weir keeps at most one descriptor per segment (index files are never held
        // open), in a cache sized to three quarters of the open-file limit by default:
        // past that, segment files are closed and reopened as the load moves around.
        let cache =
            self.rep.meta.nofile - (self.rep.meta.nofile / 4).max(64).min(self.rep.meta.nofile);
        if (partitions as u64) > cache {
            self.log(format!(
                "note: {partitions} partitions exceed Weir's default segment handle cache \
                 ({cache}: three quarters of the open-file limit {}); active segment files \
                 are reopened as the load moves between partitions",
                self.rep.meta.nofile
            ));
        }
        let sub = if partitions == 1 {
            "single".to_string()
        } else {
            format!("p{partitions}")
        };
        let (t, idx) = self.start_single(&format!("1 node (P{partitions} scenarios)"), &sub)?;
        let r = self.single_node_scenarios(&t, idx, partitions);
        self.stop(t, idx);
        r
    }

    fn single_node_scenarios(&mut self, t: &Target, idx: usize, p: u32) -> anyhow::Result<()> {
        let base = Send {
            acks: "1",
            policy: "background",
            compression: "none",
            topic_compression: None,
            size: KIB,
        };
        // The base case first, then consume the topic it wrote (page cache hot).
        if self.has("produce") || self.has("consume") {
            let (_, topic, r) = self.produce(
                t,
                idx,
                At {
                    nodes: 1,
                    rf: 1,
                    partitions: p,
                },
                &base,
                true,
            )?;
            if r.errors > 0 || r.delivered == 0 {
                // Reported by produce(); what follows would only wait on the same fault.
                bail!("the base produce scenario failed; skipping the rest at {p} partitions");
            }
            if self.has("consume") {
                if let Err(e) = self.consume(t, 1, 1, p, &topic, r.delivered) {
                    self.problem(format!("consume, {p} partitions: {e:#}"));
                }
            }
            self.delete_topic(t, &topic);
        }
        if p == 1 && (self.has("produce") || self.has("consume")) {
            if let Err(e) = self.raw(t, idx) {
                self.problem(format!("raw client: {e:#}"));
            }
        }
        if self.has("produce") {
            let mut sends = vec![];
            if p == 1 {
                // Who compresses: the producer (stored as sent) or the broker
                // (uncompressed batches rewritten by the topic's compression.type), each
                // codec at its default level (Kafka's for the broker: zstd 3, lz4 9).
                let mut pairs = vec![("zstd", None), ("none", Some("zstd"))];
                if !self.args.quick {
                    pairs.push(("none", Some("lz4")));
                }
                for (compression, topic_compression) in pairs {
                    sends.push(Send {
                        acks: "1",
                        policy: "background",
                        compression,
                        topic_compression,
                        size: KIB,
                    });
                }
            }
            if self.args.quick || p > 1 {
                sends.push(Send {
                    acks: "all",
                    policy: "durable",
                    compression: "none",
                    topic_compression: None,
                    size: KIB,
                });
            } else {
                for size in [KIB, 100] {
                    for compression in ["none", "lz4"] {
                        for (acks, policy) in [
                            ("1", "background"),
                            ("all", "background"),
                            ("1", "durable"),
                            ("all", "durable"),
                        ] {
                            let s = Send {
                                acks,
                                policy,
                                compression,
                                topic_compression: None,
                                size,
                            };
                            // The base case ran first.
                            if !(size == KIB
                                && compression == "none"
                                && acks == "1"
                                && policy == "background")
                            {
                                sends.push(s);
                            }
                        }
                    }
                }
            }
            for s in &sends {
                if let Err(e) = self.produce(
                    t,
                    idx,
                    At {
                        nodes: 1,
                        rf: 1,
                        partitions: p,
                    },
                    s,
                    false,
                ) {
                    self.problem(format!(
                        "produce {}B acks={} {} {}, {p} partitions: {e:#}",
                        s.size, s.acks, s.policy, s.compression
                    ));
                }
            }
        }
        if self.has("e2e") && p == 1 {
            let lingers: &[u32] = if self.args.quick { &[5] } else { &[5, 0] };
            for &linger in lingers {
                for policy in ["background", "durable"] {
                    let s = Send {
                        acks: "all",
                        policy,
                        compression: "none",
                        topic_compression: None,
                        size: KIB,
                    };
                    if let Err(e) = self.e2e(t, idx, 1, 1, &s, linger) {
                        self.problem(format!("e2e {policy} linger {linger}: {e:#}"));
                    }
                }
            }
        }
        Ok(())
    }

    fn cluster(&mut self) -> anyhow::Result<()> {
        let dir = self.dir.join("cluster");
        let _ = std::fs::remove_dir_all(&dir);
        self.log("3-node cluster: starting with scripts/cluster");
        let (t, startup_s) = Target::start_cluster(&self.args.cluster_script, &self.weir, &dir, 3)?;
        std::thread::sleep(std::time::Duration::from_secs(1));
        let idle = t.sample();
        self.log(format!(
            "3 nodes: started in {startup_s:.2} s on {}, idle RSS {:.1} MB (sum)",
            t.bootstrap, idle.rss_mb
        ));
        self.rep.brokers.push(BrokerInfo {
            name: "3-node cluster (scripts/cluster; metrics endpoint off)".into(),
            nodes: 3,
            startup_s,
            idle_rss_mb: idle.rss_mb,
            idle_rss_ratio_mem: idle.rss_mb / self.rep.limits.mem_total_mb.max(1.0),
            topics: vec![],
            stop: None,
        });
        let idx = self.rep.brokers.len() - 1;
        let r = self.cluster_scenarios(&t, idx);
        self.stop(t, idx);
        r
    }

    fn cluster_scenarios(&mut self, t: &Target, idx: usize) -> anyhow::Result<()> {
        let rounds = if self.args.quick { 1 } else { 3 };
        let mut ratio = ClusterRatio::default();
        for policy in ["durable", "background"] {
            let s = Send {
                acks: "all",
                policy,
                compression: "none",
                topic_compression: None,
                size: KIB,
            };
            let (mut a, mut b) = (vec![], vec![]);
            let n = if policy == "durable" { rounds } else { 1 };
            // Alternate RF1 and RF3, each on a new topic, so that drifting noise from
            // the rest of the machine falls on both.
            for round in 1..=n {
                self.round = (n > 1).then_some(round);
                a.push(
                    self.produce(
                        t,
                        idx,
                        At {
                            nodes: 3,
                            rf: 1,
                            partitions: 1,
                        },
                        &s,
                        false,
                    )?
                    .0
                    .msgs_per_s,
                );
                b.push(
                    self.produce(
                        t,
                        idx,
                        At {
                            nodes: 3,
                            rf: 3,
                            partitions: 1,
                        },
                        &s,
                        false,
                    )?
                    .0
                    .msgs_per_s,
                );
            }
            self.round = None;
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let r = mean(&b) / mean(&a).max(1e-9);
            self.log(format!("  RF3/RF1 acks=all {policy}: {r:.3}"));
            if policy == "durable" {
                ratio.rf3_over_rf1_acks_all_durable = r;
                ratio.per_round = a.iter().zip(&b).map(|(a, b)| b / a.max(1e-9)).collect();
                ratio.rf1_durable_msgs_per_s = a;
                ratio.rf3_durable_msgs_per_s = b;
            } else {
                ratio.rf3_over_rf1_acks_all_background = Some(r);
            }
        }
        self.rep.cluster = Some(ratio);
        let base = Send {
            acks: "1",
            policy: "background",
            compression: "none",
            topic_compression: None,
            size: KIB,
        };
        let (_, topic, r) = self.produce(
            t,
            idx,
            At {
                nodes: 3,
                rf: 3,
                partitions: 1,
            },
            &base,
            true,
        )?;
        if let Err(e) = self.consume(t, 3, 3, 1, &topic, r.delivered) {
            self.problem(format!("cluster consume: {e:#}"));
        }
        self.delete_topic(t, &topic);
        for policy in ["background", "durable"] {
            let s = Send {
                acks: "all",
                policy,
                compression: "none",
                topic_compression: None,
                size: KIB,
            };
            if let Err(e) = self.e2e(t, idx, 3, 3, &s, 5) {
                self.problem(format!("cluster e2e {policy}: {e:#}"));
            }
        }
        Ok(())
    }

    fn startup(&mut self) -> anyhow::Result<()> {
        let gb = self.args.startup_gb;
        let (t, idx) = self.start_single("1 node (start-up scenario)", "startup")?;
        let partitions = 10;
        let res = (|| -> anyhow::Result<Target> {
            let topic = self.new_topic(&t, idx, partitions, 1, "background")?;
            self.log(format!(
                "start-up: writing {gb} GB to {topic} ({partitions} partitions)"
            ));
            let s = Send {
                acks: "1",
                policy: "background",
                compression: "none",
                topic_compression: None,
                size: KIB,
            };
            let mut args = self.produce_args_warmup(&t.bootstrap, &topic, &s, 5, 0.0);
            let bytes = (gb * 1e9) as u64;
            args.extend(["--seconds".into(), "3600".into()]);
            args.extend(["--max-bytes".into(), bytes.to_string()]);
            let r = self.run_producer(args)?;
            if r.errors > 0 {
                self.problem(format!("start-up fill: {} delivery errors", r.errors));
            }
            let stored = t.stored_bytes(&topic);
            self.log(format!(
                "  wrote {:.2} GB at {:.0} MB/s; stopping cleanly and restarting",
                stored as f64 / 1e9,
                r.mb_per_s
            ));
            let (t2, stopped, startup_s) = t.restart(&topic)?;
            if !stopped.clean {
                self.problem(format!("start-up: shutdown not clean: {}", stopped.detail));
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
            let idle = t2.sample();
            let after = t2.admin()?.high_watermarks(&topic, partitions)?;
            if after != r.delivered as i64 {
                self.problem(format!(
                    "start-up: {} messages acknowledged before the restart, high watermarks \
                     sum to {after} after",
                    r.delivered
                ));
            }
            let logged = std::fs::read_to_string(self.dir.join("startup/weir.log"))
                .ok()
                .and_then(|s| last_elapsed_ms(&s))
                .map(|ms| ms / 1000.0);
            self.log(format!(
                "  restarted in {startup_s:.2} s (broker log: {logged:?} s), shutdown took \
                 {:.2} s, idle RSS {:.1} MB",
                stopped.secs, idle.rss_mb
            ));
            self.rep.startup = Some(Startup {
                gb,
                partitions,
                fill_mb_per_s: r.mb_per_s,
                stored_gb: stored as f64 / 1e9,
                shutdown: stopped,
                startup_s,
                startup_logged_s: logged,
                idle_rss_mb: idle.rss_mb,
                messages_before: r.delivered,
                messages_after: after,
            });
            Ok(t2)
        })();
        match res {
            Ok(t2) => {
                self.stop(t2, idx);
                Ok(())
            }
            Err(e) => Err(e),
        }
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

/// The issue's targets, checked against this run.
fn targets(rep: &Report) -> Vec<TargetCheck> {
    let l = &rep.limits;
    let mut out = vec![];
    let mut check = |target: &str, v: Option<(String, bool)>| {
        out.push(TargetCheck {
            target: target.into(),
            figure: v.as_ref().map_or("-".into(), |(f, _)| f.clone()),
            met: v.map(|(_, m)| m),
        });
    };
    // The broker alone, as the raw client rows measure it (full run), beside a target
    // the librdkafka row misses.
    let raw = |kind: &str, size: usize| {
        let mut s = spec(kind, 1, size, "1", "background");
        s.linger_ms = 0;
        find(rep, &s)
    };
    let pct = |r: &Row| format!("{:.0} MB/s = {:.0}%", r.mb_per_s, r.ratios.mb * 100.0);
    let base = find(rep, &spec("produce", 1, KIB, "1", "background"));
    check(
        "produce, background flush (acks=1, 1 KiB) ≥ 50% of loopback",
        base.map(|r| {
            let mut f = pct(r);
            if let Some(b) = raw("produce-raw", KIB) {
                f += &format!("; raw client {}", pct(b));
            }
            if let Some(s) = raw("produce-raw-sustained", KIB) {
                f += &format!(
                    "; sustained past the dirty-page limit {:.0} MB/s = {:.0}% of disk",
                    s.mb_per_s,
                    s.ratios.mb * 100.0
                );
            }
            (f, r.ratios.mb >= 0.5)
        }),
    );
    check(
        "produce acks=all, fsync before the ack ≥ 70% of fdatasync-every-4MiB write",
        find(rep, &spec("produce", 1, KIB, "all", "durable")).map(|r| {
            (
                format!("{:.0} MB/s = {:.0}%", r.mb_per_s, r.ratios.mb * 100.0),
                r.ratios.mb >= 0.7,
            )
        }),
    );
    check(
        "consume ≥ 60% of loopback",
        find(rep, &spec("consume", 1, KIB, "1", "background")).map(|r| {
            let mut f = pct(r);
            if let Some(c) = raw("consume-raw", KIB) {
                f += &format!("; raw client {}", pct(c));
            }
            (f, r.ratios.mb >= 0.6)
        }),
    );
    check(
        "100-byte records ≥ 1,500,000 msgs/s (acks=1, background)",
        find(rep, &spec("produce", 1, 100, "1", "background")).map(|r| {
            let mut f = format!("{:.0} msgs/s", r.msgs_per_s);
            if let Some(b) = raw("produce-raw", 100) {
                f += &format!("; raw client {:.0} msgs/s", b.msgs_per_s);
            }
            (f, r.msgs_per_s >= 1.5e6)
        }),
    );
    let e2e = |policy: &str| {
        let mut s = spec("e2e", 1, KIB, "all", policy);
        s.rate_mb_s = Some(50.0);
        find(rep, &s).and_then(|r| r.lat)
    };
    check(
        "end-to-end p99 at 50 MB/s < 5 ms, background flush",
        e2e("background").map(|lat| (format!("p99 {:.2} ms", lat.p99_ms), lat.p99_ms < 5.0)),
    );
    check(
        "end-to-end p99 at 50 MB/s < 2× fdatasync p99, fsync before the ack",
        e2e("durable").map(|lat| {
            (
                format!(
                    "p99 {:.2} ms = {:.1}× fdatasync p99 ({:.2} ms)",
                    lat.p99_ms,
                    lat.p99_ms / l.fdatasync.p99_ms.max(1e-6),
                    l.fdatasync.p99_ms
                ),
                lat.p99_ms < 2.0 * l.fdatasync.p99_ms,
            )
        }),
    );
    check(
        "idle RSS < 20 MB",
        rep.brokers
            .first()
            .filter(|b| b.nodes == 1)
            .map(|b| (format!("{:.1} MB", b.idle_rss_mb), b.idle_rss_mb < 20.0)),
    );
    let failed_10k = rep.problems.iter().any(|p| p.contains("10000 partitions"));
    check(
        "10,000 partitions on one node ≥ half of 1-partition throughput (acks=1, background)",
        find(rep, &spec("produce", 10_000, KIB, "1", "background"))
            .zip(base)
            .filter(|(p, _)| p.errors == 0)
            .map(|(p, b)| {
                let r = p.msgs_per_s / b.msgs_per_s.max(1e-9);
                (
                    format!(
                        "{:.0} vs {:.0} msgs/s = {:.0}%",
                        p.msgs_per_s,
                        b.msgs_per_s,
                        r * 100.0
                    ),
                    r >= 0.5,
                )
            }),
    );
    if failed_10k
        && out
            .last()
            .is_some_and(|c| c.met.is_none() || c.met == Some(true))
    {
        let last = out.last_mut().unwrap();
        last.figure = "failed at 10,000 partitions (see problems)".into();
        last.met = Some(false);
    }
    let mut check = |target: &str, v: Option<(String, bool)>| {
        out.push(TargetCheck {
            target: target.into(),
            figure: v.as_ref().map_or("-".into(), |(f, _)| f.clone()),
            met: v.map(|(_, m)| m),
        });
    };
    check(
        "start-up with 10 GB of data < 2 s after clean shutdown",
        rep.startup.as_ref().map(|s| {
            (
                format!("{:.2} s with {:.1} GB", s.startup_s, s.stored_gb),
                s.startup_s < 2.0 && s.stored_gb >= 10.0,
            )
        }),
    );
    out
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
