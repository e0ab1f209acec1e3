//! A full disk answers KAFKA_STORAGE_ERROR, loses no acknowledged write, and leaves the
//! log readable, before and after a restart. Uses a small tmpfs, so it needs root (CI and
//! the dev machines run as root); elsewhere it says so and does nothing.

mod common;

use std::process::Command;

use bytes::Bytes;
use common::{batch, decode_records, Conn, Rec};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use weir::broker::Broker;
use weir::config::Config;

struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

async fn start(data: &std::path::Path, meta: &std::path::Path, port: u16) -> Broker {
    common::init_tracing();
    let settings = vec![
        format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
        format!("log.dirs={}", data.display()),
        format!("metadata.log.dir={}", meta.display()),
        "metrics.listen=".to_string(),
        "log.segment.bytes=1048576".to_string(),
    ];
    Broker::start(Config::load(None, Vec::new(), &settings).unwrap())
        .await
        .expect("broker starts")
}

async fn fetch_all(c: &mut Conn, expected: usize) -> Vec<kafka_protocol::records::Record> {
    let mut out = Vec::new();
    let mut offset = 0i64;
    while out.len() < expected {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_bytes(8 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name("full"))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(4 << 20)])]);
        let resp: FetchResponse = c.call(ApiKey::Fetch, 12, &req).await;
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "log stays readable");
        let recs = decode_records(p.records.as_ref().unwrap());
        if recs.is_empty() {
            break;
        }
        offset = recs.last().unwrap().offset + 1;
        out.extend(recs);
    }
    out
}

#[tokio::test]
async fn full_disk_is_a_storage_error_and_loses_nothing() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let meta = root.path().join("meta");
    std::fs::create_dir_all(&data).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(&data)
        .status();
    if !matches!(mounted, Ok(s) if s.success()) {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    }
    let _guard = Tmpfs(data.clone());
    let broker = start(&data, &meta, 0).await;
    let port = broker.client_addr().port();
    let mut c = Conn::connect(broker.client_addr()).await;
    let md: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(name("full")))
                ]))
                .with_allow_auto_topic_creation(true),
        )
        .await;
    assert_eq!(md.topics[0].error_code, 0);
    let value = vec![0x5au8; 64 * 1024];
    let mut acked = 0usize;
    let mut saw_storage_error = false;
    for i in 0..200u32 {
        let key = i.to_be_bytes();
        let records: Bytes = batch(&[Rec::kv(&key, &value)], Compression::None, None);
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name("full"))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records))])]);
        let resp: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
        let p = &resp.responses[0].partition_responses[0];
        if p.error_code == 0 {
            assert_eq!(p.base_offset, acked as i64, "offsets stay dense");
            acked += 1;
        } else {
            assert_eq!(
                p.error_code,
                ResponseError::KafkaStorageError.code(),
                "{:?}",
                p.error_message
            );
            saw_storage_error = true;
            break;
        }
    }
    assert!(saw_storage_error, "3 MiB cannot hold 200 x 64 KiB");
    assert!(
        acked > 5,
        "some writes fit before the disk filled ({acked})"
    );
    let recs = fetch_all(&mut c, acked).await;
    assert_eq!(recs.len(), acked, "every acknowledged record is readable");
    drop(c);
    // The shutdown may fail to write checkpoints on the full disk; recovery must cope.
    let _ = broker.shutdown().await;
    let broker = start(&data, &meta, port).await;
    let mut c = Conn::connect(broker.client_addr()).await;
    let recs = fetch_all(&mut c, acked).await;
    assert_eq!(
        recs.len(),
        acked,
        "every acknowledged record survives a restart"
    );
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.key.as_deref(), Some(&(i as u32).to_be_bytes()[..]));
    }
    drop(c);
    let _ = broker.shutdown().await;
}
