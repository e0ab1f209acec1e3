//! A real Weir cluster for integration tests: `weir` processes on 127.0.0.1 forming a
//! metadata quorum over their CONTROLLER listeners, each logging to `nodeN.log` in a
//! temporary directory, plus bounded raw requests to its nodes. Test files that need it
//! include it with `#[path = "common/cluster.rs"] mod cluster;` next to `mod common;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kafka_protocol::messages::*;

use crate::common::Conn;

/// Broker session timeout of every node: short, so fencing tests stay quick.
pub const SESSION_MS: u64 = 3000;

pub struct Cluster {
    dir: tempfile::TempDir,
    children: Vec<Option<Child>>,
    voters: String,
    /// (client port, controller port) per node.
    ports: Vec<(u16, u16)>,
    /// Settings a test adds for node `i` (racks, say).
    extra: fn(usize) -> Vec<String>,
    /// Settings of nodes added after the start (by `add_node`), by index.
    added: std::collections::HashMap<usize, Vec<String>>,
}

impl Cluster {
    /// Start `n` nodes (ids 1..=n), all voters.
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, |_| Vec::new())
    }

    pub fn start_with(n: usize, extra: fn(usize) -> Vec<String>) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        // Bound together so the ports differ, then released for the nodes to take.
        let socks: Vec<std::net::TcpListener> = (0..2 * n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let ports: Vec<u16> = socks
            .iter()
            .map(|s| s.local_addr().expect("addr").port())
            .collect();
        drop(socks);
        let ports: Vec<(u16, u16)> = (0..n).map(|i| (ports[2 * i], ports[2 * i + 1])).collect();
        let voters = ports
            .iter()
            .enumerate()
            .map(|(i, (_, c))| format!("{}@127.0.0.1:{c}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut c = Cluster {
            dir,
            children: Vec::new(),
            voters,
            ports,
            extra,
            added: Default::default(),
        };
        for i in 0..n {
            let child = c.spawn(i);
            c.children.push(Some(child));
        }
        c
    }

    pub fn data_dir(&self, i: usize) -> std::path::PathBuf {
        self.dir.path().join(format!("node{}", i + 1))
    }

    fn spawn(&self, i: usize) -> Child {
        let (client, ctl) = self.ports[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node{}.log", i + 1)))
            .expect("log file");
        let mut sets = vec![
            format!("node.id={}", i + 1),
            format!("listeners=PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{ctl}"),
            "controller.listener.names=CONTROLLER".to_string(),
            format!("controller.quorum.voters={}", self.voters),
            format!("log.dirs={}", self.data_dir(i).display()),
            "metrics.listen=".to_string(),
            format!("broker.session.timeout.ms={SESSION_MS}"),
            "broker.heartbeat.interval.ms=300".to_string(),
        ];
        sets.extend((self.extra)(i));
        sets.extend(self.added.get(&i).cloned().unwrap_or_default());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
        for s in &sets {
            cmd.arg("--set").arg(s);
        }
        cmd.env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.try_clone().expect("log"))
            .spawn()
            .expect("spawn weir")
    }

    /// Start one more node (id = its index + 1) that the voter list does not name, so
    /// that it joins the quorum as a learner; `sets` are its extra settings. Returns
    /// its index.
    pub fn add_node(&mut self, sets: Vec<String>) -> usize {
        let socks: Vec<std::net::TcpListener> = (0..2)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let port = |i: usize| socks[i].local_addr().expect("addr").port();
        self.ports.push((port(0), port(1)));
        drop(socks);
        let i = self.children.len();
        self.added.insert(i, sets);
        let child = self.spawn(i);
        self.children.push(Some(child));
        i
    }

    /// SIGTERM node `i` (a controlled shutdown) and wait for it to exit.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Node `i`'s client listener.
    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[i].0))
    }

    /// SIGKILL node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start node `i` again on its data.
    pub fn restart(&mut self, i: usize) {
        let child = self.spawn(i);
        self.children[i] = Some(child);
    }

    /// The last lines of every node's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for i in 0..self.children.len() {
            let p = self.dir.path().join(format!("node{}.log", i + 1));
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            out.push_str(&format!("--- node {} ---\n", i + 1));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}

/// One request to node `addr`, bounded; `None` if the node does not answer.
pub async fn call<Req, Resp>(addr: SocketAddr, api: ApiKey, version: i16, req: Req) -> Option<Resp>
where
    Req: kafka_protocol::protocol::Encodable + Send + Sync + 'static,
    Resp: kafka_protocol::protocol::Decodable + Send + 'static,
{
    tokio::net::TcpStream::connect(addr).await.ok()?;
    // `Conn` panics on a dead connection: contain that in a task.
    let task = tokio::spawn(async move {
        let mut c = Conn::connect(addr).await;
        c.call::<Req, Resp>(api, version, &req).await
    });
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .ok()?
        .ok()
}

/// Metadata of every topic from one node; `None` while it does not answer.
pub async fn metadata(addr: SocketAddr) -> Option<MetadataResponse> {
    call(
        addr,
        ApiKey::Metadata,
        12,
        MetadataRequest::default().with_topics(None),
    )
    .await
}

/// Poll node `i`'s Metadata until `f` holds.
pub async fn wait_for(
    c: &Cluster,
    i: usize,
    within: Duration,
    what: &str,
    f: impl Fn(&MetadataResponse) -> bool,
) -> MetadataResponse {
    let deadline = Instant::now() + within;
    let mut last = None;
    while Instant::now() < deadline {
        if let Some(m) = metadata(c.addr(i)).await {
            if f(&m) {
                return m;
            }
            last = Some(m);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "node {}: timed out after {within:?} waiting for {what}; last metadata: {last:?}\n{}",
        i + 1,
        c.logs()
    );
}
