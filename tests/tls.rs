//! TLS listeners against real clients: librdkafka (the `rdkafka` crate, built with
//! OpenSSL) produces, consumes and administers over SSL and mutual TLS; Metadata answers
//! with the addresses of the listener a client came in on; clients without a trusted
//! certificate (none, another CA's, an expired one), garbage and stalled handshakes are
//! refused without disturbing the
//! listener; certificates rotate without a restart; bad TLS settings stop the start with
//! a message naming what is wrong. The certificates are made here with rcgen.

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestBroker;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(20);

/// A test CA with a server certificate (for 127.0.0.1 and localhost) and a client one,
/// plus a second, untrusted CA with its own client certificate.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let (issuer, ca_pem, ca_key) = ca("weir test CA");
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
        // Kept so the rotation test can issue more server certificates.
        std::fs::write(dir.path().join("ca.key"), ca_key).unwrap();
        let (server_cert, server_key) = leaf(&issuer, "broker", &["127.0.0.1", "localhost"]);
        // Kafka's PEM keystore: the private key and the chain in one file.
        std::fs::write(
            dir.path().join("server.pem"),
            format!("{server_key}{server_cert}"),
        )
        .unwrap();
        let (client_cert, client_key) = leaf(&issuer, "client", &[]);
        std::fs::write(dir.path().join("client.crt"), client_cert).unwrap();
        std::fs::write(dir.path().join("client.key"), client_key).unwrap();
        // From the trusted CA, but valid only until yesterday.
        let (expired_cert, expired_key) = expired_leaf(&issuer, "expired");
        std::fs::write(dir.path().join("expired.crt"), expired_cert).unwrap();
        std::fs::write(dir.path().join("expired.key"), expired_key).unwrap();
        let (rogue, rogue_pem, rogue_key) = ca("rogue CA");
        std::fs::write(dir.path().join("rogue-ca.pem"), rogue_pem).unwrap();
        std::fs::write(dir.path().join("rogue-ca.key"), rogue_key).unwrap();
        let (rogue_cert, rogue_key) = leaf(&rogue, "mallory", &[]);
        std::fs::write(dir.path().join("rogue.crt"), rogue_cert).unwrap();
        std::fs::write(dir.path().join("rogue.key"), rogue_key).unwrap();
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// A new server certificate (another common name) from the same CA, into `file`.
    fn reissue_server(&self, file: &Path, cn: &str) {
        let ca_params = ca_params("weir test CA");
        let ca_key = KeyPair::from_pem(&std::fs::read_to_string(self.path("ca.key")).unwrap())
            .expect("ca key");
        let issuer = Issuer::new(ca_params, ca_key);
        let (cert, key) = leaf(&issuer, cn, &["127.0.0.1", "localhost"]);
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, format!("{key}{cert}")).unwrap();
        std::fs::rename(tmp, file).unwrap();
    }
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A CA: its issuer, certificate PEM and key PEM.
fn ca(cn: &str) -> (Issuer<'static, KeyPair>, String, String) {
    let key = KeyPair::generate().expect("key");
    let params = ca_params(cn);
    let cert = params.self_signed(&key).expect("ca cert");
    let key_pem = key.serialize_pem();
    (Issuer::new(params, key), cert.pem(), key_pem)
}

/// A certificate for `cn` (with `sans`) signed by `issuer`: (certificate PEM, key PEM).
fn leaf(issuer: &Issuer<'_, KeyPair>, cn: &str, sans: &[&str]) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.signed_by(&key, issuer).expect("sign");
    (cert.pem(), key.serialize_pem())
}

/// A certificate for `cn` signed by `issuer` that expired yesterday (valid from 30 days
/// ago): (certificate PEM, key PEM).
fn expired_leaf(issuer: &Issuer<'_, KeyPair>, cn: &str) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(30);
    params.not_after = now - time::Duration::days(1);
    let cert = params.signed_by(&key, issuer).expect("sign");
    (cert.pem(), key.serialize_pem())
}

/// A broker with a PLAINTEXT and an SSL listener (both on free ports), `extra` settings.
async fn broker(pki: &Pki, extra: &[String]) -> TestBroker {
    let mut sets = vec![
        "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0".to_string(),
        format!("ssl.keystore.location={}", pki.p("server.pem")),
    ];
    sets.extend(extra.iter().cloned());
    let sets: Vec<&str> = sets.iter().map(|s| s.as_str()).collect();
    TestBroker::start(&sets).await
}

fn ssl_addr(b: &TestBroker) -> String {
    b.broker
        .as_ref()
        .unwrap()
        .listener_addr("SSL")
        .expect("SSL listener")
        .to_string()
}

fn client(bootstrap: &str, pki: &Pki, cert: Option<(&str, &str)>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", pki.p("ca.pem"))
        .set("socket.timeout.ms", "10000")
        .set("message.timeout.ms", "20000");
    if let Some((crt, key)) = cert {
        c.set("ssl.certificate.location", pki.p(crt))
            .set("ssl.key.location", pki.p(key));
    }
    c
}

async fn create_topic(cfg: &ClientConfig, name: &str) {
    create(cfg, NewTopic::new(name, 1, TopicReplication::Fixed(1))).await;
}

/// Creates `topic` over `cfg`; it must succeed at once.
async fn create(cfg: &ClientConfig, topic: NewTopic<'_>) {
    let admin: AdminClient<DefaultClientContext> = cfg.create().expect("admin");
    let opts = AdminOptions::new().operation_timeout(Some(T));
    let r = admin
        .create_topics([&topic], &opts)
        .await
        .expect("create topics");
    r[0].as_ref().expect("topic created");
}

/// Produce `values` to partition 0 of `topic` and read them back, both over `cfg`.
async fn round_trip(cfg: &ClientConfig, topic: &str, values: &[Vec<u8>]) {
    let producer: FutureProducer = cfg.create().expect("producer");
    for v in values {
        producer
            .send(FutureRecord::<(), _>::to(topic).partition(0).payload(v), T)
            .await
            .expect("delivered");
    }
    let mut ccfg = cfg.clone();
    ccfg.set("group.id", "tls-test")
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = ccfg.create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + T;
    let mut got = Vec::new();
    // Client-level errors (a broker it cannot connect to, say) are kept for the message.
    let mut errors = Vec::new();
    while got.len() < values.len() && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => got.push(m.payload().unwrap_or_default().to_vec()),
            Some(Err(e)) => errors.push(e.to_string()),
            None => {}
        }
    }
    assert_eq!(
        got.len(),
        values.len(),
        "messages read back over TLS; client errors: {errors:?}"
    );
    assert!(
        got == values,
        "the values read back differ from those produced"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn librdkafka_produces_and_consumes_over_tls_and_metadata_names_the_listener_used() {
    let pki = Pki::new();
    let b = broker(&pki, &[]).await;
    let ssl = ssl_addr(&b);
    let cfg = client(&ssl, &pki, None);
    create_topic(&cfg, "tls").await;
    // Small records, and large ones the broker sends from its files (read and encrypted
    // in the process instead of sendfile).
    let mut values: Vec<Vec<u8>> = (0..50).map(|i| format!("v{i}").into_bytes()).collect();
    values.extend((0..4).map(|i| vec![b'a' + i as u8; 200_000]));
    round_trip(&cfg, "tls", &values).await;

    // Each listener's clients learn the brokers' addresses on that listener.
    let consumer: BaseConsumer = cfg.create().expect("consumer");
    let md = tokio::task::block_in_place(|| consumer.fetch_metadata(None, T)).expect("metadata");
    let port: u16 = ssl.rsplit_once(':').unwrap().1.parse().unwrap();
    assert_eq!(
        md.brokers()[0].port() as u16,
        port,
        "SSL clients get the SSL port"
    );
    let plain: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .expect("consumer");
    let md = tokio::task::block_in_place(|| plain.fetch_metadata(None, T)).expect("metadata");
    assert_eq!(
        md.brokers()[0].port() as u16,
        b.addr.port(),
        "PLAINTEXT clients get the PLAINTEXT port"
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_admits_only_clients_with_a_trusted_certificate() {
    let pki = Pki::new();
    let b = broker(
        &pki,
        &[
            "ssl.client.auth=required".to_string(),
            format!("ssl.truststore.location={}", pki.p("ca.pem")),
        ],
    )
    .await;
    let ssl = ssl_addr(&b);
    let trusted = client(&ssl, &pki, Some(("client.crt", "client.key")));
    create_topic(&trusted, "mtls").await;
    round_trip(&trusted, "mtls", &[b"hello".to_vec()]).await;

    for (what, cert) in [
        ("no certificate", None),
        (
            "a certificate from another CA",
            Some(("rogue.crt", "rogue.key")),
        ),
        (
            "an expired certificate",
            Some(("expired.crt", "expired.key")),
        ),
    ] {
        let consumer: BaseConsumer = client(&ssl, &pki, cert)
            .set("socket.timeout.ms", "3000")
            .create()
            .expect("consumer");
        let r =
            tokio::task::block_in_place(|| consumer.fetch_metadata(None, Duration::from_secs(3)));
        assert!(r.is_err(), "a client with {what} was let in");
    }
    // The refusals did not disturb the listener.
    create_topic(&trusted, "mtls-after").await;
    round_trip(&trusted, "mtls-after", &[b"again".to_vec()]).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_and_stalled_handshakes_are_closed_and_the_listener_keeps_serving() {
    let pki = Pki::new();
    let b = broker(&pki, &[]).await;
    let ssl = ssl_addr(&b);
    // A Kafka request in the clear (ApiVersions) where a TLS ClientHello belongs.
    let mut s = TcpStream::connect(&ssl).await.unwrap();
    s.write_all(&[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0, 0])
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue, // a TLS alert, then the close
            }
        }
    })
    .await;
    assert_eq!(
        closed,
        Ok(true),
        "a plaintext request on the TLS port is closed"
    );

    // A client that opens and says nothing is closed once the handshake timeout passes.
    let started = Instant::now();
    let mut idle = TcpStream::connect(&ssl).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(20), idle.read(&mut buf)).await;
    assert!(
        matches!(r, Ok(Ok(0)) | Ok(Err(_))),
        "a stalled handshake is closed by the broker: {r:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "closed too early"
    );

    let cfg = client(&ssl, &pki, None);
    create_topic(&cfg, "after-garbage").await;
    round_trip(&cfg, "after-garbage", &[b"ok".to_vec()]).await;
    b.stop().await;
}

/// The common name of the certificate a TLS server presents.
async fn served_cn(addr: &str, pki: &Pki) -> String {
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(pki.path("ca.pem")).unwrap();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(name, tcp).await.expect("handshake");
    let der = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let text = String::from_utf8_lossy(&der).to_string();
    ["broker-a", "broker-b", "broker"]
        .into_iter()
        .find(|cn| text.contains(cn))
        .unwrap_or("?")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_certificate_is_served_to_new_connections_without_a_restart() {
    let pki = Pki::new();
    let keystore = pki.path("rotating.pem");
    pki.reissue_server(&keystore, "broker-a");
    let b = TestBroker::start(&[
        "listeners=SSL://127.0.0.1:0",
        &format!("ssl.keystore.location={}", keystore.display()),
    ])
    .await;
    let ssl = ssl_addr(&b);
    assert_eq!(served_cn(&ssl, &pki).await, "broker-a");
    pki.reissue_server(&keystore, "broker-b");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if served_cn(&ssl, &pki).await == "broker-b" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
    }
    // A keystore that no longer parses keeps the last good certificate in service.
    std::fs::write(&keystore, "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(served_cn(&ssl, &pki).await, "broker-b");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_tls_settings_stop_the_start_with_a_message_naming_the_problem() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let start = |extra: Vec<String>| {
        let mut sets = vec![
            "listeners=SSL://127.0.0.1:0".to_string(),
            format!("log.dirs={}", dir.path().join("data").display()),
            "metrics.listen=".to_string(),
        ];
        sets.extend(extra);
        async move {
            match weir::config::Config::load(None, Vec::new(), &sets) {
                Err(e) => e.to_string(),
                Ok(cfg) => match weir::broker::Broker::start(cfg).await {
                    Err(e) => format!("{e:#}"),
                    Ok(b) => {
                        b.shutdown().await.unwrap();
                        "started".to_string()
                    }
                },
            }
        }
    };
    let missing = start(vec!["ssl.keystore.location=/nonexistent/server.pem".into()]).await;
    assert!(missing.contains("/nonexistent/server.pem"), "{missing}");
    let no_key = start(vec![format!("ssl.keystore.location={}", pki.p("ca.pem"))]).await;
    assert!(no_key.contains("PRIVATE KEY"), "{no_key}");
    let jks = start(vec![
        format!("ssl.keystore.location={}", pki.p("server.pem")),
        "ssl.keystore.type=JKS".into(),
    ])
    .await;
    assert!(jks.contains("PEM"), "{jks}");
    let none = start(Vec::new()).await;
    assert!(none.contains("ssl.keystore.location"), "{none}");
    let old = start(vec![
        format!("ssl.keystore.location={}", pki.p("server.pem")),
        "ssl.enabled.protocols=TLSv1.1".into(),
    ])
    .await;
    assert!(old.contains("TLSv1.1"), "{old}");
    let sasl = start(vec!["listener.security.protocol.map=SSL:SASL_SSL".into()]).await;
    assert!(sasl.contains("SASL"), "{sasl}");
}

/// The certificates of the cluster tests, for the nodes' settings (a plain `fn` gives
/// them): the test CA's, and for node 3 a server certificate from the rogue CA.
fn cluster_pki() -> &'static Pki {
    static PKI: std::sync::OnceLock<Pki> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        let pki = Pki::new();
        let key =
            KeyPair::from_pem(&std::fs::read_to_string(pki.path("rogue-ca.key")).unwrap()).unwrap();
        let (cert, key) = leaf(
            &Issuer::new(ca_params("rogue CA"), key),
            "node3",
            &["127.0.0.1"],
        );
        std::fs::write(pki.path("rogue-server.pem"), format!("{key}{cert}")).unwrap();
        pki
    })
}

fn cluster_tls(i: usize) -> Vec<String> {
    let pki = cluster_pki();
    // Node 3 holds a certificate from the rogue CA: the others refuse it.
    let keystore = if i == 2 {
        "rogue-server.pem"
    } else {
        "server.pem"
    };
    vec![
        format!("ssl.keystore.location={}", pki.p(keystore)),
        format!("ssl.truststore.location={}", pki.p("ca.pem")),
        "ssl.client.auth=required".to_string(),
        "min.insync.replicas=2".to_string(),
        // Node 3 leaves the ISR soon after it fails to fetch, so acks=all can complete.
        "replica.lag.time.max.ms=2000".to_string(),
    ]
}

/// As [`cluster_tls`], with the CONTROLLER listener (Raft, heartbeats) on TLS as well.
fn cluster_tls_everywhere(i: usize) -> Vec<String> {
    let mut sets = cluster_tls(i);
    sets.push("listener.security.protocol.map=SSL:SSL,CONTROLLER:SSL".to_string());
    sets
}

/// Waits (up to a minute) until Metadata over TLS lists exactly the brokers `ids`: the
/// nodes register once the quorum has formed.
async fn wait_for_brokers(cfg: &ClientConfig, ids: &[i32], c: &cluster::Cluster) {
    let consumer: BaseConsumer = cfg.create().expect("consumer");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let md = tokio::task::block_in_place(|| consumer.fetch_metadata(None, T));
        let mut got: Vec<i32> = md
            .map(|m| m.brokers().iter().map(|b| b.id()).collect())
            .unwrap_or_default();
        got.sort_unstable();
        if got == ids {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "brokers {got:?}, expected {ids:?}\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Creates `topic` with one partition on `replicas` (min.insync.replicas 2).
async fn create_replicated_topic(cfg: &ClientConfig, topic: &str, replicas: &[i32]) {
    let replicas = [replicas];
    create(
        cfg,
        NewTopic::new(topic, 1, TopicReplication::Variable(&replicas))
            .set("min.insync.replicas", "2"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn brokers_replicate_over_mutual_tls_and_refuse_a_node_with_an_untrusted_certificate() {
    let pki = cluster_pki();
    let c = cluster::Cluster::start_tls(3, cluster_tls);
    let bootstrap = format!("{},{}", c.addr(0), c.addr(1));
    let cfg = client(&bootstrap, pki, Some(("client.crt", "client.key")));
    // Nodes 1 and 2 form the quorum's majority and register; node 3 registers too
    // (the controller listener is plaintext) but can replicate with no one.
    wait_for_brokers(&cfg, &[1, 2, 3], &c).await;
    // Led by node 1 (the first replica): node 3 cannot lead anyone.
    create_replicated_topic(&cfg, "rep", &[1, 2, 3]).await;
    // acks=all with min.insync.replicas=2: acknowledged once a follower fetched over TLS.
    let mut pcfg = cfg.clone();
    pcfg.set("acks", "all");
    let values: Vec<Vec<u8>> = (0..20).map(|i| format!("r{i}").into_bytes()).collect();
    round_trip(&pcfg, "rep", &values).await;
    // Node 3 never gets into the ISR: the leader refuses its fetches (its certificate is
    // from another CA).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let consumer: BaseConsumer = cfg.create().expect("consumer");
    let md = tokio::task::block_in_place(|| consumer.fetch_metadata(Some("rep"), T))
        .expect("metadata over TLS");
    let isr: Vec<i32> = md.topics()[0].partitions()[0].isr().to_vec();
    assert!(
        isr.len() >= 2 && !isr.contains(&3),
        "ISR {isr:?}\n{}",
        c.logs()
    );
    assert!(
        std::fs::read_to_string(c.dir().join("node3.log"))
            .unwrap()
            .contains("TLS"),
        "node 3 logs its refused TLS connections"
    );
}

/// Every listener on mutual TLS, the CONTROLLER one included: node 3, whose certificate
/// comes from another CA, cannot take part in the metadata quorum (its Raft and
/// registration connections are refused), while nodes 1 and 2 form the quorum and serve.
#[tokio::test(flavor = "multi_thread")]
async fn the_quorum_runs_over_mutual_tls_and_a_node_with_an_untrusted_certificate_cannot_join() {
    let pki = cluster_pki();
    let c = cluster::Cluster::start_tls(3, cluster_tls_everywhere);
    let bootstrap = format!("{},{}", c.addr(0), c.addr(1));
    let cfg = client(&bootstrap, pki, Some(("client.crt", "client.key")));
    wait_for_brokers(&cfg, &[1, 2], &c).await;
    create_replicated_topic(&cfg, "ctl", &[1, 2]).await;
    let mut pcfg = cfg.clone();
    pcfg.set("acks", "all");
    let values: Vec<Vec<u8>> = (0..20).map(|i| format!("c{i}").into_bytes()).collect();
    round_trip(&pcfg, "ctl", &values).await;
    // Only nodes 1 and 2 are registered brokers.
    let consumer: BaseConsumer = cfg.create().expect("consumer");
    let md = tokio::task::block_in_place(|| consumer.fetch_metadata(None, T)).expect("metadata");
    let mut ids: Vec<i32> = md.brokers().iter().map(|b| b.id()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2], "{}", c.logs());
    // The voters refuse node 3's certificate when they dial it, and node 3 sees its
    // CONTROLLER listener's handshakes fail. A voter's first try may come before node 3
    // listens ("connection refused"); the refused certificate is logged as the new
    // reason within seconds.
    let log = |i: usize| std::fs::read_to_string(c.dir().join(format!("node{i}.log"))).unwrap();
    let refused = || {
        (1..=2).any(|i| {
            log(i)
                .lines()
                .any(|l| l.contains("node 3") && l.contains("invalid peer certificate"))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !refused() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        refused(),
        "a voter logs node 3's refused certificate\n{}",
        c.logs()
    );
    assert!(
        log(3)
            .lines()
            .any(|l| l.contains("TLS handshake failed") && l.contains("listener=CONTROLLER")),
        "node 3 logs the failed handshakes\n{}",
        c.logs()
    );
}

/// `weir`'s operator commands over TLS: with the flags (`--tls-truststore`, and a client
/// certificate for mutual TLS) or with a Kafka client properties file.
#[tokio::test(flavor = "multi_thread")]
async fn operator_commands_work_over_tls_and_mutual_tls() {
    let pki = Pki::new();
    let b = broker(
        &pki,
        &[
            format!(
                "listener.name.ssl.ssl.truststore.location={}",
                pki.p("ca.pem")
            ),
            "listener.name.ssl.ssl.client.auth=required".into(),
        ],
    )
    .await;
    let ssl = ssl_addr(&b);
    let weir = |args: Vec<String>, stdin: Option<&str>| {
        let ssl = ssl.clone();
        let stdin = stdin.map(str::to_string);
        async move {
            let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir"));
            cmd.args(&args)
                .args(["-b", &ssl, "--timeout", "10"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().expect("spawn weir");
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).await.unwrap();
            }
            drop(input);
            let out = child.wait_with_output().await.unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).to_string(),
                String::from_utf8_lossy(&out.stderr).to_string(),
            )
        }
    };
    let mtls = |rest: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
        v.extend([
            "--tls-truststore".into(),
            pki.p("ca.pem"),
            "--tls-cert".into(),
            pki.p("client.crt"),
            "--tls-key".into(),
            pki.p("client.key"),
        ]);
        v
    };
    let (code, out, err) = weir(mtls(&["topic", "create", "secure", "-p", "2"]), None).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = weir(mtls(&["produce", "secure", "-k", "k"]), Some("one\ntwo\n")).await;
    assert_eq!(code, 0, "{err}");
    // Kafka's client properties, as kafka-topics.sh --command-config takes them.
    let props = pki.path("client.properties");
    let keystore = pki.path("client.pem");
    std::fs::write(
        &keystore,
        std::fs::read_to_string(pki.path("client.key")).unwrap()
            + &std::fs::read_to_string(pki.path("client.crt")).unwrap(),
    )
    .unwrap();
    std::fs::write(
        &props,
        format!(
            "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={}\n\
             ssl.keystore.type=PEM\nssl.keystore.location={}\n",
            pki.p("ca.pem"),
            keystore.display()
        ),
    )
    .unwrap();
    let (code, out, err) = weir(
        vec![
            "consume".into(),
            "secure".into(),
            "-e".into(),
            "--command-config".into(),
            props.display().to_string(),
        ],
        None,
    )
    .await;
    assert_eq!((code, out.as_str()), (0, "one\ntwo\n"), "{err}");
    // Without a client certificate the broker refuses the handshake; without TLS the
    // command cannot talk to the listener. Both are connection errors (exit code 3).
    let (code, _, err) = weir(
        vec![
            "topic".into(),
            "list".into(),
            "--tls-truststore".into(),
            pki.p("ca.pem"),
        ],
        None,
    )
    .await;
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = weir(vec!["topic".into(), "list".into()], None).await;
    assert_eq!(code, 3, "{err}");
    // A CA that did not sign the broker's certificate: refused by the command.
    let (code, _, err) = weir(
        vec![
            "topic".into(),
            "list".into(),
            "--tls-truststore".into(),
            pki.p("rogue-ca.pem"),
        ],
        None,
    )
    .await;
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("certificate") || err.contains("Certificate"),
        "{err}"
    );
    b.stop().await;
}
