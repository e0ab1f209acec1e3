//! The machine's own limits, measured in the same run as the broker figures:
//! loopback TCP between two processes (bandwidth, round trip, CPU per GB), sequential
//! write bandwidth with an fdatasync every 4 MiB, and fdatasync latency of small appends.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::stats::{mono_ns, ns_to_us, percentiles_us, self_cpu_secs, Lat, Rng};

const MIB: usize = 1 << 20;

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Limits {
    /// Loopback TCP, one process to another: receiver's bytes / seconds, MB/s (10^6).
    pub loopback_mb_s: f64,
    /// CPU seconds (sender + receiver) per GB (10^9 bytes) over loopback.
    pub loopback_cpu_s_per_gb: f64,
    /// Round trip of a 64-byte ping-pong over loopback (TCP_NODELAY).
    pub loopback_rtt: Lat,
    /// Sequential 1 MiB writes to a growing file, fdatasync every 4 MiB, MB/s.
    pub disk_write_mb_s: f64,
    /// The same into a preallocated (fallocate) file, for comparison.
    pub disk_write_prealloc_mb_s: f64,
    /// fdatasync after each 4 KiB append to a growing file.
    pub fdatasync: Lat,
    /// Where the disk figures were measured (the brokers' data directory).
    pub disk_dir: String,
    pub cpus: usize,
    pub mem_total_mb: f64,
}

/// Durations of the limit measurements.
pub struct LimitPlan {
    pub loopback_s: f64,
    pub rtt_s: f64,
    pub disk_s: f64,
    pub fsync_s: f64,
}

pub fn measure(dir: &Path, plan: &LimitPlan) -> anyhow::Result<Limits> {
    let (loopback_mb_s, loopback_cpu_s_per_gb) = loopback_bandwidth(plan.loopback_s)?;
    let loopback_rtt = loopback_rtt(plan.rtt_s)?;
    let max = 8u64 << 30;
    let disk_write_mb_s = seq_write(dir, plan.disk_s, max, false)?;
    let disk_write_prealloc_mb_s = seq_write(dir, plan.disk_s, 2 << 30, true)?;
    let fdatasync = fsync_latency(dir, plan.fsync_s)?;
    Ok(Limits {
        loopback_mb_s,
        loopback_cpu_s_per_gb,
        loopback_rtt,
        disk_write_mb_s,
        disk_write_prealloc_mb_s,
        fdatasync,
        disk_dir: dir.display().to_string(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        mem_total_mb: mem_total_mb(),
    })
}

/// The machine's best showing over several measurements: the highest bandwidths and
/// the fdatasync and round-trip distributions with the lowest p99 (a busy neighbour only
/// ever makes a figure worse).
pub fn best(runs: &[Limits]) -> Limits {
    let Some(first) = runs.first() else {
        return Limits::default();
    };
    let mut b = first.clone();
    for l in &runs[1..] {
        if l.loopback_mb_s > b.loopback_mb_s {
            b.loopback_mb_s = l.loopback_mb_s;
            b.loopback_cpu_s_per_gb = l.loopback_cpu_s_per_gb;
        }
        if l.loopback_rtt.p99_ms < b.loopback_rtt.p99_ms {
            b.loopback_rtt = l.loopback_rtt;
        }
        b.disk_write_mb_s = b.disk_write_mb_s.max(l.disk_write_mb_s);
        b.disk_write_prealloc_mb_s = b.disk_write_prealloc_mb_s.max(l.disk_write_prealloc_mb_s);
        if l.fdatasync.p99_ms < b.fdatasync.p99_ms {
            b.fdatasync = l.fdatasync;
        }
    }
    b
}

fn mem_total_mb() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[derive(Serialize, Deserialize, Debug, Default)]
struct TcpReport {
    bytes: u64,
    secs: f64,
    cpu_s: f64,
    rtt: Option<Lat>,
}

/// Runs `tcp-server` and `tcp-client` (this binary) and returns both reports.
fn tcp_pair(mode: &str, secs: f64) -> anyhow::Result<(TcpReport, TcpReport)> {
    let exe = std::env::current_exe()?;
    let mut server = Command::new(&exe)
        .arg("tcp-server")
        .stdout(Stdio::piped())
        .spawn()
        .context("spawning tcp-server")?;
    let mut out = BufReader::new(server.stdout.take().context("no stdout")?);
    let mut port = String::new();
    out.read_line(&mut port)?;
    let port: u16 = port
        .trim()
        .parse()
        .context("tcp-server did not print a port")?;
    let client = Command::new(&exe)
        .args(["tcp-client", "--port", &port.to_string(), "--mode", mode])
        .args(["--seconds", &secs.to_string()])
        .output()
        .context("running tcp-client")?;
    let mut line = String::new();
    out.read_line(&mut line)?;
    let status = server.wait()?;
    if !client.status.success() || !status.success() {
        bail!(
            "loopback test failed (client {}, server {status})",
            client.status
        );
    }
    let c: TcpReport = serde_json::from_slice(&client.stdout).context("tcp-client output")?;
    let s: TcpReport = serde_json::from_str(&line).context("tcp-server output")?;
    Ok((c, s))
}

fn loopback_bandwidth(secs: f64) -> anyhow::Result<(f64, f64)> {
    let (c, s) = tcp_pair("bw", secs)?;
    let mb_s = s.bytes as f64 / s.secs / 1e6;
    let cpu_per_gb = (c.cpu_s + s.cpu_s) / (s.bytes as f64 / 1e9);
    Ok((mb_s, cpu_per_gb))
}

fn loopback_rtt(secs: f64) -> anyhow::Result<Lat> {
    let (c, _) = tcp_pair("ping", secs)?;
    c.rtt.context("tcp-client reported no round trips")
}

/// Child: accept one connection; 'B' sinks it and reports bytes and seconds from the
/// first byte to EOF, 'P' echoes 64-byte pings until EOF.
pub fn tcp_server() -> anyhow::Result<()> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    println!("{}", l.local_addr()?.port());
    io::stdout().flush()?;
    let (mut s, _) = l.accept()?;
    let mut mode = [0u8];
    s.read_exact(&mut mode)?;
    let mut report = TcpReport::default();
    match mode[0] {
        b'B' => {
            let mut buf = vec![0u8; 4 * MIB];
            let mut first = 0;
            loop {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                if first == 0 {
                    first = mono_ns();
                }
                report.bytes += n as u64;
            }
            report.secs = (mono_ns() - first) as f64 / 1e9;
        }
        b'P' => {
            s.set_nodelay(true)?;
            let mut buf = [0u8; 64];
            loop {
                match s.read_exact(&mut buf) {
                    Ok(()) => s.write_all(&buf)?,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        m => bail!("unknown mode {m}"),
    }
    report.cpu_s = self_cpu_secs();
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

#[derive(Args, Debug)]
pub struct TcpClientArgs {
    #[arg(long)]
    port: u16,
    /// bw (stream 1 MiB writes) or ping (64-byte round trips).
    #[arg(long)]
    mode: String,
    #[arg(long)]
    seconds: f64,
}

pub fn tcp_client(args: TcpClientArgs) -> anyhow::Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", args.port))?;
    let end = mono_ns() + (args.seconds * 1e9) as u64;
    let mut report = TcpReport::default();
    let start = mono_ns();
    match args.mode.as_str() {
        "bw" => {
            s.write_all(b"B")?;
            let buf = random_buf(MIB);
            while mono_ns() < end {
                s.write_all(&buf)?;
                report.bytes += buf.len() as u64;
            }
        }
        "ping" => {
            s.set_nodelay(true)?;
            s.write_all(b"P")?;
            let mut buf = [7u8; 64];
            let mut rtts = Vec::new();
            loop {
                let t = mono_ns();
                if t >= end {
                    break;
                }
                s.write_all(&buf)?;
                s.read_exact(&mut buf)?;
                rtts.push(ns_to_us(mono_ns() - t));
            }
            report.rtt = Some(percentiles_us(&mut rtts));
        }
        m => bail!("unknown mode {m}"),
    }
    s.shutdown(Shutdown::Write)?;
    report.secs = (mono_ns() - start) as f64 / 1e9;
    report.cpu_s = self_cpu_secs();
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn random_buf(len: usize) -> Vec<u8> {
    let mut rng = Rng::new(0x5eed);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Sequential 1 MiB writes with an fdatasync every 4 MiB for `secs` (or `max` bytes),
/// then a final fdatasync; MB/s over the whole. `prealloc`: fallocate `max` first.
fn seq_write(dir: &Path, secs: f64, max: u64, prealloc: bool) -> anyhow::Result<f64> {
    let path = dir.join("bench-disk-write.tmp");
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let result = (|| -> anyhow::Result<f64> {
        if prealloc {
            // SAFETY: a valid fd and a range inside the file system's limits.
            let r = unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, max as libc::off_t) };
            if r != 0 {
                bail!("posix_fallocate: {}", io::Error::from_raw_os_error(r));
            }
            f.sync_all()?;
        }
        let buf = random_buf(MIB);
        let mut f = &f;
        let start = mono_ns();
        let end = start + (secs * 1e9) as u64;
        let mut written = 0u64;
        while written < max && mono_ns() < end {
            f.write_all(&buf)?;
            written += MIB as u64;
            if written.is_multiple_of(4 * MIB as u64) {
                f.sync_data()?;
            }
        }
        f.sync_data()?;
        Ok(written as f64 / ((mono_ns() - start) as f64 / 1e9) / 1e6)
    })();
    drop(f);
    let _ = std::fs::remove_file(&path);
    result
}

/// fdatasync latency: append 4 KiB to a growing file, fdatasync, repeat for `secs`.
fn fsync_latency(dir: &Path, secs: f64) -> anyhow::Result<Lat> {
    let path = dir.join("bench-fdatasync.tmp");
    let mut f = File::create(&path)?;
    let buf = random_buf(4096);
    let end = mono_ns() + (secs * 1e9) as u64;
    let mut samples = Vec::new();
    let result = (|| -> io::Result<()> {
        loop {
            let t = mono_ns();
            if t >= end || samples.len() >= 100_000 {
                return Ok(());
            }
            f.write_all(&buf)?;
            f.sync_data()?;
            samples.push(ns_to_us(mono_ns() - t));
        }
    })();
    drop(f);
    let _ = std::fs::remove_file(&path);
    result?;
    Ok(percentiles_us(&mut samples))
}
