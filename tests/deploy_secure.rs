//! The secured deployment's settings, run for real: `deploy/make-secrets.sh` makes the CA,
//! the node certificates and the passwords, and three `weir` processes start with the
//! `weir.properties` it writes for deploy/compose.secure.yaml (paths moved from
//! /run/secrets to the test's directory, host names to 127.0.0.1, which the certificates
//! also name) and the listeners that file's services give: INTERNAL and EXTERNAL on
//! SASL_SSL, CONTROLLER on mutual TLS, the StandardAuthorizer on. The quorum forms over
//! mutual TLS, followers replicate as `broker` over SASL_SSL (acks=all with
//! min.insync.replicas=2 needs them), `admin` administers through EXTERNAL with the
//! client settings in admin.properties, and a SCRAM user without ACLs is refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_ports, ClientErrors};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

const T: Duration = Duration::from_secs(20);

struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Kafka client properties (admin.properties) as a map.
fn properties(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// librdkafka settings for `user` over SASL_SSL with the deployment's CA.
fn client(bootstrap: &str, secrets: &Path, mechanism: &str, user: &str, pw: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("security.protocol", "sasl_ssl")
        .set(
            "ssl.ca.location",
            secrets.join("ca.pem").display().to_string(),
        )
        .set("sasl.mechanisms", mechanism)
        .set("sasl.username", user)
        .set("sasl.password", pw)
        .set("message.timeout.ms", "20000");
    c
}

fn logs(dir: &Path) -> String {
    (1..=3)
        .map(|i| {
            let text =
                std::fs::read_to_string(dir.join(format!("node{i}.log"))).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            format!(
                "--- node {i}\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_secured_compose_settings_form_a_cluster_that_lets_only_the_right_users_in() {
    let dir = tempfile::tempdir().unwrap();
    let secrets: PathBuf = dir.path().join("secrets");
    let made = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/make-secrets.sh"
        ))
        .arg(&secrets)
        .output()
        .expect("make-secrets.sh runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let shared = std::fs::read_to_string(secrets.join("weir.properties"))
        .unwrap()
        .replace("/run/secrets", &secrets.display().to_string());
    let ports = free_ports(9);
    let (internal, external, controller) = (&ports[0..3], &ports[3..6], &ports[6..9]);
    let voters: Vec<String> = (0..3)
        .map(|i| format!("{}@127.0.0.1:{}", i + 1, controller[i]))
        .collect();
    let mut nodes = Nodes(Vec::new());
    for i in 0..3 {
        let data = dir.path().join(format!("data{}", i + 1));
        std::fs::create_dir_all(&data).unwrap();
        let props = dir.path().join(format!("node{}.properties", i + 1));
        std::fs::write(
            &props,
            shared.replace("/var/lib/weir", &data.display().to_string()),
        )
        .unwrap();
        let listeners = format!(
            "INTERNAL://127.0.0.1:{},EXTERNAL://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
            internal[i], external[i], controller[i]
        );
        let log = std::fs::File::create(dir.path().join(format!("node{}.log", i + 1))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("--config")
            .arg(&props)
            .args(["--set", &format!("node.id={}", i + 1)])
            .args(["--set", &format!("listeners={listeners}")])
            .args(["--set", &format!("advertised.listeners={listeners}")])
            .args([
                "--set",
                &format!("controller.quorum.voters={}", voters.join(",")),
            ])
            .args(["--set", &format!("log.dirs={}", data.display())])
            .args(["--set", "metrics.listen="])
            .args([
                "--set",
                &format!(
                    "ssl.keystore.location={}/weir-{}.pem",
                    secrets.display(),
                    i + 1
                ),
            ])
            .args(["--set", "min.insync.replicas=2"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("weir starts");
        nodes.0.push(child);
    }
    let bootstrap = format!("127.0.0.1:{},127.0.0.1:{}", external[0], external[1]);
    // admin's password, from the client settings the script wrote.
    let admin = properties(&secrets.join("admin.properties"));
    let jaas = &admin
        .iter()
        .find(|(k, _)| k == "sasl.jaas.config")
        .unwrap()
        .1;
    let admin_pw = jaas
        .split("password=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let cfg = client(&bootstrap, &secrets, "PLAIN", "admin", admin_pw);

    // Three brokers registered: the quorum formed over mutual TLS.
    let consumer: BaseConsumer = cfg.create().expect("consumer");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n =
            tokio::task::block_in_place(|| consumer.fetch_metadata(None, Duration::from_secs(3)))
                .map(|m| m.brokers().len())
                .unwrap_or(0);
        if n == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{n} brokers\n{}",
            logs(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // admin creates a topic on all three; acks=all needs a follower, which fetches as
    // `broker` over SASL_SSL.
    let a: AdminClient<DefaultClientContext> = cfg.create().expect("admin");
    let replicas = [&[1, 2, 3][..]];
    let r = a
        .create_topics(
            &[NewTopic::new(
                "secure",
                1,
                TopicReplication::Variable(&replicas),
            )],
            &AdminOptions::new().operation_timeout(Some(T)),
        )
        .await
        .expect("create");
    assert!(r[0].is_ok(), "{r:?}");
    let mut acks_all = cfg.clone();
    acks_all.set("acks", "all");
    let producer: FutureProducer = acks_all.create().expect("producer");
    for i in 0..10 {
        producer
            .send(
                FutureRecord::<(), _>::to("secure").payload(&format!("v{i}")),
                T,
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("produce {i}: {e}\n{}", logs(dir.path())));
    }
    let mut c = cfg.clone();
    c.set("group.id", "secure-readers")
        .set("auto.offset.reset", "earliest");
    let reader: BaseConsumer = c.create().expect("consumer");
    reader.subscribe(&["secure"]).unwrap();
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < 10 {
        assert!(Instant::now() < deadline, "read {got} of 10");
        if let Some(m) = tokio::task::block_in_place(|| reader.poll(Duration::from_millis(200))) {
            assert!(m.expect("consume").payload().is_some());
            got += 1;
        }
    }

    // A SCRAM user made by admin authenticates but, without ACLs, may not read.
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "user",
            "create",
            "--name",
            "carol",
            "--mechanism",
            "SCRAM-SHA-512",
        ])
        .args(["--bootstrap-server", &bootstrap])
        .arg("--command-config")
        .arg(secrets.join("admin.properties"))
        .env("WEIR_USER_PASSWORD", "carol-secret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let carol = client(
        &bootstrap,
        &secrets,
        "SCRAM-SHA-512",
        "carol",
        "carol-secret",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        let p: FutureProducer = carol.create().expect("producer");
        match p
            .send(
                FutureRecord::<(), _>::to("secure").payload("x"),
                Duration::from_secs(5),
            )
            .await
        {
            Err((e, _)) if e.to_string().contains("uthoriz") => break e.to_string(),
            other => assert!(
                Instant::now() < deadline,
                "carol's produce: {other:?}\n{}",
                logs(dir.path())
            ),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(err.contains("Topic authorization failed"), "{err}");
    // A wrong password is refused outright, with an authentication error.
    let wrong = client(&bootstrap, &secrets, "PLAIN", "admin", "not-the-password");
    let errors = ClientErrors::default();
    let c: BaseConsumer<ClientErrors> =
        wrong.create_with_context(errors.clone()).expect("consumer");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = errors.0.lock().unwrap().clone();
        if seen.iter().any(|e| e.contains("Authentication failed")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no authentication error: {seen:?}"
        );
        tokio::task::block_in_place(|| c.poll(Duration::from_millis(100)));
    }
}
