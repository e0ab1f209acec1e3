//! The brokers under test: a single `weir` process started here, or a local cluster
//! through scripts/cluster; their RSS and CPU from /proc; topic administration through
//! librdkafka's admin client.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use serde::{Deserialize, Serialize};

use crate::stats::mono_ns;

pub struct Node {
    pub pid: i32,
    pub data_dir: PathBuf,
}

enum Kind {
    Single {
        child: Child,
        bin: PathBuf,
        sets: Vec<String>,
        log: PathBuf,
    },
    Cluster {
        script: PathBuf,
        dir: PathBuf,
    },
}

/// Brokers started here; dropping one that was not stopped stops it (SIGTERM).
pub struct Target {
    pub bootstrap: String,
    /// The broker's SSL listener, when it was started with one.
    pub tls_bootstrap: Option<String>,
    pub nodes: Vec<Node>,
    kind: Option<Kind>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(kind) = self.kind.take() {
            let _ = stop_kind(kind, self.nodes.len());
        }
    }
}

/// Resident memory and CPU of the broker processes (summed over nodes).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default)]
pub struct Sample {
    pub rss_mb: f64,
    /// Peak RSS (VmHWM) since start or the last reset.
    pub hwm_mb: f64,
    pub cpu_s: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Stopped {
    pub secs: f64,
    /// Exited by itself after SIGTERM with status 0.
    pub clean: bool,
    pub detail: String,
}

/// Raises this process's open-file limit (inherited by the brokers started here) as
/// far as allowed: to 1,048,576 when the hard limit may be raised (root), else to the
/// hard limit. Kafka's documentation asks for 100,000 or more; a broker holds a few
/// descriptors per partition. Returns the soft limit now in force.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on structs we own.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        let want = libc::rlimit {
            rlim_cur: 1 << 20,
            rlim_max: lim.rlim_max.max(1 << 20),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &want) != 0 {
            let soft = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &soft);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// A free TCP port on 127.0.0.1 (bound and released; other users of the machine could
/// take it in between, which start-up then reports).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn port_free(p: u16) -> bool {
    TcpListener::bind(("127.0.0.1", p)).is_ok()
}

/// A base port P for scripts/cluster with P..P+n-1 and P+100..P+100+n-1 all free.
pub fn free_cluster_base(n: u16) -> anyhow::Result<u16> {
    let mut seed = mono_ns();
    for _ in 0..200 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let base = 20_000 + ((seed >> 33) % 30_000) as u16;
        if (0..n).all(|i| port_free(base + i) && port_free(base + 100 + i)) {
            return Ok(base);
        }
    }
    bail!("no free port range for a cluster")
}

impl Target {
    /// Starts one `weir` with its data in `dir`; returns it once it answers Metadata,
    /// with the seconds that took. With a `keystore` it also listens for TLS clients
    /// (`tls_bootstrap`); admin requests stay on the plaintext listener.
    pub fn start_single(
        bin: &Path,
        dir: &Path,
        keystore: Option<&Path>,
    ) -> anyhow::Result<(Target, f64)> {
        Self::start_single_with(bin, dir, keystore, &[])
    }

    /// [`Target::start_single`] with `extra` settings.
    pub fn start_single_with(
        bin: &Path,
        dir: &Path,
        keystore: Option<&Path>,
        extra: &[String],
    ) -> anyhow::Result<(Target, f64)> {
        let port = free_port()?;
        let mport = free_port()?;
        let data = dir.join("data");
        std::fs::create_dir_all(&data)?;
        let mut all = vec![
            format!("log.dirs={}", data.display()),
            format!("metrics.listen=127.0.0.1:{mport}"),
        ];
        let tls_port = match keystore {
            Some(keystore) => {
                let tls_port = free_port()?;
                all.push(format!(
                    "listeners=PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{tls_port}"
                ));
                all.push(format!("ssl.keystore.location={}", keystore.display()));
                Some(tls_port)
            }
            None => {
                all.push(format!("listeners=PLAINTEXT://127.0.0.1:{port}"));
                None
            }
        };
        all.extend(extra.iter().cloned());
        let log = dir.join("weir.log");
        let (mut t, startup) = Self::spawn_single(bin, all, log, port, data, None)?;
        t.tls_bootstrap = tls_port.map(|p| format!("127.0.0.1:{p}"));
        Ok((t, startup))
    }

    fn spawn_single(
        bin: &Path,
        sets: Vec<String>,
        log: PathBuf,
        port: u16,
        data: PathBuf,
        expect_topic: Option<&str>,
    ) -> anyhow::Result<(Target, f64)> {
        let out = File::options().create(true).append(true).open(&log)?;
        let mut cmd = Command::new(bin);
        for s in &sets {
            cmd.arg("--set").arg(s);
        }
        let t0 = mono_ns();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let deadline = t0 + 120_000_000_000;
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "weir exited with {status} during start-up; see {}",
                    log.display()
                );
            }
            if metadata_probe(port, expect_topic) {
                break;
            }
            if mono_ns() > deadline {
                let _ = child.kill();
                bail!(
                    "weir did not answer Metadata within 120 s; see {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let startup = (mono_ns() - t0) as f64 / 1e9;
        let pid = child.id() as i32;
        Ok((
            Target {
                bootstrap: format!("127.0.0.1:{port}"),
                tls_bootstrap: None,
                nodes: vec![Node {
                    pid,
                    data_dir: data,
                }],
                kind: Some(Kind::Single {
                    child,
                    bin: bin.to_path_buf(),
                    sets,
                    log,
                }),
            },
            startup,
        ))
    }

    /// Starts an `n`-node cluster with scripts/cluster in `dir` (TMPDIR pointed there
    /// too, so the script's "current cluster" file does not touch anyone else's).
    pub fn start_cluster(
        script: &Path,
        bin: &Path,
        dir: &Path,
        n: u16,
    ) -> anyhow::Result<(Target, f64)> {
        let base = free_cluster_base(n)?;
        std::fs::create_dir_all(dir)?;
        let t0 = mono_ns();
        let out = Command::new(script)
            .args([
                "start",
                &n.to_string(),
                "--base-port",
                &base.to_string(),
                "--dir",
            ])
            .arg(dir)
            .env("TMPDIR", dir)
            .env("WEIR_BIN", bin)
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if !out.status.success() {
            bail!("{} start {n} failed: {}", script.display(), out.status);
        }
        let startup = (mono_ns() - t0) as f64 / 1e9;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let bootstrap = stdout.lines().last().unwrap_or_default().trim().to_string();
        let mut nodes = Vec::new();
        for i in 1..=n {
            let pid = std::fs::read_to_string(dir.join(format!("node{i}.pid")))?
                .trim()
                .parse()?;
            nodes.push(Node {
                pid,
                data_dir: dir.join(format!("node{i}")),
            });
        }
        Ok((
            Target {
                bootstrap,
                tls_bootstrap: None,
                nodes,
                kind: Some(Kind::Cluster {
                    script: script.to_path_buf(),
                    dir: dir.to_path_buf(),
                }),
            },
            startup,
        ))
    }

    /// SIGTERM and wait (a clean shutdown flushes and checkpoints the logs).
    pub fn stop(mut self) -> anyhow::Result<Stopped> {
        let kind = self.kind.take().context("already stopped")?;
        stop_kind(kind, self.nodes.len())
    }

    /// Stops a single broker and starts it again on the same data and ports; returns
    /// the stop and the seconds until it answered a Metadata request listing `topic`.
    pub fn restart(self, topic: &str) -> anyhow::Result<(Target, Stopped, f64)> {
        let (bin, sets, log) = match &self.kind {
            Some(Kind::Single { bin, sets, log, .. }) => (bin.clone(), sets.clone(), log.clone()),
            _ => bail!("restart is for a running single broker"),
        };
        let port: u16 = self
            .bootstrap
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .parse()?;
        let data = self.nodes[0].data_dir.clone();
        let stopped = self.stop()?;
        let (t, secs) = Self::spawn_single(&bin, sets, log, port, data, Some(topic))?;
        Ok((t, stopped, secs))
    }

    pub fn sample(&self) -> Sample {
        let mut s = Sample::default();
        for n in &self.nodes {
            let p = proc_sample(n.pid);
            s.rss_mb += p.rss_mb;
            s.hwm_mb += p.hwm_mb;
            s.cpu_s += p.cpu_s;
        }
        s
    }

    /// Resets the peak RSS (VmHWM) of every node to its current RSS.
    pub fn reset_peak(&self) {
        for n in &self.nodes {
            if let Ok(mut f) = File::options()
                .write(true)
                .open(format!("/proc/{}/clear_refs", n.pid))
            {
                let _ = f.write_all(b"5");
            }
        }
    }

    /// The partition directories of `topic` on every node.
    pub fn partition_dirs(&self, topic: &str) -> Vec<PathBuf> {
        let prefix = format!("{topic}-");
        let mut dirs = vec![];
        for n in &self.nodes {
            let Ok(rd) = std::fs::read_dir(&n.data_dir) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let is_partition = name.strip_prefix(&prefix).is_some_and(|rest| {
                    !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit())
                });
                if is_partition {
                    dirs.push(e.path());
                }
            }
        }
        dirs
    }

    /// Bytes of `topic`'s log segments on every node.
    pub fn stored_bytes(&self, topic: &str) -> u64 {
        let mut total = 0;
        for d in self.partition_dirs(topic) {
            for f in std::fs::read_dir(d).into_iter().flatten().flatten() {
                if f.path().extension().is_some_and(|x| x == "log") {
                    total += f.metadata().map_or(0, |m| m.len());
                }
            }
        }
        total
    }

    pub fn admin(&self) -> anyhow::Result<Admin> {
        let client: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("client.id", "weir-bench-admin")
            .set("socket.timeout.ms", "300000")
            .create()
            .context("creating the admin client")?;
        Ok(Admin { client })
    }
}

/// SIGTERM and wait (a clean shutdown flushes and checkpoints the logs).
fn stop_kind(kind: Kind, nodes: usize) -> anyhow::Result<Stopped> {
    let t0 = mono_ns();
    match kind {
        Kind::Single { mut child, log, .. } => {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = t0 + 120_000_000_000;
            loop {
                if let Some(status) = child.try_wait()? {
                    return Ok(Stopped {
                        secs: (mono_ns() - t0) as f64 / 1e9,
                        clean: status.success(),
                        detail: format!("exit {status}; log {}", log.display()),
                    });
                }
                if mono_ns() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Ok(Stopped {
                        secs: (mono_ns() - t0) as f64 / 1e9,
                        clean: false,
                        detail: format!(
                            "no exit 120 s after SIGTERM, killed; log {}",
                            log.display()
                        ),
                    });
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Kind::Cluster { script, dir } => {
            let status = Command::new(&script)
                .args(["stop", "--dir"])
                .arg(&dir)
                .env("TMPDIR", &dir)
                .stdout(Stdio::null())
                .status()?;
            // The script SIGKILLs what is still running after 20 s; a node log
            // without "shutdown complete" tells that it did.
            let mut unclean = Vec::new();
            for i in 0..nodes {
                let log = std::fs::read_to_string(dir.join(format!("node{}.log", i + 1)))
                    .unwrap_or_default();
                if !log.contains("shutdown complete") {
                    unclean.push(i + 1);
                }
            }
            Ok(Stopped {
                secs: (mono_ns() - t0) as f64 / 1e9,
                clean: status.success() && unclean.is_empty(),
                detail: if unclean.is_empty() {
                    format!("logs in {}", dir.display())
                } else {
                    format!(
                        "nodes {unclean:?} logged no clean shutdown; logs in {}",
                        dir.display()
                    )
                },
            })
        }
    }
}

fn proc_sample(pid: i32) -> Sample {
    let mut s = Sample::default();
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        for l in status.lines() {
            let kb = || -> f64 {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0)
            };
            if l.starts_with("VmRSS:") {
                s.rss_mb = kb() / 1024.0;
            } else if l.starts_with("VmHWM:") {
                s.hwm_mb = kb() / 1024.0;
            }
        }
    }
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Fields after "(comm)": state is field 3, utime 14, stime 15.
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // SAFETY: sysconf has no preconditions.
            let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
            let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            s.cpu_s = (t(11) + t(12)) / tck;
        }
    }
    s
}

/// A Metadata v1 request (all topics) straight over TCP: true when the broker answers,
/// and, with `topic`, when the answer names it.
pub fn metadata_probe(port: u16, topic: Option<&str>) -> bool {
    let probe = || -> std::io::Result<bool> {
        let mut s =
            TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let client = b"weir-bench";
        let mut body = Vec::new();
        body.extend_from_slice(&3i16.to_be_bytes()); // Metadata
        body.extend_from_slice(&1i16.to_be_bytes()); // v1
        body.extend_from_slice(&1i32.to_be_bytes()); // correlation id
        body.extend_from_slice(&(client.len() as i16).to_be_bytes());
        body.extend_from_slice(client);
        body.extend_from_slice(&(-1i32).to_be_bytes()); // all topics
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        s.write_all(&frame)?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len)?;
        let mut resp = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
        s.read_exact(&mut resp)?;
        Ok(match topic {
            None => resp.len() >= 8,
            Some(t) => resp.windows(t.len()).any(|w| w == t.as_bytes()),
        })
    };
    probe().unwrap_or(false)
}

pub struct Admin {
    client: AdminClient<DefaultClientContext>,
}

impl Admin {
    fn opts() -> AdminOptions {
        AdminOptions::new()
            .operation_timeout(Some(Duration::from_secs(300)))
            .request_timeout(Some(Duration::from_secs(300)))
    }

    /// Creates a topic and waits until Metadata shows a leader for every partition;
    /// returns the seconds that took.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        rf: u32,
        configs: &[(&str, &str)],
    ) -> anyhow::Result<f64> {
        let t0 = mono_ns();
        let mut nt = NewTopic::new(name, partitions as i32, TopicReplication::Fixed(rf as i32));
        for (k, v) in configs {
            nt = nt.set(k, v);
        }
        let results = futures::executor::block_on(self.client.create_topics([&nt], &Self::opts()))
            .context("CreateTopics")?;
        for r in results {
            if let Err((t, e)) = r {
                bail!("creating {t}: {e}");
            }
        }
        let deadline = t0 + 300_000_000_000;
        loop {
            let ready = self
                .client
                .inner()
                .fetch_metadata(Some(name), Duration::from_secs(60))
                .map(|md| {
                    md.topics().iter().any(|t| {
                        t.name() == name
                            && t.error().is_none()
                            && t.partitions().len() == partitions as usize
                            && t.partitions().iter().all(|p| {
                                p.leader() >= 0
                                    && p.error().is_none()
                                    && p.isr().len() == rf as usize
                            })
                    })
                })
                .unwrap_or(false);
            if ready {
                return Ok((mono_ns() - t0) as f64 / 1e9);
            }
            if mono_ns() > deadline {
                bail!("{name}: partitions without a leader or full ISR 300 s after CreateTopics");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn delete_topic(&self, name: &str) -> anyhow::Result<()> {
        let opts = AdminOptions::new()
            .operation_timeout(Some(Duration::from_secs(60)))
            .request_timeout(Some(Duration::from_secs(60)));
        let results = futures::executor::block_on(self.client.delete_topics(&[name], &opts))
            .context("DeleteTopics")?;
        for r in results {
            if let Err((t, e)) = r {
                bail!("deleting {t}: {e}");
            }
        }
        Ok(())
    }

    /// Sum of the high watermarks of `partitions` partitions.
    pub fn high_watermarks(&self, topic: &str, partitions: u32) -> anyhow::Result<i64> {
        let mut sum = 0;
        for p in 0..partitions as i32 {
            let (_, high) = self
                .client
                .inner()
                .fetch_watermarks(topic, p, Duration::from_secs(30))
                .with_context(|| format!("watermarks of {topic}-{p}"))?;
            sum += high;
        }
        Ok(sum)
    }
}
