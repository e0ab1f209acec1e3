//! A compacted topic keeps the last value of every key once its segments are cleaned, with
//! offsets preserved and fetches from compacted-away offsets answered with what follows.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{batch, decode_records, Conn, Rec, TestBroker};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

fn name() -> TopicName {
    TopicName(StrBytes::from_static_str("compacted"))
}

async fn fetch_from(c: &mut Conn, offset: i64) -> Vec<kafka_protocol::records::Record> {
    let mut out = Vec::new();
    let mut next = offset;
    loop {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name())
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(next)
                    .with_partition_max_bytes(1 << 20)])]);
        let resp: FetchResponse = c.call(ApiKey::Fetch, 12, &req).await;
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        let bytes = p.records.clone().unwrap_or_default();
        // Cleaning may leave header-only batches (they keep producer state), so advance by
        // the last batch's last offset, as clients do, not by the last record.
        let last_batch = weir::log::batch::batches(&bytes, true)
            .filter_map(Result::ok)
            .last();
        match last_batch {
            Some((h, _)) => next = h.last_offset() + 1,
            None => return out,
        }
        out.extend(
            decode_records(&bytes)
                .into_iter()
                .filter(|r| r.offset >= offset),
        );
        if next >= p.high_watermark {
            return out;
        }
    }
}

#[tokio::test]
async fn compacted_topic_keeps_the_last_value_per_key() {
    let b = TestBroker::start(&[
        "log.cleanup.policy=compact",
        "log.segment.bytes=1024",
        "log.cleaner.min.cleanable.ratio=0.01",
        "log.retention.check.interval.ms=100",
    ])
    .await;
    let mut c = Conn::connect(b.addr).await;
    let md: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(name()))
                ]))
                .with_allow_auto_topic_creation(true),
        )
        .await;
    assert_eq!(md.topics[0].error_code, 0);
    let mut latest = BTreeMap::new();
    for i in 0..60u32 {
        let key = format!("k{}", i % 5);
        let value = format!("v{i:03}-{}", "x".repeat(40));
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(
                        &[Rec::kv(key.as_bytes(), value.as_bytes())],
                        Compression::None,
                        None,
                    )))])]);
        let resp: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, i as i64));
        latest.insert(key, (i as i64, value));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let recs = loop {
        let recs = fetch_from(&mut c, 0).await;
        if recs.len() < 30 {
            break recs;
        }
        assert!(
            Instant::now() < deadline,
            "not compacted in time: {} records",
            recs.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Offsets are preserved and increasing; the newest value of every key survives.
    assert!(recs.windows(2).all(|w| w[0].offset < w[1].offset));
    for (key, (offset, value)) in &latest {
        let found = recs
            .iter()
            .find(|r| r.offset == *offset)
            .unwrap_or_else(|| panic!("latest {key} at {offset} is gone"));
        assert_eq!(found.key.as_deref(), Some(key.as_bytes()));
        assert_eq!(found.value.as_deref(), Some(value.as_bytes()));
    }
    // Superseded values survive only in the uncleaned tail (the active segment holds about
    // nine of these batches at segment.bytes=1024; allow two segments).
    for r in &recs {
        let key = String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap();
        if latest[&key].0 != r.offset {
            assert!(
                r.offset >= 40,
                "superseded record at {} survived cleaning",
                r.offset
            );
        }
    }
    // A fetch at a compacted-away offset answers with the records that follow it.
    let from_one = fetch_from(&mut c, 1).await;
    assert!(from_one.first().is_some_and(|r| r.offset >= 1));
    // The cleaned log reads back the same after a restart.
    drop(c);
    let b = b.restart().await;
    let mut c = Conn::connect(b.addr).await;
    let again = fetch_from(&mut c, 0).await;
    let ids = |v: &[kafka_protocol::records::Record]| {
        v.iter()
            .map(|r| (r.offset, r.value.clone()))
            .collect::<Vec<_>>()
    };
    let (before, after) = (ids(&recs), ids(&again));
    // More cleaning may have happened since, so the log after is a subset of the log before.
    assert!(
        after.iter().all(|x| before.contains(x)),
        "{after:?} vs {before:?}"
    );
    for (offset, _) in latest.values() {
        assert!(
            again.iter().any(|r| r.offset == *offset),
            "latest at {offset} lost across restart"
        );
    }
    b.stop().await;
}
