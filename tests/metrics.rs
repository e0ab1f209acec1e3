//! The metrics port serves request, error, byte and connection metrics from the first
//! request on, the scrape-time gauges (logs, cluster, Raft, process), and `/health` and
//! `/ready`, which follow the broker's life. (One test per binary: the metrics recorder
//! is process-global.)

mod common;

use std::time::Duration;

use common::{batch, Conn, Rec};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir::broker::Broker;
use weir::config::Config;

async fn scrape(addr: std::net::SocketAddr) -> String {
    get(addr, "/metrics").await
}

/// The raw HTTP response (status line, headers, body) to `GET path`.
async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("metrics port");
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .expect("scrape in time")
        .unwrap();
    out
}

#[tokio::test]
async fn metrics_endpoint_reports_requests_bytes_and_connections() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let maddr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    weir::metrics::install(maddr).expect("exporter");
    assert!(get(maddr, "/health").await.starts_with("HTTP/1.1 200"));
    let r = get(maddr, "/ready").await;
    assert!(
        r.starts_with("HTTP/1.1 503"),
        "ready before the broker runs: {r}"
    );
    assert!(get(maddr, "/other").await.starts_with("HTTP/1.1 404"));
    let settings = vec![
        "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
        format!("log.dirs={}", dir.path().display()),
        "metrics.listen=".to_string(),
    ];
    let broker = Broker::start(Config::load(None, Vec::new(), &settings).unwrap())
        .await
        .unwrap();
    let mut c = Conn::connect(broker.client_addr()).await;
    let topic = TopicName(StrBytes::from_static_str("metered"));
    let _: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(topic.clone()))
                ]))
                .with_allow_auto_topic_creation(true),
        )
        .await;
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic.clone())
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(7)
                .with_records(Some(batch(
                    &[Rec::kv(b"k", b"v")],
                    Compression::None,
                    None,
                )))])]);
    let _: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic)
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(
                    &[Rec::kv(b"k", b"v")],
                    Compression::None,
                    None,
                )))])]);
    let _: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
    let text = scrape(maddr).await;
    for needle in [
        "weir_requests_total{api=\"Produce\",version=\"9\"} 2",
        "weir_requests_total{api=\"Metadata\",version=\"12\"} 1",
        "weir_request_errors_total{api=\"Produce\",error_code=\"3\"} 1",
        "weir_request_duration_seconds_bucket{api=\"Produce\"",
        "weir_topic_bytes_in_total{topic=\"metered\"}",
        "weir_topic_records_in_total{topic=\"metered\"} 1",
        "weir_connections_open{listener=\"PLAINTEXT\"} 1",
        "weir_connections_accepted_total{listener=\"PLAINTEXT\"} 1",
        "weir_up 1",
        "weir_request_stage_seconds_bucket{api=\"Produce\",stage=\"queue\"",
        "weir_request_stage_seconds_bucket{api=\"Produce\",stage=\"handle\"",
        "weir_request_stage_seconds_bucket{api=\"Produce\",stage=\"send\"",
        "weir_partition_log_end_offset{topic=\"metered\",partition=\"0\"} 1",
        "weir_partition_high_watermark{topic=\"metered\",partition=\"0\"} 1",
        "weir_partition_log_start_offset{topic=\"metered\",partition=\"0\"} 0",
        "weir_partition_size_bytes{topic=\"metered\",partition=\"0\"}",
        "weir_partition_leaders 1",
        "weir_offline_partitions 0",
        "weir_brokers 1",
        "weir_brokers_fenced 0",
        "weir_log_segments 1",
        "weir_log_dir_usable_bytes{dir=",
        "weir_log_dir_offline{dir=",
        "weir_produce_purgatory_size 0",
        "weir_raft_is_leader 1",
        "weir_raft_voters 1",
        "weir_raft_leader_id 1",
        "weir_raft_commit_index",
        "weir_build_info{version=",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(get(maddr, "/ready").await.starts_with("HTTP/1.1 200"));
    // Consumer lag is computed by the broker: high watermark 1, committed 0.
    let _: FindCoordinatorResponse = c
        .call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("lagging")),
        )
        .await;
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("lagging")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("metered")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(0),
                ]),
        ]);
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &commit).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let text = scrape(maddr).await;
        let lag = "weir_group_lag_records{group=\"lagging\",topic=\"metered\",partition=\"0\"} 1";
        if text.contains(lag)
            && text.contains(
                "weir_group_committed_offset{group=\"lagging\",topic=\"metered\",partition=\"0\"} 0",
            )
            && text.contains("weir_group_state{group=\"lagging\",state=\"Empty\"} 1")
            && text.contains("weir_group_members{group=\"lagging\"} 0")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no lag metrics for the group:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A client that goes away is counted as closed, promptly.
    drop(c);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = scrape(maddr).await;
        if text.contains("weir_connections_open{listener=\"PLAINTEXT\"} 0")
            && text.contains("weir_connections_closed_total{listener=\"PLAINTEXT\"} 1")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "connection not counted as closed:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Client telemetry (KIP-714): with a subscription, librdkafka pushes its own metrics
    // and they are exported next to the broker's.
    let mut c = Conn::connect(broker.client_addr()).await;
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let set = |k: &'static str, v: &'static str| {
        AlterableConfig::default()
            .with_name(StrBytes::from_static_str(k))
            .with_config_operation(0)
            .with_value(Some(StrBytes::from_static_str(v)))
    };
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(16)
            .with_resource_name(StrBytes::from_static_str("everything"))
            .with_configs(vec![
                set("metrics", "*"),
                set("interval.ms", "1000"),
                set("match", "client_id=push.*"),
            ]),
    ]);
    let r: IncrementalAlterConfigsResponse = c.call(ApiKey::IncrementalAlterConfigs, 1, &req).await;
    assert_eq!(r.responses[0].error_code, 0, "{r:?}");
    let producer: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.client_addr().to_string())
        .set("client.id", "pusher")
        .create()
        .unwrap();
    producer
        .send(
            rdkafka::producer::FutureRecord::to("metered")
                .partition(0)
                .payload("pushed")
                .key("k"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = scrape(maddr).await;
        let pushed = text.lines().any(|l| {
            l.starts_with("org_apache_kafka_producer_")
                && l.contains("client_id=\"pusher\"")
                && l.contains("client_software_name=\"librdkafka\"")
        });
        if pushed && text.contains("weir_client_telemetry_clients 1") {
            assert!(text.contains("weir_client_telemetry_pushes_total{result=\"accepted\"}"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no pushed client metrics:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(producer);
    broker.shutdown().await.unwrap();
    assert!(get(maddr, "/ready").await.starts_with("HTTP/1.1 503"));
    assert!(get(maddr, "/health").await.starts_with("HTTP/1.1 200"));
}
