//! Test support: an in-process broker on 127.0.0.1:0 with a temporary data directory, and
//! raw Kafka requests over TCP encoded with the kafka-protocol crate.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir::broker::Broker;
use weir::config::Config;

/// A broker running inside the test process.
pub struct TestBroker {
    pub broker: Option<Broker>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub settings: Vec<String>,
}

impl TestBroker {
    pub async fn start(extra: &[&str]) -> TestBroker {
        init_tracing();
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, extra, None).await
    }

    async fn start_in(dir: tempfile::TempDir, extra: &[&str], port: Option<u16>) -> TestBroker {
        let mut settings = vec![
            format!("listeners=PLAINTEXT://127.0.0.1:{}", port.unwrap_or(0)),
            format!("log.dirs={}", dir.path().join("data").display()),
            "metrics.listen=".to_string(),
        ];
        settings.extend(extra.iter().map(|s| s.to_string()));
        let config = Config::load(None, Vec::new(), &settings).expect("config");
        let broker = Broker::start(config).await.expect("broker starts");
        let addr = broker.client_addr();
        TestBroker {
            broker: Some(broker),
            addr,
            dir,
            settings: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Clean shutdown, then start again on the same port and data.
    pub async fn restart(self) -> TestBroker {
        let TestBroker {
            broker,
            addr,
            dir,
            settings,
        } = self;
        broker
            .expect("running")
            .shutdown()
            .await
            .expect("clean shutdown");
        let extra: Vec<&str> = settings.iter().map(|s| s.as_str()).collect();
        Self::start_in(dir, &extra, Some(addr.port())).await
    }

    pub async fn stop(mut self) {
        if let Some(b) = self.broker.take() {
            b.shutdown().await.expect("clean shutdown");
        }
    }

    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// The bound address of listener `name` (SASL_PLAINTEXT, SSL, ...).
    pub fn listener(&self, name: &str) -> SocketAddr {
        self.broker
            .as_ref()
            .expect("running")
            .listener_addr(name)
            .unwrap_or_else(|| panic!("no listener {name}"))
    }
}

/// Free ports on 127.0.0.1 (bound together, so they differ, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let socks: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    socks
        .iter()
        .map(|s| s.local_addr().expect("addr").port())
        .collect()
}

/// A librdkafka client context that keeps the errors it reports (an authentication
/// failure comes this way, not as a request's error).
#[derive(Clone, Default)]
pub struct ClientErrors(pub std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl rdkafka::client::ClientContext for ClientErrors {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.0.lock().unwrap().push(format!("{error}: {reason}"));
    }
}

impl rdkafka::consumer::ConsumerContext for ClientErrors {}

/// Broker logs in test output (shown for failing tests only).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,openraft=warn"))
        .with_test_writer()
        .try_init();
}

/// A raw client connection.
pub struct Conn {
    pub stream: TcpStream,
    correlation: i32,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Conn {
            stream,
            correlation: 0,
        }
    }

    /// A SaslHandshake for `mechanism` at `version`; its answer.
    pub async fn sasl_handshake(
        &mut self,
        version: i16,
        mechanism: &str,
    ) -> kafka_protocol::messages::SaslHandshakeResponse {
        let req = kafka_protocol::messages::SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_string(mechanism.into()));
        self.call(ApiKey::SaslHandshake, version, &req).await
    }

    /// Log in with SASL/PLAIN (SaslHandshake v1, which must be accepted, then
    /// SaslAuthenticate v2); the SaslAuthenticate answer.
    pub async fn sasl_plain(
        &mut self,
        user: &str,
        password: &str,
    ) -> kafka_protocol::messages::SaslAuthenticateResponse {
        use kafka_protocol::messages::SaslAuthenticateRequest;
        let hs = self.sasl_handshake(1, "PLAIN").await;
        assert_eq!(hs.error_code, 0, "PLAIN is enabled");
        let token = weir::sasl::plain::client_token(user, password);
        self.call(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(token.into()),
        )
        .await
    }

    /// Send a request and decode the response.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &Req,
    ) -> Resp {
        let frame = self.send(api, version, req).await;
        let mut body = self.recv_frame().await.expect("response frame");
        let header_version = if api == ApiKey::ApiVersions {
            0
        } else {
            api.response_header_version(version)
        };
        let header = ResponseHeader::decode(&mut body, header_version).expect("response header");
        assert_eq!(header.correlation_id, frame, "correlation id");
        Resp::decode(&mut body, version).expect("response body")
    }

    /// Send a request; returns its correlation id.
    pub async fn send<Req: Encodable>(&mut self, api: ApiKey, version: i16, req: &Req) -> i32 {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("weir-test")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, api.request_header_version(version))
            .expect("encode header");
        req.encode(&mut buf, version).expect("encode body");
        self.send_raw(&buf).await;
        self.correlation
    }

    pub async fn send_raw(&mut self, payload: &[u8]) {
        let mut frame = BytesMut::with_capacity(payload.len() + 4);
        frame.put_i32(payload.len() as i32);
        frame.put_slice(payload);
        self.stream.write_all(&frame).await.expect("write");
    }

    /// Read one response frame; `None` when the broker closed the connection.
    pub async fn recv_frame(&mut self) -> Option<Bytes> {
        let fut = async {
            let mut len = [0u8; 4];
            self.stream.read_exact(&mut len).await.ok()?;
            let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
            self.stream.read_exact(&mut buf).await.ok()?;
            Some(Bytes::from(buf))
        };
        tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .expect("response within 10 s")
    }

    /// True when the broker closes the connection (EOF) within a few seconds.
    pub async fn closed_by_peer(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// One test record.
pub struct Rec<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub timestamp: i64,
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

impl<'a> Rec<'a> {
    pub fn kv(key: &'a [u8], value: &'a [u8]) -> Rec<'a> {
        Rec {
            key: Some(key),
            value: Some(value),
            timestamp: now_ms(),
            headers: Vec::new(),
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Encode one v2 batch; `producer` is (id, epoch, base sequence) for idempotent batches.
pub fn batch(
    recs: &[Rec<'_>],
    compression: Compression,
    producer: Option<(i64, i16, i32)>,
) -> Bytes {
    let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
    let records: Vec<Record> = recs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut headers = IndexMap::new();
            for (k, v) in &r.headers {
                headers.insert(
                    StrBytes::from_string(k.to_string()),
                    v.map(Bytes::copy_from_slice),
                );
            }
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: pid,
                producer_epoch: epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder starts a new batch when offset - sequence changes, and takes
                // the base sequence from the first record: -1 + i keeps "no sequence".
                sequence: if seq < 0 {
                    i as i32 - 1
                } else {
                    seq + i as i32
                },
                timestamp: r.timestamp,
                key: r.key.map(Bytes::copy_from_slice),
                value: r.value.map(Bytes::copy_from_slice),
                headers,
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode batch");
    buf.freeze()
}

/// Decode every record of fetched bytes.
pub fn decode_records(bytes: &Bytes) -> Vec<Record> {
    let mut b = bytes.clone();
    let mut out = Vec::new();
    while b.has_remaining() {
        let sets =
            kafka_protocol::records::RecordBatchDecoder::decode(&mut b).expect("decode batch");
        out.extend(sets.records);
    }
    out
}
