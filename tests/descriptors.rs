//! A broker with more partitions than open-file descriptors: a real `weir` process under
//! RLIMIT_NOFILE 256 hosting 1,000 partitions serves a real client (librdkafka through the
//! `rdkafka` crate). Before the segment handle cache, every partition held three
//! descriptors for good, so this could not even create the topic, and running out broke
//! accepting connections, checkpoints and the shutdown.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const LIMIT: u64 = 256;
const PARTITIONS: i32 = 1000;
const PER_PARTITION: i32 = 3;

struct Broker {
    child: Option<Child>,
    port: u16,
    log: std::path::PathBuf,
}

impl Broker {
    fn start(dir: &std::path::Path, port: u16) -> Broker {
        let log = dir.join("weir.log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
        for s in [
            format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
            format!("log.dirs={}", dir.join("data").display()),
            "metrics.listen=".to_string(),
            "auto.create.topics.enable=false".to_string(),
        ] {
            cmd.arg("--set").arg(s);
        }
        cmd.env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out);
        // SAFETY: only async-signal-safe setrlimit between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: LIMIT,
                    rlim_max: LIMIT,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn weir");
        let b = Broker {
            child: Some(child),
            port,
            log,
        };
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "broker did not start: {}",
                b.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        b
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The broker's log, without terminal colour codes.
    fn logs(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    /// SIGTERM; the exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if t.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("broker did not stop within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4");
    c
}

/// Every record of the topic, by partition, read from the beginning.
fn consume_all(bootstrap: &str, want: usize) -> HashMap<i32, Vec<String>> {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", "descriptors")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("many", p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut got: HashMap<i32, Vec<String>> = HashMap::new();
    let mut n = 0;
    let t = Instant::now();
    while n < want && t.elapsed() < Duration::from_secs(40) {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let v = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
                got.entry(m.partition()).or_default().push(v);
                n += 1;
            }
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    got
}

#[test]
fn a_thousand_partitions_under_256_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut broker = Broker::start(dir.path(), port);
    let bootstrap = broker.bootstrap();

    let admin: AdminClient<DefaultClientContext> = client(&bootstrap).create().unwrap();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let topic = NewTopic::new("many", PARTITIONS, TopicReplication::Fixed(1));
    let created = futures::executor::block_on(admin.create_topics([&topic], &opts)).unwrap();
    assert!(created[0].is_ok(), "{created:?}");

    let producer: BaseProducer = client(&bootstrap)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    for round in 0..PER_PARTITION {
        for p in 0..PARTITIONS {
            let value = format!("{p}:{round}");
            loop {
                match producer.send(BaseRecord::<(), _>::to("many").partition(p).payload(&value)) {
                    Ok(()) => break,
                    Err((e, _)) if e.to_string().contains("Queue full") => {
                        producer.poll(Duration::from_millis(10));
                    }
                    Err((e, _)) => panic!("produce: {e}"),
                }
            }
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("every record acknowledged");
    assert!(
        broker.open_fds() <= LIMIT as usize,
        "{} descriptors open",
        broker.open_fds()
    );

    let total = (PARTITIONS * PER_PARTITION) as usize;
    let check = |got: &HashMap<i32, Vec<String>>| {
        assert_eq!(got.values().map(Vec::len).sum::<usize>(), total);
        for p in 0..PARTITIONS {
            let want: Vec<String> = (0..PER_PARTITION).map(|r| format!("{p}:{r}")).collect();
            assert_eq!(got.get(&p), Some(&want), "partition {p}");
        }
    };
    check(&consume_all(&bootstrap, total));
    drop(producer);
    drop(admin);

    let logs = broker.logs();
    assert!(
        logs.contains("segment files held open at most") && logs.contains("capacity=192"),
        "the handle cache is sized from the limit"
    );
    assert!(
        !logs.contains("Too many open files"),
        "the broker ran out of descriptors:\n{}",
        logs.lines()
            .filter(|l| l.contains("Too many open files"))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let status = broker.stop();
    assert!(status.success(), "shutdown: {status}\n{}", broker.logs());

    // A restart under the same limit reopens every partition and serves the same data.
    let broker = Broker::start(dir.path(), port);
    check(&consume_all(&broker.bootstrap(), total));
}
