//! SASL authentication against real clients and raw requests: librdkafka authenticates
//! with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 (users made with `weir user`), wrong
//! passwords are refused with Kafka's error and message; the legacy unframed exchange,
//! requests before authentication, unknown mechanisms, oversized and truncated frames;
//! KIP-368 session lifetimes (a connection that does not re-authenticate is closed, one
//! that does goes on); and a 3-node cluster whose brokers replicate over a SASL listener
//! with SCRAM, where a user added on one node logs in on another and a client with an
//! OAUTHBEARER token (keys from a shared JWKS file) produces and reads on any node.

#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/jwt.rs"]
mod jwt;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{ClientErrors, Conn, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use weir::sasl::scram;
use weir::sasl::ScramMechanism;

const T: Duration = Duration::from_secs(20);
const PLAIN_USERS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret" user_alice="alice-secret";"#;

/// A broker with a PLAINTEXT and a SASL_PLAINTEXT listener (PLAIN users admin and alice,
/// SCRAM users from the metadata), `extra` settings.
async fn broker(extra: &[&str]) -> TestBroker {
    let plain = format!("listener.name.sasl_plaintext.plain.sasl.jaas.config={PLAIN_USERS}");
    let mut sets = vec![
        "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        plain.as_str(),
    ];
    sets.extend_from_slice(extra);
    TestBroker::start(&sets).await
}

fn sasl_addr(b: &TestBroker) -> SocketAddr {
    b.listener("SASL_PLAINTEXT")
}

fn client(bootstrap: &str, mechanism: &str, user: &str, password: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("security.protocol", "sasl_plaintext")
        .set("sasl.mechanisms", mechanism)
        .set("sasl.username", user)
        .set("sasl.password", password)
        .set("socket.timeout.ms", "10000")
        .set("message.timeout.ms", "20000");
    c
}

/// `weir user ARGS` against `bootstrap` as the PLAIN admin (new passwords come from
/// WEIR_USER_PASSWORD, as an operator would keep them off the command line); its output.
fn weir_user(bootstrap: &str, args: &[&str], password: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["user"])
        .args(args)
        .args([
            "--bootstrap-server",
            bootstrap,
            "--sasl-mechanism",
            "PLAIN",
            "--sasl-username",
            "admin",
        ])
        .env("WEIR_SASL_PASSWORD", "admin-secret")
        .env("WEIR_USER_PASSWORD", password)
        .output()
        .expect("run weir user");
    assert!(
        out.status.success(),
        "weir user {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn create(cfg: &ClientConfig, topic: NewTopic<'_>) {
    let admin: AdminClient<DefaultClientContext> = cfg.create().expect("admin");
    let opts = AdminOptions::new().operation_timeout(Some(T));
    let r = admin
        .create_topics([&topic], &opts)
        .await
        .expect("create topics");
    r[0].as_ref().expect("topic created");
}

/// Produce `n` values to partition 0 of `topic` and read them back, over `cfg`.
async fn round_trip(cfg: &ClientConfig, topic: &str, n: usize) {
    let producer: FutureProducer = cfg.create().expect("producer");
    for i in 0..n {
        producer
            .send(
                FutureRecord::<(), _>::to(topic)
                    .partition(0)
                    .payload(&format!("v{i}")),
                T,
            )
            .await
            .expect("delivered");
    }
    let mut ccfg = cfg.clone();
    ccfg.set("group.id", "sasl-test")
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = ccfg.create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + T;
    let mut got = 0;
    while got < n && Instant::now() < deadline {
        if let Some(Ok(m)) =
            tokio::task::block_in_place(|| consumer.poll(Duration::from_millis(200)))
        {
            assert!(m.payload().is_some());
            got += 1;
        }
    }
    assert!(
        got >= n,
        "{got} of {n} records read back over SASL from {topic}"
    );
}

/// What librdkafka with `cfg` reports when Metadata fails (bad credentials expected).
fn auth_error(cfg: &ClientConfig) -> String {
    let errors = ClientErrors::default();
    let consumer: BaseConsumer<ClientErrors> =
        cfg.create_with_context(errors.clone()).expect("consumer");
    // librdkafka connects to the bootstrap broker at once; polling serves its errors.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = errors.0.lock().unwrap().clone();
        if let Some(e) = seen.iter().find(|e| e.contains("uthentication")) {
            return e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no authentication error; errors: {seen:?}"
        );
        tokio::task::block_in_place(|| consumer.poll(Duration::from_millis(100)));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn librdkafka_authenticates_with_plain_and_scram_and_wrong_passwords_are_refused() {
    let b = broker(&[]).await;
    let addr = sasl_addr(&b).to_string();
    let created = weir_user(
        &addr,
        &["create", "--name", "carol", "--iterations", "8192"],
        "carol-pw",
    );
    assert!(created.contains("carol"), "{created}");
    let listed = weir_user(&addr, &["list"], "");
    assert!(
        listed.contains("SCRAM-SHA-256")
            && listed.contains("SCRAM-SHA-512")
            && listed.contains("8192"),
        "{listed}"
    );
    // PLAIN users come from the JAAS settings, SCRAM users from the metadata.
    let admin = client(&addr, "PLAIN", "alice", "alice-secret");
    create(&admin, NewTopic::new("sasl", 1, TopicReplication::Fixed(1))).await;
    for (mechanism, user, password) in [
        ("PLAIN", "alice", "alice-secret"),
        ("SCRAM-SHA-256", "carol", "carol-pw"),
        ("SCRAM-SHA-512", "carol", "carol-pw"),
    ] {
        round_trip(&client(&addr, mechanism, user, password), "sasl", 10).await;
        let e = auth_error(&client(&addr, mechanism, user, "wrong"));
        assert!(
            e.contains("Authentication") || e.contains("authentication"),
            "{mechanism}: {e}"
        );
    }
    // A SCRAM user is no PLAIN user, and a deleted credential stops working.
    assert!(auth_error(&client(&addr, "PLAIN", "carol", "carol-pw")).contains("uthentication"));
    weir_user(
        &addr,
        &["delete", "--name", "carol", "--mechanism", "SCRAM-SHA-512"],
        "",
    );
    assert!(
        auth_error(&client(&addr, "SCRAM-SHA-512", "carol", "carol-pw")).contains("uthentication")
    );
    round_trip(
        &client(&addr, "SCRAM-SHA-256", "carol", "carol-pw"),
        "sasl",
        10,
    )
    .await;
    // The PLAINTEXT listener of the same broker asks nobody, and says SASL is not its
    // business (Kafka's ILLEGAL_SASL_STATE).
    let mut plain = Conn::connect(b.addr).await;
    let r = plain.sasl_handshake(1, "PLAIN").await;
    assert_eq!(r.error_code, 34, "ILLEGAL_SASL_STATE");
}

async fn authenticate(c: &mut Conn, version: i16, token: Vec<u8>) -> SaslAuthenticateResponse {
    let req = SaslAuthenticateRequest::default().with_auth_bytes(token.into());
    c.call(ApiKey::SaslAuthenticate, version, &req).await
}

async fn metadata(c: &mut Conn) -> MetadataResponse {
    c.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![])),
    )
    .await
}

/// PLAIN over the framed exchange as `user`.
async fn login(addr: SocketAddr, user: &str, password: &str) -> (Conn, SaslAuthenticateResponse) {
    let mut c = Conn::connect(addr).await;
    let r = c.sasl_plain(user, password).await;
    (c, r)
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_exchanges_legacy_tokens_refusals_and_bad_frames() {
    let b = broker(&[]).await;
    let addr = sasl_addr(&b);

    // Only ApiVersions and the exchange come before authentication.
    let mut c = Conn::connect(addr).await;
    let v: ApiVersionsResponse = c
        .call(
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("test"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        )
        .await;
    let range = |k: ApiKey| {
        v.api_keys
            .iter()
            .find(|a| a.api_key == k as i16)
            .map(|a| (a.min_version, a.max_version))
    };
    assert_eq!(range(ApiKey::SaslHandshake), Some((0, 1)));
    assert_eq!(range(ApiKey::SaslAuthenticate), Some((0, 2)));
    c.send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    assert!(
        c.closed_by_peer().await,
        "Metadata before authentication closes the connection"
    );

    // An unknown mechanism: the list of enabled ones, then the connection closes.
    let mut c = Conn::connect(addr).await;
    let r = c.sasl_handshake(1, "GSSAPI").await;
    assert_eq!(r.error_code, 33, "UNSUPPORTED_SASL_MECHANISM");
    let offered: Vec<&str> = r.mechanisms.iter().map(|m| m.as_str()).collect();
    assert_eq!(offered, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
    assert!(c.closed_by_peer().await);

    // SaslAuthenticate before SaslHandshake.
    let mut c = Conn::connect(addr).await;
    let r = authenticate(&mut c, 1, b"x".to_vec()).await;
    assert_eq!(r.error_code, 34, "ILLEGAL_SASL_STATE");
    assert!(c.closed_by_peer().await);

    // The legacy exchange (handshake v0): bare tokens, answered bare; then requests.
    let mut c = Conn::connect(addr).await;
    assert_eq!(c.sasl_handshake(0, "PLAIN").await.error_code, 0);
    c.send_raw(&weir::sasl::plain::client_token("alice", "alice-secret"))
        .await;
    let answer = c.recv_frame().await.expect("a bare answer");
    assert!(answer.is_empty(), "PLAIN answers with an empty token");
    assert!(!metadata(&mut c).await.brokers.is_empty());
    // ... and a wrong password there: no answer, the connection closes.
    let mut c = Conn::connect(addr).await;
    assert_eq!(c.sasl_handshake(0, "PLAIN").await.error_code, 0);
    c.send_raw(&weir::sasl::plain::client_token("alice", "nope"))
        .await;
    assert!(
        c.recv_frame().await.is_none(),
        "the legacy exchange cannot say why"
    );

    // A wrong SCRAM proof: Kafka's message at once, the close after the delay.
    let (user_conn, r) = login(addr, "admin", "admin-secret").await;
    assert_eq!(r.error_code, 0);
    drop(user_conn);
    weir_user(
        &addr.to_string(),
        &["create", "--name", "erin", "--mechanism", "SCRAM-SHA-256"],
        "erin-pw",
    );
    let mut c = Conn::connect(addr).await;
    assert_eq!(c.sasl_handshake(1, "SCRAM-SHA-256").await.error_code, 0);
    let mut client = scram::Client::new(ScramMechanism::Sha256, "erin", "not-erin-pw");
    let first = authenticate(&mut c, 2, client.first()).await;
    assert_eq!(first.error_code, 0);
    let last = client.respond(&first.auth_bytes).unwrap();
    let r = authenticate(&mut c, 2, last).await;
    let answered = Instant::now();
    assert_eq!(r.error_code, 58, "SASL_AUTHENTICATION_FAILED");
    assert_eq!(
        r.error_message.as_deref(),
        Some("Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256")
    );
    assert!(c.closed_by_peer().await);
    assert!(
        answered.elapsed() >= Duration::from_millis(80),
        "closed after connection.failed.authentication.delay.ms"
    );

    // Frames larger than sasl.server.max.receive.size before authentication, and a
    // truncated one: closed, and the listener goes on serving.
    let mut c = Conn::connect(addr).await;
    use tokio::io::AsyncWriteExt;
    c.stream.write_all(&600_000i32.to_be_bytes()).await.unwrap();
    assert!(
        c.closed_by_peer().await,
        "an oversized frame before authentication"
    );
    let mut c = Conn::connect(addr).await;
    c.stream.write_all(&[0, 0, 0, 100, 1, 2, 3]).await.unwrap();
    c.stream.shutdown().await.unwrap();
    assert!(c.closed_by_peer().await);
    let (mut c, r) = login(addr, "alice", "alice-secret").await;
    assert_eq!(r.error_code, 0);
    assert!(!metadata(&mut c).await.brokers.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_end_unless_clients_authenticate_again() {
    metrics_addr();
    let b = broker(&["connections.max.reauth.ms=1500"]).await;
    let addr = sasl_addr(&b);
    let (mut c, r) = login(addr, "alice", "alice-secret").await;
    assert_eq!((r.error_code, r.session_lifetime_ms), (0, 1500));
    assert!(!metadata(&mut c).await.brokers.is_empty());
    tokio::time::sleep(Duration::from_millis(1600)).await;
    c.send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    assert!(
        c.closed_by_peer().await,
        "a request after the session ended closes the connection"
    );

    // Re-authenticating in time renews the session.
    let (mut c, _) = login(addr, "alice", "alice-secret").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(c.sasl_handshake(1, "PLAIN").await.error_code, 0);
    let r = authenticate(
        &mut c,
        2,
        weir::sasl::plain::client_token("alice", "alice-secret"),
    )
    .await;
    assert_eq!((r.error_code, r.session_lifetime_ms), (0, 1500));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        !metadata(&mut c).await.brokers.is_empty(),
        "served past the first session's end"
    );
    // ... but not as somebody else.
    assert_eq!(c.sasl_handshake(1, "PLAIN").await.error_code, 0);
    let r = authenticate(
        &mut c,
        2,
        weir::sasl::plain::client_token("admin", "admin-secret"),
    )
    .await;
    assert_eq!(r.error_code, 58);
    assert!(c.closed_by_peer().await);

    // librdkafka re-authenticates on its own (KIP-368) and keeps producing across
    // several session lifetimes on the same connections: re-authentications counted,
    // no session ended. (Only this test re-authenticates or lets sessions end.)
    let cfg = client(&addr.to_string(), "PLAIN", "alice", "alice-secret");
    create(&cfg, NewTopic::new("reauth", 1, TopicReplication::Fixed(1))).await;
    let reauths = || {
        counter(
            r#"weir_authentications_total{listener="SASL_PLAINTEXT",mechanism="PLAIN",result="success",reauthentication="true"}"#,
        )
    };
    let expired = || counter(r#"weir_sasl_sessions_expired_total{listener="SASL_PLAINTEXT"}"#);
    let (reauths_before, expired_before) = (reauths().await, expired().await);
    let producer: FutureProducer = cfg.create().expect("producer");
    let until = Instant::now() + Duration::from_secs(5);
    let mut sent = 0;
    while Instant::now() < until {
        producer
            .send(
                FutureRecord::<(), _>::to("reauth")
                    .partition(0)
                    .payload("x"),
                T,
            )
            .await
            .expect("delivered across re-authentications");
        sent += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sent > 50, "{sent}");
    let (reauths_after, expired_after) = (reauths().await, expired().await);
    assert!(
        reauths_after >= reauths_before + 2.0,
        "re-authentications {reauths_before} -> {reauths_after}"
    );
    assert_eq!(
        expired_after, expired_before,
        "sessions ended while librdkafka produced"
    );
}

/// The metrics exporter of this test process (one per process), on a free port.
fn metrics_addr() -> SocketAddr {
    static ADDR: std::sync::OnceLock<SocketAddr> = std::sync::OnceLock::new();
    *ADDR.get_or_init(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        weir::metrics::install(addr).expect("exporter");
        addr
    })
}

/// The value of the series `series` (name and labels as exported), 0 when absent.
async fn counter(series: &str) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(metrics_addr())
        .await
        .expect("metrics port");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Brokers of a cluster whose only client listener speaks SASL: they replicate with
/// SCRAM-SHA-512 as the user of their JAAS settings (added by the first to start).
/// The key set the cluster's nodes check OAUTHBEARER tokens against.
fn cluster_jwks() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("weir-sasl-cluster-{}.jwks", std::process::id()))
}

fn sasl_cluster(_: usize) -> Vec<String> {
    vec![
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512,OAUTHBEARER".into(),
        format!("sasl.oauthbearer.jwks.endpoint.url=file:{}", cluster_jwks().display()),
        "sasl.oauthbearer.expected.audience=weir".into(),
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512".into(),
        format!("listener.name.sasl_plaintext.plain.sasl.jaas.config={PLAIN_USERS}"),
        r#"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="broker-secret";"#.into(),
        "min.insync.replicas=2".into(),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_replicates_over_scram_and_users_log_in_on_every_node() {
    let idp = jwt::Signer::new("cluster-key");
    std::fs::write(cluster_jwks(), jwt::jwks(&[&idp])).unwrap();
    let c = cluster::Cluster::start_named(3, "SASL_PLAINTEXT", sasl_cluster);
    let bootstrap = format!("{},{}", c.addr(0), c.addr(1));
    let cfg = client(&bootstrap, "PLAIN", "admin", "admin-secret");
    let consumer: BaseConsumer = cfg.create().expect("consumer");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let md = tokio::task::block_in_place(|| consumer.fetch_metadata(None, T));
        let n = md.map(|m| m.brokers().len()).unwrap_or(0);
        if n == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{n} brokers registered\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let replicas = [&[1, 2, 3][..]];
    create(
        &cfg,
        NewTopic::new("rep", 1, TopicReplication::Variable(&replicas))
            .set("min.insync.replicas", "2"),
    )
    .await;
    // acks=all with min.insync.replicas=2: acknowledged once a follower fetched, which
    // it can only do after authenticating with SCRAM.
    let mut acks_all = cfg.clone();
    acks_all.set("acks", "all");
    round_trip(&acks_all, "rep", 20).await;

    // A user added through node 1 logs in on node 3 within a few seconds.
    weir_user(
        &c.addr(0).to_string(),
        &["create", "--name", "dave", "--mechanism", "SCRAM-SHA-512"],
        "dave-pw",
    );
    let on3 = client(&c.addr(2).to_string(), "SCRAM-SHA-512", "dave", "dave-pw");
    let deadline = Instant::now() + Duration::from_secs(5);
    let consumer: BaseConsumer = on3.create().expect("consumer");
    loop {
        match tokio::task::block_in_place(|| consumer.fetch_metadata(None, Duration::from_secs(2)))
        {
            Ok(_) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "dave on node 3: {e}\n{}",
                c.logs()
            ),
        }
    }

    // A client with an OAUTHBEARER token produces with acks=all through node 3 and
    // reads back through node 2.
    let token = idp.token("erin", 300);
    for node in [2, 1] {
        let mut cfg = client(&c.addr(node).to_string(), "OAUTHBEARER", "", "");
        cfg.set("acks", "all");
        let producer: FutureProducer<Bearer> = cfg
            .create_with_context(Bearer(token.clone()))
            .expect("producer");
        if node == 2 {
            producer
                .send(FutureRecord::<(), _>::to("rep").payload("by-token"), T)
                .await
                .unwrap_or_else(|(e, _)| panic!("produce with a token: {e}\n{}", c.logs()));
        } else {
            let md =
                tokio::task::block_in_place(|| producer.client().fetch_metadata(Some("rep"), T))
                    .expect("metadata with a token");
            assert_eq!(md.topics()[0].partitions()[0].replicas().len(), 3);
        }
    }
    std::fs::remove_file(cluster_jwks()).ok();
}

/// librdkafka's token source for the cluster test: always the same token.
#[derive(Clone)]
struct Bearer(String);

impl rdkafka::client::ClientContext for Bearer {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        Ok(rdkafka::client::OAuthToken {
            token: self.0.clone(),
            principal_name: "erin".into(),
            lifetime_ms: (jwt::now() + 300) * 1000,
        })
    }
}
