//! SASL/OAUTHBEARER against librdkafka and raw requests: tokens signed by a key of a JWKS
//! served over HTTPS (or read from a file) authenticate their `sub`; a token with a key
//! the set lacks makes the broker fetch the set again (key rotation), and a changed file
//! is read again; expired tokens, wrong audience or issuer, bad signatures, symmetric
//! and unsigned (`alg: none`) tokens get Kafka's error challenge and then a refusal that
//! says why; unsigned tokens work only on a listener that names the unsecured validator
//! (librdkafka's `enable.sasl.oauthbearer.unsecure.jwt`); sessions end with their token
//! (KIP-368) and librdkafka renews them with fresh tokens without a failed request; the
//! `weir` commands log in with a token.

mod common;
#[path = "common/jwt.rs"]
mod jwt;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Conn, TestBroker};
use jwt::{JwksServer, Signer};
use kafka_protocol::messages::*;
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use weir::sasl::oauthbearer::client_message;

const T: Duration = Duration::from_secs(20);

fn sasl_addr(b: &TestBroker) -> SocketAddr {
    b.listener("SASL_PLAINTEXT")
}

/// A broker with a PLAINTEXT and a SASL_PLAINTEXT listener taking OAUTHBEARER tokens
/// for audience "weir" from issuer "test-idp", keys from `jwks_url`.
async fn broker(jwks_url: &str, extra: &[&str]) -> TestBroker {
    let url = format!("sasl.oauthbearer.jwks.endpoint.url={jwks_url}");
    let mut sets = vec![
        "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms=OAUTHBEARER",
        "sasl.oauthbearer.expected.audience=weir",
        "sasl.oauthbearer.expected.issuer=test-idp",
        url.as_str(),
    ];
    sets.extend_from_slice(extra);
    TestBroker::start(&sets).await
}

/// librdkafka's token source: a fresh token for `sub` from `signer` on every refresh.
#[derive(Clone)]
struct Tokens {
    signer: Arc<Signer>,
    sub: String,
    lifetime_s: i64,
    minted: Arc<std::sync::atomic::AtomicUsize>,
}

impl ClientContext for Tokens {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.minted
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(OAuthToken {
            token: self.signer.token(&self.sub, self.lifetime_s),
            principal_name: self.sub.clone(),
            lifetime_ms: (jwt::now() + self.lifetime_s) * 1000,
        })
    }
}

impl ConsumerContext for Tokens {}

fn tokens(signer: &Arc<Signer>, sub: &str, lifetime_s: i64) -> Tokens {
    Tokens {
        signer: signer.clone(),
        sub: sub.into(),
        lifetime_s,
        minted: Default::default(),
    }
}

fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("security.protocol", "sasl_plaintext")
        .set("sasl.mechanisms", "OAUTHBEARER")
        .set("socket.timeout.ms", "10000")
        .set("message.timeout.ms", "20000");
    c
}

/// Produces `n` records to `topic` and reads them back in a group, as `ctx`'s principal.
async fn round_trip(cfg: &ClientConfig, ctx: &Tokens, topic: &str, n: usize) {
    let producer: FutureProducer<Tokens> = cfg.create_with_context(ctx.clone()).expect("producer");
    for i in 0..n {
        let value = format!("v{i}");
        producer
            .send(FutureRecord::<(), _>::to(topic).payload(&value), T)
            .await
            .unwrap_or_else(|(e, _)| panic!("produce {i}: {e}"));
    }
    let mut c = cfg.clone();
    c.set("group.id", format!("{topic}-readers"))
        .set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer<Tokens> = c.create_with_context(ctx.clone()).expect("consumer");
    consumer.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = 0;
    while got < n {
        assert!(Instant::now() < deadline, "read {got} of {n}");
        if let Some(m) = tokio::task::block_in_place(|| consumer.poll(Duration::from_millis(200))) {
            let m = m.expect("consume");
            assert_eq!(m.payload(), Some(format!("v{got}").as_bytes()));
            got += 1;
        }
    }
}

/// What librdkafka reports when the broker refuses `ctx`'s tokens.
fn auth_error(cfg: &ClientConfig, ctx: &Tokens) -> String {
    let consumer: BaseConsumer<Tokens> = cfg.create_with_context(ctx.clone()).expect("consumer");
    let deadline = Instant::now() + T;
    // The refusal arrives as an error event on the consumer's queue.
    while Instant::now() < deadline {
        if let Some(Err(e)) =
            tokio::task::block_in_place(|| consumer.poll(Duration::from_millis(200)))
        {
            return e.to_string();
        }
        if let Err(e) = tokio::task::block_in_place(|| {
            consumer.fetch_metadata(None, Duration::from_millis(500))
        }) {
            let text = e.to_string();
            if text.contains("uthenticat") {
                return text;
            }
        }
    }
    panic!("no authentication error within {T:?}");
}

/// The answers to an OAUTHBEARER exchange with `token`: the first, and the second (after
/// the `%x01` acknowledgement) when the first was an error challenge.
async fn exchange(
    addr: SocketAddr,
    token: &str,
) -> (
    Conn,
    SaslAuthenticateResponse,
    Option<SaslAuthenticateResponse>,
) {
    let mut c = Conn::connect(addr).await;
    assert_eq!(c.sasl_handshake(1, "OAUTHBEARER").await.error_code, 0);
    let first: SaslAuthenticateResponse = c
        .call(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(client_message(token).into()),
        )
        .await;
    if first.error_code != 0 || first.auth_bytes.is_empty() {
        return (c, first, None);
    }
    let second: SaslAuthenticateResponse = c
        .call(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(vec![1u8].into()),
        )
        .await;
    (c, first, Some(second))
}

/// Asserts `token` is refused with the error challenge, then SASL_AUTHENTICATION_FAILED
/// whose message contains `why`, then a closed connection.
async fn refused(addr: SocketAddr, token: &str, why: &str) {
    let (mut c, first, second) = exchange(addr, token).await;
    assert_eq!(first.error_code, 0, "{first:?}");
    assert_eq!(&first.auth_bytes[..], br#"{"status":"invalid_token"}"#);
    let second = second.expect("the exchange goes on after the challenge");
    assert_eq!(second.error_code, 58, "{second:?}");
    let message = second
        .error_message
        .map(|m| m.to_string())
        .unwrap_or_default();
    assert!(message.contains(why), "{message:?} should say {why:?}");
    assert!(c.closed_by_peer().await, "closed after the refusal");
}

/// Waits until `token` authenticates (the broker has the key); returns the answer.
async fn accepted(addr: SocketAddr, token: &str, within: Duration) -> SaslAuthenticateResponse {
    let deadline = Instant::now() + within;
    loop {
        let (_, first, second) = exchange(addr, token).await;
        if second.is_none() && first.error_code == 0 {
            return first;
        }
        assert!(
            Instant::now() < deadline,
            "not accepted: {first:?} {second:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn librdkafka_authenticates_with_tokens_checked_against_an_https_jwks() {
    let k1 = Arc::new(Signer::new("k1"));
    let idp = JwksServer::start(jwt::jwks(&[&k1])).await;
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &idp.ca_pem).unwrap();
    // The broker trusts the provider's CA the way an operator would tell it to.
    std::env::set_var("SSL_CERT_FILE", ca.path());
    let b = broker(&idp.url(), &[]).await;
    let addr = sasl_addr(&b);
    let ok = accepted(addr, &k1.token("alice", 300), Duration::from_secs(10)).await;
    // Even without connections.max.reauth.ms the session ends with the token (Kafka 3.3+).
    assert!(
        (290_000..=300_000).contains(&ok.session_lifetime_ms),
        "{}",
        ok.session_lifetime_ms
    );

    let cfg = client(&addr.to_string());
    round_trip(&cfg, &tokens(&k1, "alice", 300), "oauth-https", 5).await;

    // Refusals, each with the reason.
    let mut c = jwt::claims("alice", 300);
    c["exp"] = json!(jwt::now() - 60);
    refused(addr, &k1.sign(&c), "expired").await;
    let mut c = jwt::claims("alice", 300);
    c["aud"] = json!("someone-else");
    refused(addr, &k1.sign(&c), "audience").await;
    let mut c = jwt::claims("alice", 300);
    c["iss"] = json!("evil-idp");
    refused(addr, &k1.sign(&c), "issuer").await;
    let mut c = jwt::claims("alice", 300);
    c.as_object_mut().unwrap().remove("sub");
    refused(addr, &k1.sign(&c), "no sub claim").await;
    refused(
        addr,
        &jwt::unsecured(&jwt::claims("alice", 300)),
        "alg none",
    )
    .await;
    let forger = Signer::new("k1");
    refused(addr, &forger.token("admin", 300), "signature").await;
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &jwt::claims("admin", 300),
        &jsonwebtoken::EncodingKey::from_secret(b"guess").unwrap(),
    )
    .unwrap();
    refused(addr, &hs, "symmetric").await;
    refused(addr, "not-a-jwt", "not a JWT").await;
    // A malformed first message is refused at once.
    let mut raw = Conn::connect(addr).await;
    raw.sasl_handshake(1, "OAUTHBEARER").await;
    let r: SaslAuthenticateResponse = raw
        .call(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default()
                .with_auth_bytes(b"n,,auth=Bearer x".to_vec().into()),
        )
        .await;
    assert_eq!(r.error_code, 58);
    assert!(r
        .error_message
        .unwrap()
        .contains("Invalid OAUTHBEARER client first message"));

    // librdkafka with a key the provider never published is refused.
    let err = auth_error(
        &cfg,
        &tokens(&Arc::new(Signer::new("rogue")), "mallory", 300),
    );
    assert!(err.contains("uthentication"), "{err}");

    // Key rotation: the provider publishes k2; the first token signed with it makes the
    // broker fetch the set again, and k2's tokens are accepted from then on.
    let fetches = idp.fetches();
    let k2 = Arc::new(Signer::new("k2"));
    idp.set(jwt::jwks(&[&k1, &k2]));
    accepted(addr, &k2.token("bob", 300), Duration::from_secs(10)).await;
    assert!(idp.fetches() > fetches);
    round_trip(&cfg, &tokens(&k2, "bob", 300), "oauth-rotated", 3).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jwks_file_is_read_again_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    let k1 = Signer::new("k1");
    std::fs::write(&file, jwt::jwks(&[&k1])).unwrap();
    let b = broker(&format!("file:{}", file.display()), &[]).await;
    let addr = sasl_addr(&b);
    accepted(addr, &k1.token("alice", 300), Duration::from_secs(1)).await;
    // The `weir` commands log in with a token given as the password.
    let weir = |token: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["user", "list", "--bootstrap-server", &addr.to_string()])
            .args(["--sasl-mechanism", "OAUTHBEARER"])
            .env("WEIR_SASL_PASSWORD", token)
            .output()
            .expect("weir runs")
    };
    let ok = weir(&k1.token("alice", 300));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let no = weir(&Signer::new("k1").token("alice", 300));
    assert!(!no.status.success());
    let err = String::from_utf8_lossy(&no.stderr);
    assert!(err.contains("invalid_token"), "{err}");
    let k2 = Signer::new("k2");
    refused(addr, &k2.token("alice", 300), "no key of the JWKS").await;
    let tmp = dir.path().join("jwks.tmp");
    std::fs::write(&tmp, jwt::jwks(&[&k2])).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    accepted(addr, &k2.token("alice", 300), Duration::from_secs(5)).await;
    refused(addr, &k1.token("alice", 300), "no key of the JWKS").await;
    b.stop().await;

    // A missing or broken file stops the broker at start with the reason.
    for (content, why) in [(None, "No such file"), (Some("{}"), "no \"keys\"")] {
        let f = dir.path().join("other.json");
        let _ = std::fs::remove_file(&f);
        if let Some(c) = content {
            std::fs::write(&f, c).unwrap();
        }
        let settings = vec![
            "listeners=SASL_PLAINTEXT://127.0.0.1:0".to_string(),
            "sasl.enabled.mechanisms=OAUTHBEARER".to_string(),
            format!("sasl.oauthbearer.jwks.endpoint.url=file:{}", f.display()),
            format!("log.dirs={}", dir.path().join("data2").display()),
            "metrics.listen=".to_string(),
        ];
        let config = weir::config::Config::load(None, Vec::new(), &settings).expect("config");
        let err = weir::broker::Broker::start(config)
            .await
            .err()
            .expect("refused");
        assert!(format!("{err:#}").contains(why), "{err:#}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unsecured_tokens_work_only_where_the_unsecured_validator_is_named() {
    let b = TestBroker::start(&[
        "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms=OAUTHBEARER",
        "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler",
    ])
    .await;
    let addr = sasl_addr(&b);
    let mut cfg = client(&addr.to_string());
    cfg.set("enable.sasl.oauthbearer.unsecure.jwt", "true")
        .set("sasl.oauthbearer.config", "principal=carol");
    // librdkafka makes its own unsigned tokens here: no token callback.
    let producer: FutureProducer = cfg.create().expect("producer");
    producer
        .send(FutureRecord::<(), _>::to("unsecured").payload("x"), T)
        .await
        .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
    // A signed token is not what this listener takes.
    refused(addr, &Signer::new("k").token("carol", 60), "only unsecured").await;
    b.stop().await;

    // Without the class named, OAUTHBEARER needs a key set: no silent unsecured default.
    let settings = vec![
        "listeners=SASL_PLAINTEXT://127.0.0.1:0".to_string(),
        "sasl.enabled.mechanisms=OAUTHBEARER".to_string(),
    ];
    let err = weir::config::Config::load(None, Vec::new(), &settings).unwrap_err();
    assert!(err.to_string().contains("jwks.endpoint.url"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_end_with_their_token_and_librdkafka_renews_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    let k1 = Arc::new(Signer::new("k1"));
    std::fs::write(&file, jwt::jwks(&[&k1])).unwrap();
    let b = broker(
        &format!("file:{}", file.display()),
        &[
            "connections.max.reauth.ms=60000",
            "sasl.oauthbearer.clock.skew.seconds=0",
        ],
    )
    .await;
    let addr = sasl_addr(&b);
    // The session lasts as long as the token, not connections.max.reauth.ms.
    let (mut c, first, _) = exchange(addr, &k1.token("alice", 3)).await;
    assert_eq!(first.error_code, 0);
    assert!(
        (1000..=3000).contains(&first.session_lifetime_ms),
        "{}",
        first.session_lifetime_ms
    );
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let _ = c
        .send(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(Some(vec![])),
        )
        .await;
    assert!(
        c.closed_by_peer().await,
        "a request after the token expired closes"
    );

    // librdkafka with 5-second tokens keeps producing for 12 s: it fetches new tokens
    // and re-authenticates before each session ends.
    let ctx = tokens(&k1, "alice", 5);
    let producer: FutureProducer<Tokens> = client(&addr.to_string())
        .create_with_context(ctx.clone())
        .expect("producer");
    let until = Instant::now() + Duration::from_secs(12);
    let mut sent = 0;
    while Instant::now() < until {
        producer
            .send(FutureRecord::<(), _>::to("renewed").payload("x"), T)
            .await
            .unwrap_or_else(|(e, _)| panic!("produce {sent}: {e}"));
        sent += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let minted = ctx.minted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(minted >= 3, "{minted} tokens for 12 s of 5-second tokens");
    b.stop().await;
}
