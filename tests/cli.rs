//! The operator commands (`weir topic|group|cluster|produce|consume|elect|reassign|config`)
//! run as a user runs them: the real binary against a real broker over TCP, on one node
//! and on a three-node cluster, with librdkafka on the other side where a client's view
//! matters (keyed records land where librdkafka's murmur2 partitioner puts them; a group
//! a librdkafka consumer committed for is described with its lag). Bad input gets an
//! error naming Kafka's error and the documented exit code.

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::time::{Duration, Instant};

use cluster::Cluster;
use common::TestBroker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use serde_json::Value;

/// Exit code, stdout, stderr of `weir ARGS -b BOOTSTRAP`.
async fn weir(bootstrap: &str, args: &[&str]) -> (i32, String, String) {
    weir_stdin(bootstrap, args, "").await
}

async fn weir_stdin(bootstrap: &str, args: &[&str], stdin: &str) -> (i32, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .args(["--bootstrap-server", bootstrap, "--timeout", "15"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn weir");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("weir finishes within 60 s")
        .unwrap();
    let r = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    println!("$ weir {} -> {}\n{}{}", args.join(" "), r.0, r.1, r.2);
    r
}

/// `weir ARGS -o json`, which must succeed; its JSON.
async fn json(bootstrap: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let (code, out, err) = weir(bootstrap, &all).await;
    assert_eq!(code, 0, "weir {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("weir {args:?}: not JSON ({e}): {out}"))
}

fn ok(r: &(i32, String, String)) {
    assert_eq!(r.0, 0, "stdout: {}\nstderr: {}", r.1, r.2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_commands_on_one_broker() {
    let b = TestBroker::start(&[]).await;
    let bs = b.bootstrap();
    let bs = bs.as_str();
    ok(&weir(
        bs,
        &[
            "topic",
            "create",
            "t1",
            "-p",
            "3",
            "-c",
            "retention.ms=3600000",
        ],
    )
    .await);
    // A second create: Kafka's error name, exit code 1; --if-not-exists: fine.
    let dup = weir(bs, &["topic", "create", "t1", "-p", "3"]).await;
    assert_eq!(dup.0, 1);
    assert!(dup.2.contains("TOPIC_ALREADY_EXISTS"), "{}", dup.2);
    ok(&weir(bs, &["topic", "create", "t1", "--if-not-exists"]).await);
    // Validation only creates nothing.
    ok(&weir(bs, &["topic", "create", "dry", "--dry-run"]).await);
    let list = json(bs, &["topic", "list"]).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["t1"]);
    assert_eq!(list[0]["partitions"], 3);

    let d = json(bs, &["topic", "describe", "t1"]).await;
    let parts = d[0]["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    assert!(parts
        .iter()
        .all(|p| p["leader"] == 1 && p["isr"] == serde_json::json!([1])));

    ok(&weir(bs, &["topic", "add-partitions", "t1", "--count", "5"]).await);
    let fewer = weir(bs, &["topic", "add-partitions", "t1", "--count", "2"]).await;
    assert_eq!(fewer.0, 1);
    assert!(fewer.2.contains("INVALID_PARTITIONS"), "{}", fewer.2);
    assert_eq!(json(bs, &["topic", "list"]).await[0]["partitions"], 5);

    ok(&weir(
        bs,
        &[
            "topic",
            "alter-config",
            "t1",
            "--set",
            "cleanup.policy=compact",
            "--delete",
            "retention.ms",
        ],
    )
    .await);
    let cfg = json(bs, &["topic", "describe-config", "t1", "--overrides"]).await;
    let set: Vec<(&str, &str)> = cfg
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["value"].as_str().unwrap()))
        .collect();
    assert_eq!(set, [("cleanup.policy", "compact")]);
    let all = json(bs, &["topic", "describe-config", "t1"]).await;
    let retention = all
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .expect("retention.ms listed");
    assert_eq!(retention["source"], "DEFAULT_CONFIG");
    let bad = weir(
        bs,
        &["topic", "alter-config", "t1", "--set", "retention.ms=soon"],
    )
    .await;
    assert_eq!(bad.0, 1);
    assert!(bad.2.contains("INVALID_CONFIG"), "{}", bad.2);

    let missing = weir(bs, &["topic", "describe", "nope"]).await;
    assert_eq!(missing.0, 1);
    assert!(
        missing.2.contains("UNKNOWN_TOPIC_OR_PARTITION"),
        "{}",
        missing.2
    );
    ok(&weir(bs, &["topic", "delete", "t1"]).await);
    assert_eq!(json(bs, &["topic", "list"]).await, serde_json::json!([]));
    let again = weir(bs, &["topic", "delete", "t1"]).await;
    assert_eq!(again.0, 1);

    // Usage errors: 2; nobody listening: 3.
    assert_eq!(weir(bs, &["topic", "create"]).await.0, 2);
    assert_eq!(
        weir(bs, &["topic", "alter-config", "x", "--set", "novalue"])
            .await
            .0,
        2
    );
    let gone = weir("127.0.0.1:1", &["topic", "list"]).await;
    assert_eq!(gone.0, 3);
    assert!(gone.2.contains("cannot reach the cluster"), "{}", gone.2);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_consume_agree_with_librdkafka() {
    let b = TestBroker::start(&[]).await;
    let bs = b.bootstrap();
    let bs = bs.as_str();
    ok(&weir(bs, &["topic", "create", "pc", "-p", "4"]).await);
    // librdkafka's murmur2 partitioner (the Java client's default) and weir agree.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bs)
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    for key in ["alpha", "beta", "gamma", "delta", "epsilon"] {
        let delivery = producer
            .send(
                FutureRecord::to("pc").key(key).payload("from-librdkafka"),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        let mine = json(bs, &["produce", "pc", "from-weir", "-k", key, "-H", "h=1"]).await;
        assert_eq!(mine[0]["partition"], delivery.partition, "key {key}");
    }
    // Lines of standard input, split into key and value.
    let piped = weir_stdin(
        bs,
        &[
            "produce",
            "pc",
            "--key-separator",
            ":",
            "-p",
            "2",
            "--compression",
            "zstd",
        ],
        "k1:v1\nk2:v2\n",
    )
    .await;
    ok(&piped);

    let out = weir(bs, &["consume", "pc", "-p", "2", "-e", "-f", "%k=%v\\n"]).await;
    ok(&out);
    assert!(out.1.ends_with("k1=v1\nk2=v2\n"), "{}", out.1);
    let (code, lines, err) = weir(bs, &["consume", "pc", "-e", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let records: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 12);
    let weirs: Vec<&Value> = records
        .iter()
        .filter(|r| r["value"] == "from-weir")
        .collect();
    assert_eq!(weirs.len(), 5);
    assert!(weirs.iter().all(|r| r["headers"]["h"] == "1"));
    // A count, an offset, a time in the future (nothing there: the end).
    let two = weir(bs, &["consume", "pc", "-p", "2", "--from", "0", "-n", "1"]).await;
    ok(&two);
    assert_eq!(two.1.lines().count(), 1);
    let later = weir(bs, &["consume", "pc", "-e", "--from", "@99999999999999"]).await;
    ok(&later);
    assert_eq!(later.1, "");
    assert_eq!(
        weir(bs, &["consume", "pc", "--from", "yesterday"]).await.0,
        2
    );
    assert_eq!(weir(bs, &["consume", "nope", "-e"]).await.0, 1);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commands_on_one_broker() {
    let b = TestBroker::start(&[]).await;
    let bs = b.bootstrap();
    let bs = bs.as_str();
    ok(&weir(bs, &["topic", "create", "gt", "-p", "2"]).await);
    let values: String = (0..10).map(|i| format!("v{i}\n")).collect();
    ok(&weir_stdin(bs, &["produce", "gt", "-p", "0"], &values).await);
    ok(&weir_stdin(bs, &["produce", "gt", "-p", "1"], &values).await);

    // A librdkafka member reads 5 records and commits.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bs)
        .set("group.id", "readers")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&["gt"]).unwrap();
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen < 5 && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            assert_eq!(m.topic(), "gt");
            seen += 1;
        }
    }
    assert_eq!(seen, 5);
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();

    let listed = json(bs, &["group", "list"]).await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["group"] == "readers" && g["state"] == "Stable"),
        "{listed}"
    );
    let d = json(bs, &["group", "describe", "readers"]).await;
    assert_eq!(d["state"], "Stable");
    assert_eq!(d["members"].as_array().unwrap().len(), 1);
    assert_eq!(
        d["members"][0]["assignment"].as_array().unwrap().len(),
        2,
        "{d}"
    );
    assert_eq!(d["total_lag"], 15, "{d}");
    // Offsets of a group with members cannot be reset.
    let busy = weir(
        bs,
        &[
            "group",
            "reset-offsets",
            "readers",
            "--to-earliest",
            "--execute",
        ],
    )
    .await;
    assert_eq!(busy.0, 1);
    assert!(busy.2.contains("Stable"), "{}", busy.2);
    drop(consumer);

    let deadline = Instant::now() + Duration::from_secs(30);
    while json(bs, &["group", "describe", "readers"]).await["state"] != "Empty" {
        assert!(Instant::now() < deadline, "the group never emptied");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Without members, the committed partitions: 5 records read, 10 per partition.
    let d = json(bs, &["group", "describe", "readers"]).await;
    let committed: Vec<i64> = d["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["committed_offset"].as_i64().unwrap())
        .collect();
    assert_eq!(committed.iter().sum::<i64>(), 5, "{d}");
    let lag = 10 * committed.len() as i64 - 5;
    assert_eq!(d["total_lag"], lag, "{d}");
    // A dry run changes nothing; --execute does.
    let dry = json(bs, &["group", "reset-offsets", "readers", "--to-latest"]).await;
    assert_eq!(dry["executed"], false);
    assert_eq!(
        json(bs, &["group", "describe", "readers"]).await["total_lag"],
        lag
    );
    let done = json(
        bs,
        &[
            "group",
            "reset-offsets",
            "readers",
            "--topic",
            "gt:0",
            "--to-offset",
            "8",
            "--execute",
        ],
    )
    .await;
    assert_eq!(done["partitions"][0]["new_offset"], 8);
    let d = json(bs, &["group", "describe", "readers"]).await;
    let p0 = d["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["partition"] == 0)
        .unwrap();
    assert_eq!(p0["committed_offset"], 8);
    assert_eq!(p0["lag"], 2);
    // The group's position is where `weir consume --group` starts (as a KIP-848 member
    // of the group, now empty), and it commits.
    let rest = weir(
        bs,
        &["consume", "gt", "-e", "--group", "readers", "-f", "%p:%v\n"],
    )
    .await;
    ok(&rest);
    let p0: Vec<&str> = rest.1.lines().filter(|l| l.starts_with("0:")).collect();
    assert_eq!(p0, ["0:v8", "0:v9"]);
    let d = json(bs, &["group", "describe", "readers"]).await;
    assert_eq!(d["total_lag"], 0, "{d}");
    assert_eq!(d["state"], "Empty", "it left: {d}");
    let both = weir(bs, &["consume", "gt", "-p", "0", "--group", "readers"]).await;
    assert_eq!(both.0, 2, "partitions and a group do not combine: {both:?}");
    let shifted = json(
        bs,
        &[
            "group",
            "reset-offsets",
            "readers",
            "--topic",
            "gt:0",
            "--shift-by",
            "-3",
            "--execute",
        ],
    )
    .await;
    assert_eq!(shifted["partitions"][0]["new_offset"], 7);
    let unknown = weir(
        bs,
        &[
            "group",
            "reset-offsets",
            "readers",
            "--topic",
            "nope",
            "--to-earliest",
        ],
    )
    .await;
    assert_eq!(unknown.0, 1);
    assert!(
        unknown.2.contains("UNKNOWN_TOPIC_OR_PARTITION"),
        "{}",
        unknown.2
    );

    ok(&weir(bs, &["group", "delete", "readers"]).await);
    let gone = weir(bs, &["group", "describe", "readers"]).await;
    assert_eq!(gone.0, 1);
    assert!(gone.2.contains("GROUP_ID_NOT_FOUND"), "{}", gone.2);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_info_health_and_config_list_on_one_broker() {
    let b = TestBroker::start(&[]).await;
    let bs = b.bootstrap();
    let bs = bs.as_str();
    let info = json(bs, &["cluster", "info"]).await;
    assert_eq!(info["brokers"][0]["id"], 1);
    assert_eq!(info["controller"], 1);
    let health = weir(bs, &["cluster", "health"]).await;
    ok(&health);
    assert!(
        health.1.contains("HEALTHY                      yes"),
        "{}",
        health.1
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["config", "list", "retention", "-o", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let cfg: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(cfg["broker"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["name"] == "log.retention.hours" && d["default"] == "168"));
    let elect = weir(bs, &["elect", "--all"]).await;
    ok(&elect);
    assert_eq!(weir(bs, &["elect"]).await.0, 2);
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, "{\"version\":1,\"partitions\":[]").unwrap();
    let bad = weir(
        bs,
        &["reassign", "--plan", plan.to_str().unwrap(), "--execute"],
    )
    .await;
    assert_eq!(bad.0, 2);
    assert!(bad.2.contains("not valid JSON"), "{}", bad.2);

    // Client-metrics subscriptions (KIP-714).
    ok(&weir(
        bs,
        &[
            "client-metrics",
            "alter",
            "producers",
            "--metrics",
            "org.apache.kafka.producer.",
            "--interval-ms",
            "5000",
            "--match",
            "client_id=app-.*",
        ],
    )
    .await);
    assert_eq!(
        json(bs, &["client-metrics", "list"]).await,
        serde_json::json!(["producers"])
    );
    let d = json(bs, &["client-metrics", "describe", "producers"]).await;
    assert!(
        d.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "interval.ms"
                && e["value"] == "5000"
                && e["source"] == "CLIENT_METRICS_CONFIG"),
        "{d}"
    );
    let bad = weir(bs, &["client-metrics", "alter", "x", "--match", "host=a"]).await;
    assert_eq!(bad.0, 1, "{bad:?}");
    assert!(bad.2.contains("INVALID_CONFIG"), "{}", bad.2);
    ok(&weir(bs, &["client-metrics", "delete", "producers"]).await);
    assert_eq!(
        json(bs, &["client-metrics", "list"]).await,
        serde_json::json!([])
    );
    b.stop().await;
}

/// Retry `f` until it holds, for cluster states that settle asynchronously.
async fn eventually<F, Fut>(what: &str, within: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_on_a_three_node_cluster() {
    let mut c = Cluster::start(3);
    let all = format!("{},{},{}", c.addr(0), c.addr(1), c.addr(2));
    let bs = all.as_str();
    eventually("three brokers", Duration::from_secs(30), || async {
        let (code, out, _) = weir(bs, &["cluster", "info", "-o", "json"]).await;
        code == 0
            && serde_json::from_str::<Value>(&out).is_ok_and(|v| {
                v["brokers"]
                    .as_array()
                    .is_some_and(|b| b.len() == 3 && b.iter().all(|b| b["fenced"] == false))
            })
    })
    .await;
    ok(&weir(bs, &["topic", "create", "rf3", "-p", "3", "-r", "3"]).await);
    eventually("a healthy cluster", Duration::from_secs(30), || async {
        weir(bs, &["cluster", "health"]).await.0 == 0
    })
    .await;
    let d = json(bs, &["topic", "describe", "rf3"]).await;
    for p in d[0]["partitions"].as_array().unwrap() {
        assert_eq!(p["replicas"].as_array().unwrap().len(), 3, "{p}");
    }
    // Records through any node reach the leaders; consume reads them back.
    ok(&weir_stdin(
        bs,
        &["produce", "rf3", "--key-separator", "="],
        "a=1\nb=2\nc=3\nd=4\n",
    )
    .await);
    let (code, out, err) = weir(bs, &["consume", "rf3", "-e", "-f", "%k\\n"]).await;
    assert_eq!(code, 0, "{err}");
    let mut keys: Vec<&str> = out.lines().collect();
    keys.sort_unstable();
    assert_eq!(keys, ["a", "b", "c", "d"]);
    // Groups live on different coordinators: the list asks every broker.
    for g in ["ga", "gb", "gc", "gd"] {
        ok(&weir(bs, &["consume", "rf3", "-e", "--group", g]).await);
    }
    let groups = json(bs, &["group", "list"]).await;
    assert_eq!(groups.as_array().unwrap().len(), 4, "{groups}");
    let d = json(bs, &["group", "describe", "gc"]).await;
    assert_eq!(d["total_lag"], 0);
    assert_eq!(d["partitions"].as_array().unwrap().len(), 3);

    // A cluster-wide dynamic default set through node 1 reaches node 3's topics.
    let one = c.addr(0).to_string();
    let three = c.addr(2).to_string();
    ok(&weir(
        &one,
        &["cluster", "alter-config", "--set", "log.retention.ms=4321"],
    )
    .await);
    eventually(
        "the dynamic default on node 3",
        Duration::from_secs(10),
        || async {
            let d = json(&three, &["topic", "describe-config", "rf3"]).await;
            d.as_array().unwrap().iter().any(|e| {
                e["name"] == "retention.ms"
                    && e["value"] == "4321"
                    && e["source"] == "DYNAMIC_DEFAULT_BROKER_CONFIG"
            })
        },
    )
    .await;
    let d = json(&three, &["cluster", "describe-config", "--overrides"]).await;
    assert_eq!(d[0]["name"], "log.retention.ms", "{d}");
    ok(&weir(
        &one,
        &["cluster", "alter-config", "--delete", "log.retention.ms"],
    )
    .await);
    // Log levels of node 2, asked through node 1 (the command goes to node 2).
    ok(&weir(
        &one,
        &[
            "cluster",
            "log-level",
            "--broker",
            "2",
            "weir::replica=DEBUG",
        ],
    )
    .await);
    let levels = json(&one, &["cluster", "log-level", "--broker", "2"]).await;
    assert!(
        levels
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "weir::replica"
                && e["value"] == "DEBUG"
                && e["source"] == "DYNAMIC_BROKER_LOGGER_CONFIG"),
        "{levels}"
    );
    let bad = weir(
        &one,
        &["cluster", "log-level", "--broker", "2", "weir=LOUD"],
    )
    .await;
    assert_eq!(bad.0, 1, "a Kafka error: {bad:?}");
    assert!(bad.2.contains("INVALID_CONFIG"), "{}", bad.2);
    ok(&weir(
        &one,
        &[
            "cluster",
            "log-level",
            "--broker",
            "2",
            "-d",
            "weir::replica",
        ],
    )
    .await);

    // Node 3 down: the health check fails (exit 4) and names it.
    c.kill(2);
    let first_two = format!("{},{}", c.addr(0), c.addr(1));
    let two = first_two.as_str();
    eventually("an unhealthy report", Duration::from_secs(30), || async {
        let (code, out, _) = weir(two, &["cluster", "health", "-o", "json"]).await;
        code == 4
            && serde_json::from_str::<Value>(&out).is_ok_and(|v| {
                v["healthy"] == false
                    && v["brokers_down"] == serde_json::json!([3])
                    && !v["under_replicated_partitions"]
                        .as_array()
                        .unwrap()
                        .is_empty()
            })
    })
    .await;
    c.restart(2);
    eventually(
        "a healthy cluster again",
        Duration::from_secs(60),
        || async { weir(bs, &["cluster", "health"]).await.0 == 0 },
    )
    .await;
    // Leadership back to the preferred replicas.
    let elected = weir(bs, &["elect", "--type", "preferred", "--topic", "rf3"]).await;
    ok(&elected);
    eventually("preferred leaders", Duration::from_secs(30), || async {
        let d = json(bs, &["topic", "describe", "rf3"]).await;
        d[0]["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["leader"] == p["replicas"][0])
    })
    .await;

    // A reassignment from a plan in Kafka's format: execute, verify until complete.
    ok(&weir(bs, &["topic", "create", "mv", "-p", "1", "-r", "2"]).await);
    ok(&weir(bs, &["produce", "mv", "x", "y"]).await);
    let d = json(bs, &["topic", "describe", "mv"]).await;
    let current: Vec<i64> = d[0]["partitions"][0]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_i64().unwrap())
        .collect();
    let spare = (1..=3).find(|b| !current.contains(b)).unwrap();
    let target = [spare, current[0]];
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(
        &plan,
        format!(
            "{{\"version\":1,\"partitions\":[{{\"topic\":\"mv\",\"partition\":0,\"replicas\":[{},{}]}}]}}",
            target[0], target[1]
        ),
    )
    .unwrap();
    let p = plan.to_str().unwrap();
    ok(&weir(bs, &["reassign", "--plan", p, "--execute"]).await);
    eventually(
        "the reassignment to complete",
        Duration::from_secs(60),
        || async { weir(bs, &["reassign", "--plan", p, "--verify"]).await.0 == 0 },
    )
    .await;
    let d = json(bs, &["topic", "describe", "mv"]).await;
    assert_eq!(
        d[0]["partitions"][0]["replicas"],
        serde_json::json!(target),
        "{d}"
    );
    assert_eq!(
        json(bs, &["reassign", "--list"]).await,
        serde_json::json!([])
    );
    let (code, out, _) = weir(bs, &["consume", "mv", "-e"]).await;
    assert_eq!((code, out.as_str()), (0, "x\ny\n"));
    let q = json(bs, &["quorum", "describe"]).await;
    assert_eq!(
        q["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["role"] == "voter")
            .count(),
        3
    );
}

/// How many partitions each member of `group` is assigned, sorted; none while the group
/// does not exist yet (its first member has not joined).
async fn member_sizes(bootstrap: &str, group: &str) -> Vec<usize> {
    let (code, out, err) = weir(bootstrap, &["group", "describe", group, "--output", "json"]).await;
    if code != 0 {
        assert!(
            err.contains("GROUP_ID_NOT_FOUND"),
            "weir group describe {group}: {err}"
        );
        return Vec::new();
    }
    let d: Value = serde_json::from_str(&out).expect("JSON");
    let mut v: Vec<usize> = d["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["assignment"].as_array().map_or(0, |a| a.len()))
                .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// Two `weir consume --group` processes are two KIP-848 members: the coordinator splits
/// the topic's partitions between them, and gives them all back to one when the other
/// leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_group_consumers_split_the_partitions() {
    let b = TestBroker::start(&["group.consumer.heartbeat.interval.ms=500"]).await;
    let bs = b.bootstrap();
    let bs = bs.as_str();
    ok(&weir(bs, &["topic", "create", "split", "-p", "4"]).await);
    use std::process::Stdio;
    let member = |out: Stdio| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["consume", "split", "--group", "duo", "-b", bs, "-f", "%p\n"])
            .stdout(out)
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn weir consume")
    };
    let _first = member(Stdio::null());
    eventually(
        "one member with 4 partitions",
        Duration::from_secs(30),
        || async { member_sizes(bs, "duo").await == vec![4] },
    )
    .await;
    let mut second = member(Stdio::piped());
    // The partitions the second member printed records of, as it prints them.
    let printed = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let reader = {
        use tokio::io::AsyncBufReadExt;
        let printed = printed.clone();
        let mut lines = tokio::io::BufReader::new(second.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                let p: i64 = line.parse().expect("a partition number");
                printed.lock().unwrap().insert(p);
            }
        })
    };
    eventually("2 + 2 partitions", Duration::from_secs(30), || async {
        member_sizes(bs, "duo").await == vec![2, 2]
    })
    .await;
    // Records reach the members; once the second has printed records of both its
    // partitions, SIGTERM makes it commit and leave, and the first gets every partition
    // back.
    let values: String = (0..40).map(|i| format!("k{i}=v{i}\n")).collect();
    ok(&weir_stdin(bs, &["produce", "split", "--key-separator", "="], &values).await);
    eventually(
        "the second member to print records of its two partitions",
        Duration::from_secs(30),
        || async { printed.lock().unwrap().len() == 2 },
    )
    .await;
    unsafe { libc::kill(second.id().unwrap() as i32, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(20), second.wait())
        .await
        .expect("the member stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    reader.await.expect("stdout reader");
    let read = printed.lock().unwrap().clone();
    eventually(
        "all 4 partitions back on one member",
        Duration::from_secs(30),
        || async { member_sizes(bs, "duo").await == vec![4] },
    )
    .await;
    // What the leaver printed it committed: its partitions have offsets, the others
    // (the first member has not stopped) none.
    let d = json(bs, &["group", "describe", "duo"]).await;
    let committed: std::collections::BTreeSet<i64> = d["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["committed_offset"].as_i64().unwrap_or(-1) > 0)
        .map(|p| p["partition"].as_i64().unwrap())
        .collect();
    assert_eq!(read, committed, "{d}");
    b.stop().await;
}
