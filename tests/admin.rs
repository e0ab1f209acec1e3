//! The admin APIs against a real in-process broker: librdkafka's AdminClient (through the
//! `rdkafka` crate) for what it exposes, raw kafka-protocol requests for the rest
//! (IncrementalAlterConfigs, DescribeCluster, DescribeLogDirs, DescribeProducers and
//! version-specific fields).

mod common;

use std::time::Duration;

use common::{batch, Conn, Rec, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn st(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn admin(b: &TestBroker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .expect("admin client")
}

fn opts() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(Duration::from_secs(10)))
}

async fn produce(c: &mut Conn, topic: &str, partition: i32, records: bytes::Bytes) -> i16 {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])]);
    let resp: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
    resp.responses[0].partition_responses[0].error_code
}

/// (name, partitions, configs) of a topic to create.
type NewTopicSpec<'a> = (&'a str, i32, &'a [(&'a str, &'a str)]);

async fn create_raw(
    c: &mut Conn,
    version: i16,
    topics: Vec<NewTopicSpec<'_>>,
    validate_only: bool,
) -> CreateTopicsResponse {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_validate_only(validate_only)
        .with_topics(
            topics
                .into_iter()
                .map(|(n, parts, cfg)| {
                    CreatableTopic::default()
                        .with_name(name(n))
                        .with_num_partitions(parts)
                        .with_replication_factor(-1)
                        .with_configs(
                            cfg.iter()
                                .map(|(k, v)| {
                                    CreatableTopicConfig::default()
                                        .with_name(st(k))
                                        .with_value(Some(st(v)))
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    c.call(ApiKey::CreateTopics, version, &req).await
}

async fn describe_topic_raw(
    c: &mut Conn,
    topic: &str,
    keys: Option<&[&str]>,
) -> describe_configs_response::DescribeConfigsResult {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    let req = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_include_documentation(true)
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(st(topic))
            .with_configuration_keys(
                keys.map(|k| k.iter().map(|k| st(k)).collect()),
            )]);
    let mut resp: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &req).await;
    resp.results.remove(0)
}

async fn incremental(
    c: &mut Conn,
    resource_type: i8,
    resource: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> incremental_alter_configs_response::AlterConfigsResourceResponse {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let req = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(st(resource))
            .with_configs(
                ops.iter()
                    .map(|(k, op, v)| {
                        AlterableConfig::default()
                            .with_name(st(k))
                            .with_config_operation(*op)
                            .with_value(v.map(st))
                    })
                    .collect(),
            )]);
    let mut resp: IncrementalAlterConfigsResponse =
        c.call(ApiKey::IncrementalAlterConfigs, 1, &req).await;
    resp.responses.remove(0)
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_lifecycle_through_librdkafka() {
    let b = TestBroker::start(&[]).await;
    let a = admin(&b);

    // validate_only checks everything and creates nothing.
    let t = NewTopic::new("orders", 3, TopicReplication::Fixed(1)).set("retention.ms", "3600000");
    let bad = NewTopic::new("bad name!", 1, TopicReplication::Fixed(1));
    let r = a
        .create_topics([&t, &bad], &opts().validate_only(true))
        .await
        .unwrap();
    assert_eq!(r[0], Ok("orders".to_string()));
    assert_eq!(
        r[1],
        Err(("bad name!".to_string(), RDKafkaErrorCode::InvalidTopic))
    );
    // (The rdkafka crate drops per-resource DescribeConfigs errors, so ask directly.)
    let mut c = Conn::connect(b.addr).await;
    let d = describe_topic_raw(&mut c, "orders", None).await;
    assert_eq!(d.error_code, code(ResponseError::UnknownTopicOrPartition));

    // Create for real; again is TOPIC_ALREADY_EXISTS; bad configs are INVALID_CONFIG.
    let r = a.create_topics([&t], &opts()).await.unwrap();
    assert_eq!(r[0], Ok("orders".to_string()));
    let r = a.create_topics([&t], &opts()).await.unwrap();
    assert_eq!(
        r[0],
        Err(("orders".to_string(), RDKafkaErrorCode::TopicAlreadyExists))
    );
    let bad_cfg = NewTopic::new("x1", 1, TopicReplication::Fixed(1)).set("retention.ms", "soon");
    let unknown_cfg = NewTopic::new("x2", 1, TopicReplication::Fixed(1)).set("no.such", "1");
    let too_many = NewTopic::new("x3", 1, TopicReplication::Fixed(3));
    let r = a
        .create_topics([&bad_cfg, &unknown_cfg, &too_many], &opts())
        .await
        .unwrap();
    assert_eq!(r[0], Err(("x1".into(), RDKafkaErrorCode::InvalidConfig)));
    assert_eq!(r[1], Err(("x2".into(), RDKafkaErrorCode::InvalidConfig)));
    assert_eq!(
        r[2],
        Err(("x3".into(), RDKafkaErrorCode::InvalidReplicationFactor))
    );
    let plain = NewTopic::new("plain", 1, TopicReplication::Fixed(1));
    a.create_topics([&plain], &opts()).await.unwrap()[0]
        .as_ref()
        .unwrap();

    // DescribeConfigs: the override with its source, defaults from the broker.
    let d = a
        .describe_configs(
            [
                &ResourceSpecifier::Topic("orders"),
                &ResourceSpecifier::Topic("plain"),
                &ResourceSpecifier::Broker(1),
            ],
            &opts(),
        )
        .await
        .unwrap();
    let orders = d[0].as_ref().unwrap();
    let e = orders.get("retention.ms").unwrap();
    assert_eq!(e.value.as_deref(), Some("3600000"));
    assert_eq!(e.source, ConfigSource::DynamicTopic);
    let e = orders.get("segment.bytes").unwrap();
    assert_eq!(e.value.as_deref(), Some("1073741824"));
    assert_eq!(e.source, ConfigSource::Default);
    let plain = d[1].as_ref().unwrap();
    let e = plain.get("retention.ms").unwrap();
    assert_eq!(e.value.as_deref(), Some("604800000"));
    assert_eq!(e.source, ConfigSource::Default);
    assert!(!e.is_read_only);
    let broker = d[2].as_ref().unwrap();
    let e = broker.get("log.dirs").unwrap();
    assert_eq!(e.source, ConfigSource::StaticBroker);
    assert!(e.is_read_only);
    assert_eq!(
        broker.get("num.partitions").unwrap().value.as_deref(),
        Some("1")
    );

    // Legacy AlterConfigs replaces every override.
    let alter =
        AlterConfig::new(ResourceSpecifier::Topic("orders")).set("segment.bytes", "1048576");
    let r = a.alter_configs([&alter], &opts()).await.unwrap();
    assert!(r[0].is_ok(), "{r:?}");
    let d = a
        .describe_configs([&ResourceSpecifier::Topic("orders")], &opts())
        .await
        .unwrap();
    let orders = d[0].as_ref().unwrap();
    assert_eq!(
        orders.get("segment.bytes").unwrap().value.as_deref(),
        Some("1048576")
    );
    let e = orders.get("retention.ms").unwrap();
    assert_eq!(
        (e.value.as_deref(), &e.source),
        (Some("604800000"), &ConfigSource::Default)
    );
    // The rdkafka crate drops per-resource AlterConfigs errors too: check them directly.
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let res = |t: i8, n: &str, k: &str, v: &str| {
        AlterConfigsResource::default()
            .with_resource_type(t)
            .with_resource_name(st(n))
            .with_configs(vec![AlterableConfig::default()
                .with_name(st(k))
                .with_value(Some(st(v)))])
    };
    let req = AlterConfigsRequest::default().with_resources(vec![
        res(2, "orders", "segment.bytes", "tiny"),
        res(2, "nope", "segment.bytes", "1048576"),
        res(4, "1", "log.dirs", "/elsewhere"),
        res(2, "plain", "retention.ms", "1"),
        res(2, "plain", "retention.ms", "2"),
    ]);
    let r: AlterConfigsResponse = c.call(ApiKey::AlterConfigs, 2, &req).await;
    let codes: Vec<i16> = r.responses.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        vec![
            code(ResponseError::InvalidConfig),
            code(ResponseError::UnknownTopicOrPartition),
            code(ResponseError::InvalidRequest),
            code(ResponseError::InvalidRequest),
        ]
    );
    assert!(r.responses[0].error_message.is_some());
    let d = describe_topic_raw(&mut c, "orders", Some(&["segment.bytes"])).await;
    assert_eq!(d.configs[0].value.as_deref(), Some("1048576"));

    // CreatePartitions: only growth; the new logs exist when the call returns.
    let r = a
        .create_partitions([&NewPartitions::new("orders", 5)], &opts())
        .await
        .unwrap();
    assert_eq!(r[0], Ok("orders".to_string()));
    let data = b.dir.path().join("data");
    assert!(data.join("orders-4").is_dir());
    let r = a
        .create_partitions([&NewPartitions::new("orders", 4)], &opts())
        .await
        .unwrap();
    assert_eq!(
        r[0],
        Err(("orders".to_string(), RDKafkaErrorCode::InvalidPartitions))
    );
    let r = a
        .create_partitions(
            [&NewPartitions::new("orders", 7)],
            &opts().validate_only(true),
        )
        .await
        .unwrap();
    assert!(r[0].is_ok());
    assert!(!data.join("orders-5").exists());

    // DeleteTopics: the logs are gone when the call returns.
    let r = a.delete_topics(&["orders"], &opts()).await.unwrap();
    assert_eq!(r[0], Ok("orders".to_string()));
    assert!(!data.join("orders-0").exists());
    let r = a.delete_topics(&["orders"], &opts()).await.unwrap();
    assert_eq!(
        r[0],
        Err((
            "orders".to_string(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_versions_and_duplicates() {
    let b = TestBroker::start(&["num.partitions=2"]).await;
    let mut c = Conn::connect(b.addr).await;
    let r = create_raw(
        &mut c,
        7,
        vec![("v7", -1, &[("cleanup.policy", "compact")])],
        false,
    )
    .await;
    let t = &r.topics[0];
    assert_eq!(t.error_code, 0, "{:?}", t.error_message);
    assert_eq!((t.num_partitions, t.replication_factor), (2, 1));
    assert!(!t.topic_id.is_nil());
    let cfgs = t.configs.as_ref().unwrap();
    let cp = cfgs.iter().find(|c| &*c.name == "cleanup.policy").unwrap();
    assert_eq!(
        (cp.value.as_deref(), cp.config_source),
        (Some("compact"), 1)
    );
    let rm = cfgs.iter().find(|c| &*c.name == "retention.ms").unwrap();
    assert_eq!(
        (rm.value.as_deref(), rm.config_source),
        (Some("604800000"), 5)
    );

    // validate_only reports what would be created, without an id.
    let r = create_raw(&mut c, 5, vec![("v5", 4, &[])], true).await;
    assert_eq!(r.topics[0].error_code, 0);
    assert_eq!(r.topics[0].num_partitions, 4);

    // A name given twice: one INVALID_REQUEST, nothing created; the others proceed.
    let r = create_raw(
        &mut c,
        4,
        vec![("dup", 1, &[]), ("dup", 1, &[]), ("ok", 1, &[])],
        false,
    )
    .await;
    assert_eq!(r.topics.len(), 2);
    let dup = r.topics.iter().find(|t| &*t.name.0 == "dup").unwrap();
    assert_eq!(dup.error_code, code(ResponseError::InvalidRequest));
    let ok = r.topics.iter().find(|t| &*t.name.0 == "ok").unwrap();
    assert_eq!(ok.error_code, 0);

    // '.' and '_' collide; zero partitions is invalid.
    let r = create_raw(&mut c, 4, vec![("a.b", 1, &[]), ("zero", 0, &[])], false).await;
    assert_eq!(r.topics[0].error_code, 0);
    let r = create_raw(&mut c, 4, vec![("a_b", 1, &[]), ("zero", 0, &[])], false).await;
    assert_eq!(
        r.topics[0].error_code,
        code(ResponseError::InvalidTopicException)
    );
    assert_eq!(
        r.topics[1].error_code,
        code(ResponseError::InvalidPartitions)
    );

    // Kafka's cap: at most 10 000 new partitions per request.
    let r = create_raw(
        &mut c,
        7,
        vec![("huge", 10_000, &[]), ("small", 1, &[])],
        false,
    )
    .await;
    for t in &r.topics {
        assert_eq!(t.error_code, code(ResponseError::PolicyViolation));
    }
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    let req = CreatePartitionsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(name("ok"))
            .with_count(i32::MAX)
            .with_assignments(None)]);
    let r: CreatePartitionsResponse = c.call(ApiKey::CreatePartitions, 3, &req).await;
    assert_eq!(
        r.results[0].error_code,
        code(ResponseError::PolicyViolation)
    );

    // DeleteTopics v6 by id, and an unknown id.
    let id = {
        let r = create_raw(&mut c, 7, vec![("by-id", 1, &[])], false).await;
        r.topics[0].topic_id
    };
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    let req = DeleteTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            DeleteTopicState::default().with_topic_id(id),
            DeleteTopicState::default().with_topic_id(uuid::Uuid::new_v4()),
        ]);
    let r: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 6, &req).await;
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(r.responses[0].name.as_ref().map(|n| &*n.0), Some("by-id"));
    assert_eq!(
        r.responses[1].error_code,
        code(ResponseError::UnknownTopicId)
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_can_be_disabled() {
    let b = TestBroker::start(&["delete.topic.enable=false"]).await;
    let mut c = Conn::connect(b.addr).await;
    create_raw(&mut c, 7, vec![("keep", 1, &[])], false).await;
    for (version, expected) in [
        (4, ResponseError::TopicDeletionDisabled),
        (1, ResponseError::InvalidRequest),
    ] {
        let req = DeleteTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topic_names(vec![name("keep")]);
        let r: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, version, &req).await;
        assert_eq!(r.responses[0].error_code, code(expected), "v{version}");
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_alter_configs_take_effect_live() {
    let b = TestBroker::start(&[]).await;
    let mut c = Conn::connect(b.addr).await;
    create_raw(&mut c, 7, vec![("live", 1, &[])], false).await;

    // APPEND to a list setting starts from the effective value.
    let r = incremental(
        &mut c,
        2,
        "live",
        &[("cleanup.policy", 2, Some("compact"))],
        false,
    )
    .await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let d = describe_topic_raw(&mut c, "live", Some(&["cleanup.policy"])).await;
    assert_eq!(d.configs.len(), 1);
    let e = &d.configs[0];
    assert_eq!(e.value.as_deref(), Some("delete,compact"));
    assert_eq!(e.config_source, 1);
    assert_eq!(e.config_type, 7);
    assert_eq!(&*e.synonyms[0].name, "cleanup.policy");
    assert_eq!(e.synonyms[0].source, 1);
    assert_eq!(&*e.synonyms[1].name, "log.cleanup.policy");
    assert_eq!(e.synonyms[1].source, 5);

    // APPEND/SUBTRACT on a non-list, bad values, brokers: refused, nothing changes.
    let r = incremental(&mut c, 2, "live", &[("retention.ms", 3, Some("1"))], false).await;
    assert_eq!(r.error_code, code(ResponseError::InvalidConfig));
    let r = incremental(&mut c, 2, "live", &[("retention.ms", 0, Some("-5"))], false).await;
    assert_eq!(r.error_code, code(ResponseError::InvalidConfig));
    assert!(r.error_message.is_some());
    let r = incremental(&mut c, 4, "1", &[("log.dirs", 0, Some("/x"))], false).await;
    assert_eq!(r.error_code, code(ResponseError::InvalidRequest));
    let r = incremental(&mut c, 2, "nope", &[("retention.ms", 0, Some("1"))], false).await;
    assert_eq!(r.error_code, code(ResponseError::UnknownTopicOrPartition));
    let r = incremental(
        &mut c,
        2,
        "live",
        &[("retention.ms", 0, Some("1000"))],
        true,
    )
    .await;
    assert_eq!(r.error_code, 0);
    let d = describe_topic_raw(&mut c, "live", Some(&["retention.ms"])).await;
    assert_eq!(d.configs[0].value.as_deref(), Some("604800000"));

    // DELETE goes back to the default.
    let r = incremental(&mut c, 2, "live", &[("cleanup.policy", 1, None)], false).await;
    assert_eq!(r.error_code, 0);
    let d = describe_topic_raw(&mut c, "live", Some(&["cleanup.policy"])).await;
    assert_eq!(
        (d.configs[0].value.as_deref(), d.configs[0].config_source),
        (Some("delete"), 5)
    );

    // max.message.bytes applies to the very next produce.
    let big = vec![b'x'; 4000];
    assert_eq!(
        produce(
            &mut c,
            "live",
            0,
            batch(&[Rec::kv(b"k", &big)], Compression::None, None)
        )
        .await,
        0
    );
    let r = incremental(
        &mut c,
        2,
        "live",
        &[("max.message.bytes", 0, Some("1000"))],
        false,
    )
    .await;
    assert_eq!(r.error_code, 0);
    assert_eq!(
        produce(
            &mut c,
            "live",
            0,
            batch(&[Rec::kv(b"k", &big)], Compression::None, None)
        )
        .await,
        code(ResponseError::MessageTooLarge)
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_configs_errors_and_brokers() {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    let b = TestBroker::start(&["log.retention.hours=24"]).await;
    let mut c = Conn::connect(b.addr).await;
    create_raw(&mut c, 7, vec![("t", 1, &[])], false).await;
    let res = |t: i8, n: &str| {
        DescribeConfigsResource::default()
            .with_resource_type(t)
            .with_resource_name(st(n))
            .with_configuration_keys(None)
    };
    let req = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_include_documentation(true)
        .with_resources(vec![
            res(2, "t"),
            res(2, "missing"),
            res(4, "1"),
            res(4, "7"),
            res(4, ""),
            res(8, "1"),
            res(99, "x"),
        ]);
    let r: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &req).await;
    let codes: Vec<i16> = r.results.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        vec![
            0,
            code(ResponseError::UnknownTopicOrPartition),
            0,
            code(ResponseError::InvalidRequest),
            0,
            0,
            code(ResponseError::InvalidRequest)
        ]
    );
    let rm = r.results[0]
        .configs
        .iter()
        .find(|c| &*c.name == "retention.ms")
        .unwrap();
    assert_eq!(
        (rm.value.as_deref(), rm.config_source),
        (Some("86400000"), 4)
    );
    let syn: Vec<(&str, Option<&str>, i8)> = rm
        .synonyms
        .iter()
        .map(|s| (&*s.name, s.value.as_deref(), s.source))
        .collect();
    assert_eq!(
        syn,
        vec![
            ("log.retention.hours", Some("24"), 4),
            ("log.retention.hours", Some("168"), 5)
        ]
    );
    let broker = &r.results[2].configs;
    let hours = broker
        .iter()
        .find(|c| &*c.name == "log.retention.hours")
        .unwrap();
    assert_eq!(
        (hours.value.as_deref(), hours.config_source, hours.read_only),
        (Some("24"), 4, false)
    );
    assert!(hours.documentation.is_some());
    assert!(r.results[4].configs.is_empty());
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_cluster_and_log_dirs() {
    let b = TestBroker::start(&[]).await;
    let mut c = Conn::connect(b.addr).await;
    let r: DescribeClusterResponse = c
        .call(
            ApiKey::DescribeCluster,
            2,
            &DescribeClusterRequest::default(),
        )
        .await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.brokers.len(), 1);
    assert_eq!(r.brokers[0].broker_id.0, 1);
    assert_eq!(r.brokers[0].port, b.addr.port() as i32);
    assert_eq!(r.controller_id.0, 1);
    assert!(!r.cluster_id.is_empty());
    assert_eq!(r.cluster_authorized_operations, i32::MIN);
    let r: DescribeClusterResponse = c
        .call(
            ApiKey::DescribeCluster,
            1,
            &DescribeClusterRequest::default()
                .with_include_cluster_authorized_operations(true)
                .with_endpoint_type(1),
        )
        .await;
    assert!(r.cluster_authorized_operations > 0);
    let r: DescribeClusterResponse = c
        .call(
            ApiKey::DescribeCluster,
            1,
            &DescribeClusterRequest::default().with_endpoint_type(2),
        )
        .await;
    assert_eq!(r.error_code, code(ResponseError::MismatchedEndpointType));
    assert!(r.brokers.is_empty());

    create_raw(&mut c, 7, vec![("dirs", 2, &[])], false).await;
    assert_eq!(
        produce(
            &mut c,
            "dirs",
            1,
            batch(&[Rec::kv(b"k", b"v")], Compression::None, None)
        )
        .await,
        0
    );
    let r: DescribeLogDirsResponse = c
        .call(
            ApiKey::DescribeLogDirs,
            4,
            &DescribeLogDirsRequest::default().with_topics(None),
        )
        .await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.results.len(), 1);
    let d = &r.results[0];
    assert_eq!(d.error_code, 0);
    assert!(d.log_dir.starts_with('/'), "{}", d.log_dir);
    assert!(d.total_bytes > 0 && d.usable_bytes > 0);
    let t = d.topics.iter().find(|t| &*t.name.0 == "dirs").unwrap();
    assert_eq!(t.partitions.len(), 2);
    let p1 = t
        .partitions
        .iter()
        .find(|p| p.partition_index == 1)
        .unwrap();
    assert!(p1.partition_size > 0);
    // Only the asked-for partitions.
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    let req =
        DescribeLogDirsRequest::default()
            .with_topics(Some(vec![DescribableLogDirTopic::default()
                .with_topic(name("dirs"))
                .with_partitions(vec![0])]));
    let r: DescribeLogDirsResponse = c.call(ApiKey::DescribeLogDirs, 1, &req).await;
    let topics = &r.results[0].topics;
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].partitions.len(), 1);
    assert_eq!(topics[0].partitions[0].partition_index, 0);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records() {
    let b = TestBroker::start(&[]).await;
    let mut c = Conn::connect(b.addr).await;
    create_raw(
        &mut c,
        7,
        vec![
            ("dr", 1, &[]),
            ("compacted", 1, &[("cleanup.policy", "compact")]),
        ],
        false,
    )
    .await;
    for i in 0..10u8 {
        assert_eq!(
            produce(
                &mut c,
                "dr",
                0,
                batch(&[Rec::kv(&[i], b"v")], Compression::None, None)
            )
            .await,
            0
        );
    }
    // Through librdkafka.
    let a = admin(&b);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("dr", 0, Offset::Offset(4))
        .unwrap();
    let r = a.delete_records(&tpl, &opts()).await.unwrap();
    let e = r.elements_for_topic("dr");
    assert_eq!(e[0].offset(), Offset::Offset(4));
    assert!(e[0].error().is_ok());

    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    let req = |topic: &str, parts: &[(i32, i64)]| {
        DeleteRecordsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(name(topic))
                .with_partitions(
                    parts
                        .iter()
                        .map(|(p, o)| {
                            DeleteRecordsPartition::default()
                                .with_partition_index(*p)
                                .with_offset(*o)
                        })
                        .collect(),
                )])
    };
    let r: DeleteRecordsResponse = c
        .call(ApiKey::DeleteRecords, 2, &req("dr", &[(0, 11)]))
        .await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code(ResponseError::OffsetOutOfRange)
    );
    // Lower than the log start changes nothing.
    let r: DeleteRecordsResponse = c
        .call(ApiKey::DeleteRecords, 2, &req("dr", &[(0, 2)]))
        .await;
    assert_eq!(r.topics[0].partitions[0].low_watermark, 4);
    let r: DeleteRecordsResponse = c
        .call(ApiKey::DeleteRecords, 0, &req("dr", &[(0, -1), (3, 0)]))
        .await;
    let p = &r.topics[0].partitions;
    assert_eq!((p[0].error_code, p[0].low_watermark), (0, 10));
    assert_eq!(
        p[1].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    let r: DeleteRecordsResponse = c
        .call(ApiKey::DeleteRecords, 1, &req("compacted", &[(0, 0)]))
        .await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code(ResponseError::PolicyViolation)
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_producers() {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    let b = TestBroker::start(&[]).await;
    let mut c = Conn::connect(b.addr).await;
    create_raw(&mut c, 7, vec![("idem", 1, &[])], false).await;
    let init: InitProducerIdResponse = c
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
    assert_eq!(init.error_code, 0);
    let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
    let recs = [
        Rec::kv(b"a", b"1"),
        Rec::kv(b"b", b"2"),
        Rec::kv(b"c", b"3"),
    ];
    let records = batch(&recs, Compression::None, Some((pid, epoch, 0)));
    assert_eq!(produce(&mut c, "idem", 0, records).await, 0);

    let req = DescribeProducersRequest::default().with_topics(vec![
        TopicRequest::default()
            .with_name(name("idem"))
            .with_partition_indexes(vec![0, 1]),
        TopicRequest::default()
            .with_name(name("missing"))
            .with_partition_indexes(vec![0]),
    ]);
    let r: DescribeProducersResponse = c.call(ApiKey::DescribeProducers, 0, &req).await;
    let p0 = &r.topics[0].partitions[0];
    assert_eq!(p0.error_code, 0);
    assert_eq!(p0.active_producers.len(), 1);
    let s = &p0.active_producers[0];
    assert_eq!(s.producer_id.0, pid);
    assert_eq!(s.producer_epoch, epoch as i32);
    assert_eq!(s.last_sequence, 2);
    assert!(s.last_timestamp > 0);
    assert_eq!(s.current_txn_start_offset, -1);
    assert_eq!(
        r.topics[0].partitions[1].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    assert_eq!(
        r.topics[1].partitions[0].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    b.stop().await;
}

/// Describes BROKER (type 4) or BROKER_LOGGER (type 8) resource `name`:
/// name -> (value, source, read only).
async fn describe_broker_raw(
    c: &mut Conn,
    resource_type: i8,
    name: &str,
) -> (
    i16,
    std::collections::BTreeMap<String, (Option<String>, i8, bool)>,
) {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(st(name))
            .with_configuration_keys(None)]);
    let r: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &req).await;
    let res = &r.results[0];
    let configs = res
        .configs
        .iter()
        .map(|e| {
            (
                e.name.to_string(),
                (
                    e.value.as_deref().map(str::to_string),
                    e.config_source,
                    e.read_only,
                ),
            )
        })
        .collect();
    (res.error_code, configs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_broker_configs_apply_at_once_and_survive_a_restart() {
    let b = TestBroker::start(&["log.retention.hours=24"]).await;
    let mut c = Conn::connect(b.addr).await;
    create_raw(&mut c, 7, vec![("dyn", 1, &[])], false).await;
    let big = || batch(&[Rec::kv(b"k", &[7u8; 3000])], Compression::None, None);
    assert_eq!(produce(&mut c, "dyn", 0, big()).await, 0);

    // The cluster-wide default: effective on the live log at once.
    let r = incremental(
        &mut c,
        4,
        "",
        &[
            ("message.max.bytes", 0, Some("2000")),
            ("log.retention.ms", 0, Some("60000")),
        ],
        false,
    )
    .await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert_eq!(
        produce(&mut c, "dyn", 0, big()).await,
        code(ResponseError::MessageTooLarge)
    );
    let d = describe_topic_raw(&mut c, "dyn", Some(&["retention.ms"])).await;
    let e = &d.configs[0];
    assert_eq!((e.value.as_deref(), e.config_source), (Some("60000"), 3));
    let syn: Vec<(&str, Option<&str>, i8)> = e
        .synonyms
        .iter()
        .map(|s| (&*s.name, s.value.as_deref(), s.source))
        .collect();
    assert_eq!(
        syn,
        vec![
            ("log.retention.ms", Some("60000"), 3),
            ("log.retention.hours", Some("24"), 4),
            ("log.retention.hours", Some("168"), 5),
        ]
    );
    let (err, defaults) = describe_broker_raw(&mut c, 4, "").await;
    assert_eq!(err, 0);
    assert_eq!(
        defaults.keys().collect::<Vec<_>>(),
        vec!["log.retention.ms", "message.max.bytes"]
    );
    assert_eq!(
        defaults["message.max.bytes"],
        (Some("2000".into()), 3, false)
    );

    // This broker's own value wins over the default; deleting it brings the default back.
    let r = incremental(
        &mut c,
        4,
        "1",
        &[("message.max.bytes", 0, Some("100000"))],
        false,
    )
    .await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert_eq!(produce(&mut c, "dyn", 0, big()).await, 0);
    let (_, mine) = describe_broker_raw(&mut c, 4, "1").await;
    assert_eq!(mine["message.max.bytes"], (Some("100000".into()), 2, false));
    assert!(mine["log.dirs"].2, "log.dirs is read-only");
    let r = incremental(&mut c, 4, "1", &[("message.max.bytes", 1, None)], false).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(
        produce(&mut c, "dyn", 0, big()).await,
        code(ResponseError::MessageTooLarge)
    );

    // Refusals, with nothing changed: a read-only setting, a bad value, validate_only.
    let r = incremental(&mut c, 4, "", &[("log.dirs", 0, Some("/x"))], false).await;
    assert_eq!(r.error_code, code(ResponseError::InvalidRequest));
    assert!(r.error_message.unwrap().contains("log.dirs"));
    let r = incremental(
        &mut c,
        4,
        "",
        &[("log.cleanup.policy", 0, Some("x"))],
        false,
    )
    .await;
    assert_eq!(r.error_code, code(ResponseError::InvalidConfig));
    let r = incremental(&mut c, 4, "", &[("num.partitions", 0, Some("0"))], false).await;
    assert_eq!(r.error_code, code(ResponseError::InvalidConfig));
    let r = incremental(&mut c, 4, "", &[("num.partitions", 0, Some("4"))], true).await;
    assert_eq!(r.error_code, 0);
    let (_, defaults) = describe_broker_raw(&mut c, 4, "").await;
    assert!(!defaults.contains_key("num.partitions"));

    // Legacy AlterConfigs replaces the whole default set.
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let req = AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(4)
        .with_resource_name(st(""))
        .with_configs(vec![AlterableConfig::default()
            .with_name(st("num.partitions"))
            .with_value(Some(st("3")))])]);
    let r: AlterConfigsResponse = c.call(ApiKey::AlterConfigs, 2, &req).await;
    assert_eq!(r.responses[0].error_code, 0);
    let (_, defaults) = describe_broker_raw(&mut c, 4, "").await;
    assert_eq!(defaults.keys().collect::<Vec<_>>(), vec!["num.partitions"]);
    assert_eq!(produce(&mut c, "dyn", 0, big()).await, 0, "2000 is gone");
    // num.partitions applies to topics created from now on.
    let r = create_raw(&mut c, 7, vec![("three", -1, &[])], false).await;
    assert_eq!(r.topics[0].error_code, 0);
    assert_eq!(r.topics[0].num_partitions, 3);

    // Broker loggers: listed; an embedded broker has no reloadable filter to change.
    let (err, loggers) = describe_broker_raw(&mut c, 8, "1").await;
    assert_eq!(err, 0);
    assert_eq!(loggers["root"].1, 6);
    let r = incremental(&mut c, 8, "1", &[("weir", 0, Some("LOUD"))], false).await;
    assert_eq!(r.error_code, code(ResponseError::InvalidConfig));

    // Kept in the metadata across a restart.
    let b = b.restart().await;
    let mut c = Conn::connect(b.addr).await;
    let (_, defaults) = describe_broker_raw(&mut c, 4, "").await;
    assert_eq!(defaults["num.partitions"], (Some("3".into()), 3, false));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_topic_partitions_pages_with_a_cursor() {
    use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
    let b = TestBroker::start(&[]).await;
    let mut c = Conn::connect(b.addr).await;
    create_raw(&mut c, 7, vec![("pa", 3, &[]), ("pb", 2, &[])], false).await;
    let page = |topics: &[&str], cursor: Option<(&str, i32)>| {
        DescribeTopicPartitionsRequest::default()
            .with_topics(
                topics
                    .iter()
                    .map(|t| TopicRequest::default().with_name(name(t)))
                    .collect(),
            )
            .with_response_partition_limit(2)
            .with_cursor(cursor.map(|(t, p)| {
                Cursor::default()
                    .with_topic_name(name(t))
                    .with_partition_index(p)
            }))
    };
    let seen = |r: &DescribeTopicPartitionsResponse| -> Vec<(String, i32)> {
        r.topics
            .iter()
            .flat_map(|t| {
                let n = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
                t.partitions
                    .iter()
                    .map(move |p| (n.clone(), p.partition_index))
            })
            .collect()
    };
    let cursor = |r: &DescribeTopicPartitionsResponse| {
        r.next_cursor
            .as_ref()
            .map(|c| (c.topic_name.to_string(), c.partition_index))
    };
    // Asked in any order, answered in name order, two partitions at a time.
    let r: DescribeTopicPartitionsResponse = c
        .call(
            ApiKey::DescribeTopicPartitions,
            0,
            &page(&["pb", "pa"], None),
        )
        .await;
    assert_eq!(seen(&r), vec![("pa".into(), 0), ("pa".into(), 1)]);
    assert_eq!(cursor(&r), Some(("pa".into(), 2)));
    let t = &r.topics[0];
    assert_ne!(t.topic_id, uuid::Uuid::nil());
    assert_eq!(t.partitions[0].leader_id.0, 1);
    assert_eq!(t.partitions[0].isr_nodes.len(), 1);
    assert!(t.topic_authorized_operations > 0);
    let r: DescribeTopicPartitionsResponse = c
        .call(
            ApiKey::DescribeTopicPartitions,
            0,
            &page(&["pa", "pb"], Some(("pa", 2))),
        )
        .await;
    assert_eq!(seen(&r), vec![("pa".into(), 2), ("pb".into(), 0)]);
    assert_eq!(cursor(&r), Some(("pb".into(), 1)));
    let r: DescribeTopicPartitionsResponse = c
        .call(
            ApiKey::DescribeTopicPartitions,
            0,
            &page(&["pa", "pb"], Some(("pb", 1))),
        )
        .await;
    assert_eq!(seen(&r), vec![("pb".into(), 1)]);
    assert_eq!(cursor(&r), None);
    // No topics named: every topic. An unknown topic is an error and is not created.
    let all = DescribeTopicPartitionsRequest::default().with_response_partition_limit(100);
    let r: DescribeTopicPartitionsResponse = c.call(ApiKey::DescribeTopicPartitions, 0, &all).await;
    assert_eq!(seen(&r).len(), 5);
    let r: DescribeTopicPartitionsResponse = c
        .call(ApiKey::DescribeTopicPartitions, 0, &page(&["nope"], None))
        .await;
    assert_eq!(
        r.topics[0].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    let d = describe_topic_raw(&mut c, "nope", None).await;
    assert_eq!(d.error_code, code(ResponseError::UnknownTopicOrPartition));
    // A cursor outside the topics asked for refuses the request.
    let r: DescribeTopicPartitionsResponse = c
        .call(
            ApiKey::DescribeTopicPartitions,
            0,
            &page(&["pa"], Some(("pb", 0))),
        )
        .await;
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].error_code, code(ResponseError::InvalidRequest));

    // ListConfigResources: v1 by type, v0 (client metrics only) empty.
    let r: ListConfigResourcesResponse = c
        .call(
            ApiKey::ListConfigResources,
            1,
            &ListConfigResourcesRequest::default().with_resource_types(vec![2, 4]),
        )
        .await;
    assert_eq!(r.error_code, 0);
    let listed: Vec<(String, i8)> = r
        .config_resources
        .iter()
        .map(|r| (r.resource_name.to_string(), r.resource_type))
        .collect();
    assert_eq!(
        listed,
        vec![("pa".into(), 2), ("pb".into(), 2), ("1".into(), 4)]
    );
    let r: ListConfigResourcesResponse = c
        .call(
            ApiKey::ListConfigResources,
            0,
            &ListConfigResourcesRequest::default(),
        )
        .await;
    assert_eq!((r.error_code, r.config_resources.len()), (0, 0));
    let r: ListConfigResourcesResponse = c
        .call(
            ApiKey::ListConfigResources,
            1,
            &ListConfigResourcesRequest::default().with_resource_types(vec![3]),
        )
        .await;
    assert_eq!(r.error_code, code(ResponseError::UnsupportedVersion));
    b.stop().await;
}

/// DescribeLogDirs: (dir, partition, is future) of `topic` everywhere.
async fn placement(c: &mut Conn, topic: &str) -> Vec<(String, i32, bool)> {
    let r: DescribeLogDirsResponse = c
        .call(
            ApiKey::DescribeLogDirs,
            4,
            &DescribeLogDirsRequest::default().with_topics(None),
        )
        .await;
    let mut out = Vec::new();
    for d in &r.results {
        for t in d.topics.iter().filter(|t| &*t.name.0 == topic) {
            for p in &t.partitions {
                out.push((d.log_dir.to_string(), p.partition_index, p.is_future_key));
            }
        }
    }
    out
}

async fn alter_dir(c: &mut Conn, dir: &str, topic: &str, partition: i32) -> i16 {
    use kafka_protocol::messages::alter_replica_log_dirs_request::{
        AlterReplicaLogDir, AlterReplicaLogDirTopic,
    };
    let req = AlterReplicaLogDirsRequest::default().with_dirs(vec![AlterReplicaLogDir::default()
        .with_path(st(dir))
        .with_topics(vec![AlterReplicaLogDirTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![partition])])]);
    let r: AlterReplicaLogDirsResponse = c.call(ApiKey::AlterReplicaLogDirs, 2, &req).await;
    r.results[0].partitions[0].error_code
}

/// Every value of partition 0 of `topic`, in offset order.
async fn values_of(c: &mut Conn, topic: &str) -> Vec<(i64, Vec<u8>)> {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let mut out = Vec::new();
    loop {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(50 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_fetch_offset(out.last().map_or(0, |(o, _)| o + 1))
                    .with_partition_max_bytes(1 << 20)])]);
        let r: FetchResponse = c.call(ApiKey::Fetch, 12, &req).await;
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        let recs = common::decode_records(&p.records.clone().unwrap_or_default());
        if recs.is_empty() {
            return out;
        }
        out.extend(
            recs.into_iter()
                .map(|r| (r.offset, r.value.map(|v| v.to_vec()).unwrap_or_default())),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_moves_between_log_directories_under_load_and_keeps_everything() {
    let dirs = tempfile::tempdir().unwrap();
    let (d1, d2) = (dirs.path().join("d1"), dirs.path().join("d2"));
    let setting = format!("log.dirs={},{}", d1.display(), d2.display());
    let b = TestBroker::start(&[&setting, "log.segment.bytes=20000"]).await;
    let mut c = Conn::connect(b.addr).await;
    create_raw(&mut c, 7, vec![("mv", 1, &[])], false).await;
    let first: Vec<(String, i32, bool)> = placement(&mut c, "mv").await;
    assert_eq!(first.len(), 1);
    let (from, to) = if first[0].0.ends_with("d1") {
        (d1.clone(), d2.clone())
    } else {
        (d2.clone(), d1.clone())
    };
    let to_s = to.display().to_string();
    // Refusals: a directory outside log.dirs, an unknown partition.
    assert_eq!(
        alter_dir(&mut c, "/nowhere", "mv", 0).await,
        code(ResponseError::LogDirNotFound)
    );
    assert_eq!(
        alter_dir(&mut c, &to_s, "mv", 9).await,
        code(ResponseError::UnknownTopicOrPartition)
    );
    // A producer keeps writing (acks=all) while the partition moves; it retries what
    // the frozen log refuses, as clients do on NOT_LEADER_OR_FOLLOWER.
    let addr = b.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let writer = tokio::spawn(async move {
        let mut c = Conn::connect(addr).await;
        let mut acked = Vec::new();
        let mut i = 0u32;
        while i < 400 || !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            i += 1;
            let value = format!("value-{i}-{}", "x".repeat(200));
            loop {
                let code = produce(
                    &mut c,
                    "mv",
                    0,
                    batch(&[Rec::kv(b"k", value.as_bytes())], Compression::None, None),
                )
                .await;
                if code == 0 {
                    acked.push(value.into_bytes());
                    break;
                }
                assert_eq!(code, ResponseError::NotLeaderOrFollower.code());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        acked
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(alter_dir(&mut c, &to_s, "mv", 0).await, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = placement(&mut c, "mv").await;
        if now.len() == 1 && now[0].0 == to_s && !now[0].2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not moved: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Writes go on into the moved log for a moment, then stop.
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = writer.await.unwrap();
    assert!(!from.join("mv-0").exists());
    assert!(to.join("mv-0").is_dir());
    // Every acknowledged record once, in order, and nothing else.
    let stored = values_of(&mut c, "mv").await;
    assert_eq!(
        stored.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        (0..acked.len() as i64).collect::<Vec<_>>()
    );
    assert_eq!(
        stored.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        acked
    );
    // Moving it to where it is changes nothing; the new place survives a restart.
    assert_eq!(alter_dir(&mut c, &to_s, "mv", 0).await, 0);
    let b = b.restart().await;
    let mut c = Conn::connect(b.addr).await;
    assert_eq!(
        placement(&mut c, "mv").await,
        vec![(to_s.clone(), 0, false)]
    );
    assert_eq!(values_of(&mut c, "mv").await.len(), acked.len());
    b.stop().await;
}

/// librdkafka's admin client changes and reads dynamic broker configs
/// (AlterConfigs / DescribeConfigs on BROKER resources), as kafka-configs.sh does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_configs_through_librdkafka() {
    let b = TestBroker::start(&[]).await;
    let a = admin(&b);
    let change = AlterConfig::new(ResourceSpecifier::Broker(1))
        .set("log.retention.ms", "7200000")
        .set("compression.type", "lz4");
    let r = a.alter_configs([&change], &opts()).await.unwrap();
    assert!(r[0].is_ok(), "{r:?}");
    let d = a
        .describe_configs([&ResourceSpecifier::Broker(1)], &opts())
        .await
        .unwrap();
    let res = d[0].as_ref().unwrap();
    let entry = |n: &str| res.entries.iter().find(|e| e.name == n).unwrap();
    assert_eq!(entry("log.retention.ms").value.as_deref(), Some("7200000"));
    assert!(matches!(
        entry("log.retention.ms").source,
        ConfigSource::DynamicBroker
    ));
    assert!(!entry("log.retention.ms").is_read_only);
    assert!(entry("log.dirs").is_read_only);
    // Topics without their own setting follow at once.
    let t = NewTopic::new("dyn-topic", 1, TopicReplication::Fixed(1));
    a.create_topics([&t], &opts()).await.unwrap();
    let d = a
        .describe_configs([&ResourceSpecifier::Topic("dyn-topic")], &opts())
        .await
        .unwrap();
    let res = d[0].as_ref().unwrap();
    let retention = res
        .entries
        .iter()
        .find(|e| e.name == "retention.ms")
        .unwrap();
    assert_eq!(retention.value.as_deref(), Some("7200000"));
    assert!(matches!(retention.source, ConfigSource::DynamicBroker));
    // (The rdkafka crate reports every AlterConfigs resource as Ok whatever the broker
    // answered, so refusals are checked with raw requests in
    // dynamic_broker_configs_apply_at_once_and_survive_a_restart.)
    b.stop().await;
}
