//! Wire-level behaviour of a real broker over TCP: ApiVersions and the KIP-511 fallback,
//! what Kafka does with bad frames, produce/fetch semantics, the idempotent producer and
//! restarts.

mod common;

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::{batch, decode_records, now_ms, Conn, Rec, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::records::Compression;
use tokio::io::AsyncWriteExt;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

async fn metadata(c: &mut Conn, topic: &str) -> MetadataResponse {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name(topic)))
        ]))
        .with_allow_auto_topic_creation(true);
    c.call(ApiKey::Metadata, 12, &req).await
}

async fn produce(
    c: &mut Conn,
    topic: &str,
    partition: i32,
    records: Bytes,
    acks: i16,
) -> produce_response::PartitionProduceResponse {
    let req = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])]);
    let resp: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
    resp.responses[0].partition_responses[0].clone()
}

fn fetch_req(topic: &str, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])])
}

async fn fetch(c: &mut Conn, topic: &str, offset: i64) -> fetch_response::PartitionData {
    let resp: FetchResponse = c
        .call(ApiKey::Fetch, 12, &fetch_req(topic, offset, 0))
        .await;
    resp.responses[0].partitions[0].clone()
}

async fn latest(c: &mut Conn, topic: &str, ts: i64) -> (i64, i64) {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(ts)])]);
    let resp: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 7, &req).await;
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    (p.offset, p.timestamp)
}

#[tokio::test]
async fn api_versions_every_version_and_kip511_fallback() {
    let b = TestBroker::start(&[]).await;
    let mut c = Conn::connect(b.addr).await;
    for v in 0..=4 {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("weir-test"))
            .with_client_software_version(StrBytes::from_static_str("1.0"));
        let resp: ApiVersionsResponse = c.call(ApiKey::ApiVersions, v, &req).await;
        assert_eq!(resp.error_code, 0, "v{v}");
        assert_eq!(resp.api_keys.len(), weir::handlers::APIS.len(), "v{v}");
        for (k, r) in weir::handlers::APIS {
            let e = resp
                .api_keys
                .iter()
                .find(|e| e.api_key == *k as i16)
                .expect("listed");
            assert_eq!((e.min_version, e.max_version), (r.min, r.max));
        }
        // Feature levels as Kafka 4.0 reports them, from v3 on; v3 leaves out supported
        // ranges that start at 0.
        let finalized: Vec<(String, i16)> = resp
            .finalized_features
            .iter()
            .map(|f| (f.name.to_string(), f.max_version_level))
            .collect();
        let supported: Vec<(String, i16, i16)> = resp
            .supported_features
            .iter()
            .map(|f| (f.name.to_string(), f.min_version, f.max_version))
            .collect();
        match v {
            0..=2 => assert!(finalized.is_empty() && supported.is_empty(), "v{v}"),
            _ => {
                let want: Vec<(String, i16)> = [
                    ("metadata.version", 25),
                    ("kraft.version", 1),
                    ("group.version", 1),
                    ("transaction.version", 1),
                ]
                .iter()
                .map(|(n, l)| (n.to_string(), *l))
                .collect();
                assert_eq!(finalized, want, "v{v}");
                assert!(resp.finalized_features_epoch > 0, "v{v}");
                let mut names: Vec<&str> = supported.iter().map(|s| s.0.as_str()).collect();
                names.sort_unstable();
                let want: &[&str] = if v == 3 {
                    &["metadata.version"]
                } else {
                    &[
                        "group.version",
                        "kraft.version",
                        "metadata.version",
                        "transaction.version",
                    ]
                };
                assert_eq!(names, want, "v{v}");
            }
        }
    }
    // A version from the future: header v2 with an empty tagged-field section, body junk.
    let mut raw = BytesMut::new();
    raw.put_i16(ApiKey::ApiVersions as i16);
    raw.put_i16(99);
    raw.put_i32(77);
    raw.put_i16(4);
    raw.put_slice(b"test");
    raw.put_u8(0);
    raw.put_slice(&[1, 2, 3]);
    c.send_raw(&raw).await;
    let mut body = c.recv_frame().await.expect("answered");
    let header = ResponseHeader::decode(&mut body, 0).unwrap();
    assert_eq!(header.correlation_id, 77);
    let resp = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(resp.error_code, ResponseError::UnsupportedVersion.code());
    assert!(resp
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::Produce as i16));
    b.stop().await;
}

#[tokio::test]
async fn bad_frames_close_the_connection_and_the_broker_keeps_serving() {
    let b = TestBroker::start(&["socket.request.max.bytes=1000"]).await;
    // Unsupported version of a known API.
    let mut c = Conn::connect(b.addr).await;
    // Metadata v14 does not exist (header: key 3, version 14, correlation 1, no client id).
    c.send_raw(&[0, 3, 0, 14, 0, 0, 0, 1, 0xff, 0xff]).await;
    assert!(c.closed_by_peer().await, "unsupported version closes");
    // Unknown API key.
    let mut c = Conn::connect(b.addr).await;
    c.send_raw(&[0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0, 0]).await;
    assert!(c.closed_by_peer().await, "unknown api key closes");
    // Oversized frame.
    let mut c = Conn::connect(b.addr).await;
    // Only the size prefix: the broker refuses the frame before reading it.
    c.stream.write_all(&2000i32.to_be_bytes()).await.unwrap();
    assert!(c.closed_by_peer().await, "oversized frame closes");
    // Truncated body.
    let mut c = Conn::connect(b.addr).await;
    c.send_raw(&[0, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 9])
        .await;
    assert!(c.closed_by_peer().await, "malformed body closes");
    // A tiny request claiming two billion topics (kafka-protocol sizes the Vec from it).
    let mut c = Conn::connect(b.addr).await;
    c.send_raw(&[
        0, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0,
    ])
    .await;
    assert!(c.closed_by_peer().await, "impossible array length closes");
    // Still healthy.
    let mut c = Conn::connect(b.addr).await;
    let md = metadata(&mut c, "still-alive").await;
    assert_eq!(md.topics[0].error_code, 0);
    b.stop().await;
}

#[tokio::test]
async fn produce_and_fetch_round_trip_whole_batches() {
    let b = TestBroker::start(&[]).await;
    let mut c = Conn::connect(b.addr).await;
    let md = metadata(&mut c, "rt").await;
    assert_eq!(md.topics[0].error_code, 0);
    assert_ne!(md.topics[0].topic_id, uuid::Uuid::nil());
    let ts = now_ms() - 1000;
    let recs = vec![
        Rec {
            key: Some(b"k1"),
            value: Some(b"v1"),
            timestamp: ts,
            headers: vec![("h", Some(b"x")), ("n", None)],
        },
        Rec {
            key: None,
            value: Some(b"v2"),
            timestamp: ts + 1,
            headers: vec![],
        },
        Rec {
            key: Some(b"k3"),
            value: None,
            timestamp: ts + 2,
            headers: vec![],
        },
    ];
    for (i, codec) in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ]
    .into_iter()
    .enumerate()
    {
        let r = produce(&mut c, "rt", 0, batch(&recs, codec, None), -1).await;
        assert_eq!(r.error_code, 0, "{codec:?}: {:?}", r.error_message);
        assert_eq!(r.base_offset, 3 * i as i64);
    }
    let p = fetch(&mut c, "rt", 0).await;
    assert_eq!(p.error_code, 0);
    assert_eq!(p.high_watermark, 15);
    let got = decode_records(p.records.as_ref().unwrap());
    assert_eq!(got.len(), 15);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        let want = &recs[i % 3];
        assert_eq!(r.key.as_deref(), want.key);
        assert_eq!(r.value.as_deref(), want.value);
        assert_eq!(r.timestamp, want.timestamp);
    }
    assert_eq!(
        got[0].headers.get(&StrBytes::from_static_str("n")),
        Some(&None)
    );
    // From the middle of a batch: the whole containing batch comes back.
    let p = fetch(&mut c, "rt", 4).await;
    let got = decode_records(p.records.as_ref().unwrap());
    assert_eq!(got[0].offset, 3);
    // At the end: empty, not null.
    let p = fetch(&mut c, "rt", 15).await;
    assert_eq!(p.error_code, 0);
    assert_eq!(p.records.as_ref().map(|r| r.len()), Some(0));
    // Past the end.
    let p = fetch(&mut c, "rt", 99).await;
    assert_eq!(p.error_code, ResponseError::OffsetOutOfRange.code());
    // By timestamp, earliest, latest, max timestamp.
    assert_eq!(latest(&mut c, "rt", ts + 1).await.0, 1);
    assert_eq!(latest(&mut c, "rt", -2).await.0, 0);
    assert_eq!(latest(&mut c, "rt", -1).await.0, 15);
    assert_eq!(latest(&mut c, "rt", ts + 10_000).await.0, -1);
    let (off, t) = latest(&mut c, "rt", -3).await;
    assert_eq!(t, ts + 2);
    assert_eq!(off, 2, "first record carrying the max timestamp");
    b.stop().await;
}

#[tokio::test]
async fn bad_batches_are_refused_and_nothing_is_written() {
    let b = TestBroker::start(&[]).await;
    let mut c = Conn::connect(b.addr).await;
    metadata(&mut c, "bad").await;
    let good = batch(&[Rec::kv(b"k", b"v")], Compression::None, None);
    let mut corrupt = good.to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let r = produce(&mut c, "bad", 0, Bytes::from(corrupt), -1).await;
    assert_eq!(r.error_code, ResponseError::CorruptMessage.code());
    let mut magic1 = good.to_vec();
    magic1[16] = 1;
    let r = produce(&mut c, "bad", 0, Bytes::from(magic1), -1).await;
    assert_eq!(r.error_code, ResponseError::InvalidRecord.code());
    let mut torn = good.to_vec();
    torn.truncate(good.len() - 3);
    let r = produce(&mut c, "bad", 0, Bytes::from(torn), -1).await;
    assert_eq!(r.error_code, ResponseError::CorruptMessage.code());
    let big = vec![7u8; 2 << 20];
    let r = produce(
        &mut c,
        "bad",
        0,
        batch(&[Rec::kv(b"k", &big)], Compression::None, None),
        -1,
    )
    .await;
    assert_eq!(r.error_code, ResponseError::MessageTooLarge.code());
    let r = produce(&mut c, "bad", 7, good.clone(), -1).await;
    assert_eq!(r.error_code, ResponseError::UnknownTopicOrPartition.code());
    assert_eq!(latest(&mut c, "bad", -1).await.0, 0, "nothing was written");
    let r = produce(&mut c, "bad", 0, good, -1).await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    let md = metadata(&mut c, "bad name!").await;
    assert_eq!(
        md.topics[0].error_code,
        ResponseError::InvalidTopicException.code()
    );
    b.stop().await;
}

#[tokio::test]
async fn unknown_topics_without_auto_create() {
    let b = TestBroker::start(&["auto.create.topics.enable=false"]).await;
    let mut c = Conn::connect(b.addr).await;
    let md = metadata(&mut c, "nope").await;
    assert_eq!(
        md.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let r = produce(
        &mut c,
        "nope",
        0,
        batch(&[Rec::kv(b"k", b"v")], Compression::None, None),
        1,
    )
    .await;
    assert_eq!(r.error_code, ResponseError::UnknownTopicOrPartition.code());
    b.stop().await;
}

#[tokio::test]
async fn long_poll_fetch_is_woken_by_new_data() {
    let b = TestBroker::start(&[]).await;
    let mut c = Conn::connect(b.addr).await;
    metadata(&mut c, "poll").await;
    let mut waiter = Conn::connect(b.addr).await;
    let started = Instant::now();
    let fetch = tokio::spawn(async move {
        let resp: FetchResponse = waiter
            .call(ApiKey::Fetch, 12, &fetch_req("poll", 0, 20_000))
            .await;
        resp
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !fetch.is_finished(),
        "the fetch parks while there is no data"
    );
    produce(
        &mut c,
        "poll",
        0,
        batch(&[Rec::kv(b"k", b"v")], Compression::None, None),
        1,
    )
    .await;
    let resp = tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .expect("woken well before max_wait")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let recs = decode_records(resp.responses[0].partitions[0].records.as_ref().unwrap());
    assert_eq!(recs.len(), 1);
    b.stop().await;
}

#[tokio::test]
async fn acks_zero_gets_no_response_and_the_connection_stays_usable() {
    let b = TestBroker::start(&[]).await;
    let mut c = Conn::connect(b.addr).await;
    metadata(&mut c, "zero").await;
    let req = ProduceRequest::default()
        .with_acks(0)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name("zero"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(
                    &[Rec::kv(b"k", b"v")],
                    Compression::None,
                    None,
                )))])]);
    c.send(ApiKey::Produce, 9, &req).await;
    // The next answer on this connection is for the metadata request.
    let md = metadata(&mut c, "zero").await;
    assert_eq!(md.topics[0].error_code, 0);
    assert_eq!(latest(&mut c, "zero", -1).await.0, 1);
    b.stop().await;
}

async fn init_pid(c: &mut Conn) -> (i64, i16) {
    let resp: InitProducerIdResponse = c
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    assert_eq!(resp.error_code, 0);
    (resp.producer_id.0, resp.producer_epoch)
}

#[tokio::test]
async fn idempotent_producer_dedups_and_survives_restart() {
    let b = TestBroker::start(&[]).await;
    let mut c = Conn::connect(b.addr).await;
    metadata(&mut c, "idem").await;
    let (pid, epoch) = init_pid(&mut c).await;
    let (pid2, _) = init_pid(&mut c).await;
    assert_ne!(pid, pid2, "each InitProducerId gets a new id");
    let b0 = batch(
        &[Rec::kv(b"a", b"1"), Rec::kv(b"b", b"2")],
        Compression::None,
        Some((pid, epoch, 0)),
    );
    let r = produce(&mut c, "idem", 0, b0.clone(), -1).await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    let r = produce(&mut c, "idem", 0, b0.clone(), -1).await;
    assert_eq!(
        (r.error_code, r.base_offset),
        (0, 0),
        "a retried batch is answered with its original offset"
    );
    let gap = batch(
        &[Rec::kv(b"c", b"3")],
        Compression::None,
        Some((pid, epoch, 5)),
    );
    let r = produce(&mut c, "idem", 0, gap, -1).await;
    assert_eq!(r.error_code, ResponseError::OutOfOrderSequenceNumber.code());
    let b1 = batch(
        &[Rec::kv(b"c", b"3")],
        Compression::None,
        Some((pid, epoch, 2)),
    );
    let r = produce(&mut c, "idem", 0, b1.clone(), -1).await;
    assert_eq!((r.error_code, r.base_offset), (0, 2));
    drop(c);

    let b = b.restart().await;
    let mut c = Conn::connect(b.addr).await;
    let r = produce(&mut c, "idem", 0, b1, -1).await;
    assert_eq!(
        (r.error_code, r.base_offset),
        (0, 2),
        "duplicate detected after a restart"
    );
    let (pid3, _) = init_pid(&mut c).await;
    assert!(
        pid3 != pid && pid3 != pid2,
        "producer ids are never reused across restarts"
    );
    let p = fetch(&mut c, "idem", 0).await;
    let got = decode_records(p.records.as_ref().unwrap());
    let values: Vec<&[u8]> = got.iter().map(|r| r.value.as_deref().unwrap()).collect();
    assert_eq!(values, vec![&b"1"[..], b"2", b"3"]);
    b.stop().await;
}

#[tokio::test]
async fn leader_epochs_are_consistent_between_metadata_and_offset_for_leader_epoch() {
    let b = TestBroker::start(&[]).await;
    let mut c = Conn::connect(b.addr).await;
    let md = metadata(&mut c, "epochs").await;
    let epoch = md.topics[0].partitions[0].leader_epoch;
    assert!(epoch >= 0);
    for _ in 0..3 {
        produce(
            &mut c,
            "epochs",
            0,
            batch(&[Rec::kv(b"k", b"v")], Compression::None, None),
            1,
        )
        .await;
    }
    let p = fetch(&mut c, "epochs", 0).await;
    let recs = decode_records(p.records.as_ref().unwrap());
    assert!(recs.iter().all(|r| r.partition_leader_epoch == epoch));
    let req = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(name("epochs"))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(epoch)
                .with_leader_epoch(epoch)])]);
    let resp: OffsetForLeaderEpochResponse = c.call(ApiKey::OffsetForLeaderEpoch, 4, &req).await;
    let e = &resp.topics[0].partitions[0];
    assert_eq!((e.error_code, e.leader_epoch, e.end_offset), (0, epoch, 3));
    // A newer epoch than the leader knows is UNKNOWN_LEADER_EPOCH.
    let req = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(name("epochs"))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(epoch + 1)
                .with_leader_epoch(epoch)])]);
    let resp: OffsetForLeaderEpochResponse = c.call(ApiKey::OffsetForLeaderEpoch, 4, &req).await;
    assert_eq!(
        resp.topics[0].partitions[0].error_code,
        ResponseError::UnknownLeaderEpoch.code()
    );
    b.stop().await;
}

#[tokio::test]
async fn restart_keeps_data_offsets_and_topic_ids() {
    let b = TestBroker::start(&[]).await;
    let mut c = Conn::connect(b.addr).await;
    let id = metadata(&mut c, "durable").await.topics[0].topic_id;
    for i in 0..20u8 {
        let r = produce(
            &mut c,
            "durable",
            0,
            batch(&[Rec::kv(&[i], &[i; 100])], Compression::Lz4, None),
            -1,
        )
        .await;
        assert_eq!(r.base_offset, i as i64);
    }
    drop(c);
    let b = b.restart().await;
    let mut c = Conn::connect(b.addr).await;
    assert_eq!(metadata(&mut c, "durable").await.topics[0].topic_id, id);
    assert_eq!(latest(&mut c, "durable", -1).await.0, 20);
    let got = decode_records(fetch(&mut c, "durable", 0).await.records.as_ref().unwrap());
    assert_eq!(got.len(), 20);
    assert_eq!(got[19].key.as_deref(), Some(&[19u8][..]));
    let r = produce(
        &mut c,
        "durable",
        0,
        batch(&[Rec::kv(b"x", b"y")], Compression::None, None),
        -1,
    )
    .await;
    assert_eq!(r.base_offset, 20);
    b.stop().await;
}

/// Every file under `dir`, by path (the running broker rewrites its checkpoints on its
/// own schedule, so contents may change; the set of files may not).
fn snapshot(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let md = e.metadata().unwrap();
            if md.is_dir() {
                todo.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_second_broker_on_a_live_data_directory_stops_before_touching_it() {
    let b = TestBroker::start(&[]).await;
    let mut c = Conn::connect(b.addr).await;
    metadata(&mut c, "owned").await;
    let r = produce(
        &mut c,
        "owned",
        0,
        batch(&[Rec::kv(b"k", b"v")], Compression::None, None),
        -1,
    )
    .await;
    assert_eq!(r.error_code, 0);
    let data = b.dir.path().join("data");
    let before = snapshot(&data.join("owned-0"));
    let out = tokio::task::spawn_blocking({
        let data = data.clone();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
                .args(["--set", "listeners=PLAINTEXT://127.0.0.1:0"])
                .args(["--set", &format!("log.dirs={}", data.display())])
                .args(["--set", "metrics.listen="])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let expected = format!(
        "log directory {} is in use by another process (pid {})",
        data.display(),
        std::process::id()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!stderr.contains("recover"), "{stderr}");
    assert_eq!(
        snapshot(&data.join("owned-0")),
        before,
        "the second broker touched the partition's files"
    );
    // The first broker still serves, and its lock goes with it.
    assert_eq!(latest(&mut c, "owned", -1).await.0, 1);
    drop(c);
    b.stop().await;
}

#[tokio::test]
async fn log_append_time_topics_stamp_the_broker_time() {
    let b = TestBroker::start(&["log.message.timestamp.type=LogAppendTime"]).await;
    let mut c = Conn::connect(b.addr).await;
    metadata(&mut c, "lat").await;
    let before = now_ms();
    let r = produce(
        &mut c,
        "lat",
        0,
        batch(
            &[Rec {
                key: None,
                value: Some(b"v"),
                timestamp: 1,
                headers: vec![],
            }],
            Compression::None,
            None,
        ),
        1,
    )
    .await;
    assert!(r.log_append_time_ms >= before, "{}", r.log_append_time_ms);
    // Clients read a LogAppendTime batch's timestamp from its header (max timestamp).
    let fetched = fetch(&mut c, "lat", 0).await.records.unwrap();
    let h = weir::log::batch::BatchHeader::parse(&fetched).expect("stored batch");
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, r.log_append_time_ms);
    b.stop().await;
}

/// The codec of every batch in a fetched record set (attributes' low three bits).
fn codecs_of(records: &Bytes) -> Vec<i16> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 61 <= records.len() {
        let len = i32::from_be_bytes(records[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push(i16::from_be_bytes(records[at + 21..at + 23].try_into().unwrap()) & 7);
        at += 12 + len;
    }
    out
}

#[tokio::test]
async fn compression_type_rewrites_batches_in_another_codec_only() {
    // The broker default applies to every topic without its own compression.type.
    let b = TestBroker::start(&["compression.type=zstd", "compression.zstd.level=7"]).await;
    let mut c = Conn::connect(b.addr).await;
    metadata(&mut c, "cz").await;
    let ts = now_ms();
    let recs: Vec<Rec> = (0..50)
        .map(|_| Rec {
            key: Some(b"key"),
            value: Some(b"value value value value value value"),
            timestamp: ts,
            headers: vec![("h", Some(b"x"))],
        })
        .collect();
    let mut sent = Vec::new();
    for (i, codec) in [
        Compression::None,
        Compression::Lz4,
        Compression::Zstd,
        Compression::Snappy,
        Compression::Gzip,
    ]
    .into_iter()
    .enumerate()
    {
        let producer = Some((42, 0, i as i32 * 50));
        let r = produce(&mut c, "cz", 0, batch(&recs, codec, producer), -1).await;
        assert_eq!(
            (r.error_code, r.base_offset),
            (0, i as i64 * 50),
            "{codec:?}"
        );
        sent.push(codec);
    }
    // A retried batch is still recognised as a duplicate after the rewrite.
    let r = produce(
        &mut c,
        "cz",
        0,
        batch(&recs, Compression::Lz4, Some((42, 0, 50))),
        -1,
    )
    .await;
    assert_eq!(
        (r.error_code, r.base_offset),
        (0, 50),
        "duplicate of the lz4 batch"
    );
    let got = fetch(&mut c, "cz", 0).await;
    let records = got.records.clone().unwrap();
    assert_eq!(
        codecs_of(&records),
        vec![4; 5],
        "every batch stored as zstd"
    );
    let decoded = decode_records(&records);
    assert_eq!(decoded.len(), 250);
    for (i, r) in decoded.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.sequence, i as i32, "sequences kept");
        assert_eq!(r.producer_id, 42);
        assert_eq!(r.key.as_deref(), Some(&b"key"[..]));
        assert_eq!(r.timestamp, ts);
        assert_eq!(r.headers.len(), 1);
    }
    b.stop().await;

    // compression.type=producer (the default) stores what the producer sent.
    let b = TestBroker::start(&[]).await;
    let mut c = Conn::connect(b.addr).await;
    metadata(&mut c, "cp").await;
    for codec in [Compression::Lz4, Compression::None, Compression::Gzip] {
        let r = produce(&mut c, "cp", 0, batch(&recs, codec, None), -1).await;
        assert_eq!(r.error_code, 0);
    }
    let got = fetch(&mut c, "cp", 0).await;
    assert_eq!(codecs_of(&got.records.unwrap()), vec![3, 0, 1]);
    b.stop().await;
}

#[tokio::test]
async fn a_batch_with_records_at_fault_names_each_of_them() {
    let b = TestBroker::start(&["log.cleanup.policy=compact"]).await;
    let mut c = Conn::connect(b.addr).await;
    metadata(&mut c, "rec").await;
    let ts = now_ms();
    let with = |key: Option<&'static [u8]>| Rec {
        key,
        value: Some(b"v"),
        timestamp: ts,
        headers: vec![],
    };
    let recs = [with(Some(b"a")), with(None), with(Some(b"b")), with(None)];
    for codec in [Compression::None, Compression::Zstd] {
        let r = produce(&mut c, "rec", 0, batch(&recs, codec, None), -1).await;
        assert_eq!(
            r.error_code,
            ResponseError::InvalidRecord.code(),
            "{codec:?}"
        );
        let indexes: Vec<i32> = r.record_errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(indexes, vec![1, 3], "{codec:?}");
        for e in &r.record_errors {
            let m = e.batch_index_error_message.as_deref().unwrap_or_default();
            assert!(m.contains("without key"), "{m}");
        }
        let top = r.error_message.as_deref().unwrap_or_default().to_string();
        assert!(top.contains("2 record errors"), "{top}");
    }
    // A timestamp out of range makes the answer INVALID_TIMESTAMP, still per record.
    let late = [
        with(Some(b"a")),
        Rec {
            timestamp: ts + 7_200_000,
            ..with(Some(b"b"))
        },
    ];
    let r = produce(&mut c, "rec", 0, batch(&late, Compression::None, None), -1).await;
    assert_eq!(r.error_code, ResponseError::InvalidTimestamp.code());
    assert_eq!(
        r.record_errors
            .iter()
            .map(|e| e.batch_index)
            .collect::<Vec<_>>(),
        vec![1]
    );
    // Produce v7 has no record_errors: the same refusal without them.
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name("rec"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(&recs, Compression::None, None)))])]);
    let resp: ProduceResponse = c.call(ApiKey::Produce, 7, &req).await;
    let r = &resp.responses[0].partition_responses[0];
    assert_eq!(r.error_code, ResponseError::InvalidRecord.code());
    assert!(r.record_errors.is_empty());
    // Nothing of the refused batches was written.
    let got = fetch(&mut c, "rec", 0).await;
    assert_eq!(got.high_watermark, 0);
    b.stop().await;
}
