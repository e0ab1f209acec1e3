//! A real Weir cluster for integration tests: `weir` processes on 127.0.0.1 forming a
//! metadata quorum over their CONTROLLER listeners, each logging to `nodeN.log` in a
//! temporary directory, plus bounded raw requests to its nodes. Test files that need it
//! include it with `#[path = "common/cluster.rs"] mod cluster;` next to `mod common;`.
//!
//! [`Cluster::start_proxied`] puts a TCP proxy in this process in front of every node's
//! listeners ([`Net`]): each node's `controller.quorum.voters` and advertised client
//! listener name proxy ports, so Raft, heartbeats, follower fetches and clients all cross
//! it. The proxy tells which node opened a connection by looking the socket up in /proc,
//! which lets a test cut one node off from the others while the test itself still reaches
//! every node directly.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use tokio::net::{TcpListener, TcpStream};

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
    added: HashMap<usize, Vec<String>>,
    /// The proxies every link goes through, for clusters started by `start_proxied`.
    proxies: Option<Proxies>,
    /// The name (and so the protocol) of each node's client listener: PLAINTEXT, or SSL
    /// for clusters started by `start_tls` (their `extra` settings give the ssl.*).
    client_listener: &'static str,
}

/// The proxy ports of a proxied cluster, per node.
struct Proxies {
    net: Net,
    client: Vec<u16>,
}

impl Cluster {
    /// Start `n` nodes (ids 1..=n), all voters.
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, |_| Vec::new())
    }

    pub fn start_with(n: usize, extra: fn(usize) -> Vec<String>) -> Cluster {
        let ports = free_ports(n);
        let voters = voters(ports.iter().map(|p| p.1));
        Cluster::launch(ports, voters, extra, None, "PLAINTEXT")
    }

    /// Start `n` nodes whose client (and so inter-broker) listener is SSL; `extra` gives
    /// each node's ssl.* settings.
    /// Start `n` nodes whose client listener is named `listener` (SASL_PLAINTEXT, say:
    /// the protocol map's default names it), each with `extra(i)` settings.
    pub fn start_named(
        n: usize,
        listener: &'static str,
        extra: fn(usize) -> Vec<String>,
    ) -> Cluster {
        let ports = free_ports(n);
        let voters = voters(ports.iter().map(|p| p.1));
        Cluster::launch(ports, voters, extra, None, listener)
    }

    pub fn start_tls(n: usize, extra: fn(usize) -> Vec<String>) -> Cluster {
        let ports = free_ports(n);
        let voters = voters(ports.iter().map(|p| p.1));
        Cluster::launch(ports, voters, extra, None, "SSL")
    }

    /// Start `n` nodes whose every link goes through a proxy of this process (see
    /// [`Net`]): clients bootstrap through them too (`bootstrap`), while `addr` still
    /// reaches a node directly. Needs a tokio runtime (the proxies are its tasks).
    pub async fn start_proxied(n: usize, extra: fn(usize) -> Vec<String>) -> Cluster {
        // Tests run in parallel: one cluster at a time finds free ports and starts, so
        // that another's proxies cannot take a port released for a node to bind.
        static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _starting = STARTING.lock().await;
        let net = Net::default();
        // Proxies first, holding their ports, so that the nodes' ports (found free and
        // released just before the nodes start) cannot be taken by them.
        let mut listeners = Vec::new();
        for _ in 0..2 * n {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.expect("bind"));
        }
        let proxy_port: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().expect("addr").port())
            .collect();
        let ports = free_ports(n);
        for (k, l) in listeners.into_iter().enumerate() {
            let (node, real) = (
                k / 2,
                if k % 2 == 0 {
                    ports[k / 2].0
                } else {
                    ports[k / 2].1
                },
            );
            let net = net.clone();
            tokio::spawn(async move {
                net.proxy(l, SocketAddr::from(([127, 0, 0, 1], real)), node)
                    .await
            });
        }
        // Every node dials the controller addresses node 1 puts in the Raft membership,
        // so those are proxies too.
        let voters = voters((0..n).map(|i| proxy_port[2 * i + 1]));
        let proxies = Proxies {
            net,
            client: (0..n).map(|i| proxy_port[2 * i]).collect(),
        };
        Cluster::launch(ports, voters, extra, Some(proxies), "PLAINTEXT")
    }

    fn launch(
        ports: Vec<(u16, u16)>,
        voters: String,
        extra: fn(usize) -> Vec<String>,
        proxies: Option<Proxies>,
        client_listener: &'static str,
    ) -> Cluster {
        let n = ports.len();
        let mut c = Cluster {
            dir: tempfile::tempdir().expect("tempdir"),
            children: Vec::new(),
            voters,
            ports,
            extra,
            added: Default::default(),
            proxies,
            client_listener,
        };
        for i in 0..n {
            let child = c.spawn(i);
            c.children.push(Some(child));
        }
        c
    }

    pub fn n(&self) -> usize {
        self.children.len()
    }

    pub fn alive(&self, i: usize) -> bool {
        self.children[i].is_some()
    }

    /// The bootstrap list a client uses: the proxies of a proxied cluster.
    pub fn bootstrap(&self) -> String {
        (0..self.n())
            .map(|i| match &self.proxies {
                Some(p) => format!("127.0.0.1:{}", p.client[i]),
                None => self.addr(i).to_string(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Cut node `i` off from the other nodes (the test still reaches it), or heal
    /// with `None`. Only a proxied cluster can.
    pub fn isolate(&self, i: Option<usize>) {
        self.proxies
            .as_ref()
            .expect("a proxied cluster")
            .net
            .isolate(i);
    }

    /// The temporary directory holding every node's data and log.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
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
            format!(
                "listeners={}://127.0.0.1:{client},CONTROLLER://127.0.0.1:{ctl}",
                self.client_listener
            ),
        ];
        if let Some(p) = &self.proxies {
            sets.push(format!(
                "advertised.listeners=PLAINTEXT://127.0.0.1:{}",
                p.client[i]
            ));
        }
        sets.extend([
            "controller.listener.names=CONTROLLER".to_string(),
            format!("controller.quorum.voters={}", self.voters),
            format!("log.dirs={}", self.data_dir(i).display()),
            "metrics.listen=".to_string(),
            format!("broker.session.timeout.ms={SESSION_MS}"),
            "broker.heartbeat.interval.ms=300".to_string(),
        ]);
        sets.extend((self.extra)(i));
        sets.extend(self.added.get(&i).cloned().unwrap_or_default());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
        for s in &sets {
            cmd.arg("--set").arg(s);
        }
        let child = cmd
            .env("RUST_LOG", "info,openraft=warn")
            .env_remove("WEIR_KEEP") // not a broker setting
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.try_clone().expect("log"))
            .spawn()
            .expect("spawn weir");
        if let Some(p) = &self.proxies {
            p.net.pids.lock().unwrap().insert(child.id(), i);
        }
        child
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

    /// SIGTERM node `i` (a controlled shutdown) and wait for it to exit (SIGKILL after
    /// 30 s); how long it took.
    pub fn stop(&mut self, i: usize) -> Duration {
        let t = Instant::now();
        if let Some(mut child) = self.children[i].take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            while t.elapsed() < Duration::from_secs(30) {
                if child.try_wait().ok().flatten().is_some() {
                    return t.elapsed();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        t.elapsed()
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

    /// Poll node `i`'s Metadata until `f` holds (see [`wait_for`]).
    pub async fn wait_for(
        &self,
        i: usize,
        within: Duration,
        what: &str,
        f: impl Fn(&MetadataResponse) -> bool,
    ) -> MetadataResponse {
        wait_for(self, i, within, what, f).await
    }

    /// The last lines of every node's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for i in 0..self.children.len() {
            let p = self.dir.path().join(format!("node{}.log", i + 1));
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
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
        // WEIR_KEEP=1 keeps the data and node logs for a post-mortem.
        if std::env::var_os("WEIR_KEEP").is_some() {
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
            eprintln!("cluster data kept in {}", dir.keep().display());
        }
    }
}

/// (client port, controller port) for `n` nodes: bound together so the ports differ,
/// then released for the nodes to take.
fn free_ports(n: usize) -> Vec<(u16, u16)> {
    let socks: Vec<std::net::TcpListener> = (0..2 * n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let port = |k: usize| socks[k].local_addr().expect("addr").port();
    (0..n).map(|i| (port(2 * i), port(2 * i + 1))).collect()
}

/// `controller.quorum.voters` for controller ports of nodes 1..=n.
fn voters(ports: impl Iterator<Item = u16>) -> String {
    ports
        .enumerate()
        .map(|(i, port)| format!("{}@127.0.0.1:{port}", i + 1))
        .collect::<Vec<_>>()
        .join(",")
}

// ---------------------------------------------------------------------------------------
// The proxy network

/// The proxies' shared state: which process is which node, and which node is cut off.
#[derive(Clone)]
pub struct Net {
    pids: Arc<Mutex<HashMap<u32, usize>>>,
    isolated: Arc<tokio::sync::watch::Sender<Option<usize>>>,
}

impl Default for Net {
    fn default() -> Net {
        Net {
            pids: Arc::default(),
            isolated: Arc::new(tokio::sync::watch::channel(None).0),
        }
    }
}

fn blocked(isolated: Option<usize>, src: Option<usize>, dst: usize) -> bool {
    match (src, isolated) {
        (Some(s), Some(i)) => s != dst && (s == i || dst == i),
        _ => false,
    }
}

impl Net {
    /// Cut node `i` off from the other nodes (the test still reaches it), or heal.
    pub fn isolate(&self, i: Option<usize>) {
        self.isolated.send_replace(i);
    }

    /// Forward `listen` to `target` (node `dst`'s real port). A connection across a
    /// cut link is dropped at once, and a live one when the link is cut.
    async fn proxy(&self, listen: TcpListener, target: SocketAddr, dst: usize) {
        let me = listen.local_addr().expect("addr").port();
        loop {
            let Ok((mut inbound, peer)) = listen.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let net = self.clone();
            tokio::spawn(async move {
                // Who opened the connection matters only while a node is cut off, and
                // the /proc scan takes a while (it reads every socket of the machine):
                // done only then, and off the async workers, so that the Raft RPCs
                // (100 ms timeouts) are never held up by the proxy.
                let lookup = || {
                    let pids: Vec<(u32, usize)> = net
                        .pids
                        .lock()
                        .unwrap()
                        .iter()
                        .map(|(p, n)| (*p, *n))
                        .collect();
                    async move {
                        tokio::task::spawn_blocking(move || socket_owner(peer.port(), me, &pids))
                            .await
                            .ok()
                            .flatten()
                    }
                };
                let mut cut = net.isolated.subscribe();
                let mut src = None;
                let isolated = *cut.borrow_and_update();
                if isolated.is_some() {
                    let s = lookup().await;
                    if blocked(isolated, s, dst) {
                        return; // dropped: the peer sees EOF, as over a cut link
                    }
                    src = Some(s);
                }
                let Ok(mut outbound) = TcpStream::connect(target).await else {
                    return;
                };
                let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                tokio::pin!(copy);
                loop {
                    tokio::select! {
                        _ = &mut copy => return,
                        r = cut.changed() => {
                            if r.is_err() {
                                return;
                            }
                            let isolated = *cut.borrow_and_update();
                            if isolated.is_none() {
                                continue;
                            }
                            if src.is_none() {
                                src = Some(lookup().await);
                            }
                            if blocked(isolated, src.flatten(), dst) {
                                return;
                            }
                        }
                    }
                }
            });
        }
    }
}

/// The node whose process holds the client end of a loopback connection from
/// `peer_port` to `local_port`: its socket inode from /proc/net/tcp, then the process
/// with that inode among its descriptors.
fn socket_owner(peer_port: u16, local_port: u16, pids: &[(u32, usize)]) -> Option<usize> {
    let tcp = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let (l, r) = (format!(":{peer_port:04X}"), format!(":{local_port:04X}"));
    let inode = tcp.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() > 9 && f[1].ends_with(&l) && f[2].ends_with(&r)).then(|| f[9].to_string())
    })?;
    let want = format!("socket:[{inode}]");
    for (pid, node) in pids {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for e in dir.flatten() {
            if std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy() == want) {
                return Some(*node);
            }
        }
    }
    None
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
