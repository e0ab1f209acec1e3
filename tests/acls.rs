//! Authorization against raw requests and real clients. The ACL matrix sends every
//! advertised API, as a principal without the ACL it needs (refused with Kafka's error
//! code) and again once an admin granted that ACL (the refusal is gone); librdkafka
//! produces and consumes in a group only with its ACLs; DENY beats ALLOW, PREFIXED and
//! wildcard ACLs apply, super users and `allow.everyone.if.no.acl.found` behave as in
//! Kafka; a TLS client certificate's name (mapped by `ssl.principal.mapping.rules`) is
//! the principal; ACLs added through one node are enforced on the others.

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{batch, Conn, Rec, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::Compression;
use weir::authorizer::acl::{Operation, ResourceType};

const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const CLUSTER_DENIED: i16 = 31;
const TXN_DENIED: i16 = 53;
const USERS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret" user_alice="alice-secret";"#;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn txid(v: &str) -> kafka_protocol::messages::TransactionalId {
    kafka_protocol::messages::TransactionalId(s(v))
}

fn tn(v: &str) -> TopicName {
    TopicName(s(v))
}

/// A broker with a SASL_PLAINTEXT listener, the StandardAuthorizer and User:admin as
/// super user, plus `extra` settings.
async fn broker(extra: &[&str]) -> TestBroker {
    let jaas = format!("listener.name.sasl_plaintext.plain.sasl.jaas.config={USERS}");
    let mut sets = vec![
        "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms=PLAIN",
        jaas.as_str(),
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:admin",
        "group.initial.rebalance.delay.ms=0",
    ];
    sets.extend_from_slice(extra);
    TestBroker::start(&sets).await
}

fn sasl_addr(b: &TestBroker) -> SocketAddr {
    b.listener("SASL_PLAINTEXT")
}

/// A connection authenticated as `user` with PLAIN.
async fn login(addr: SocketAddr, user: &str) -> Conn {
    let mut c = Conn::connect(addr).await;
    let r = c.sasl_plain(user, &format!("{user}-secret")).await;
    assert_eq!(r.error_code, 0, "{user} logs in");
    c
}

/// CreateTopics v7 of one topic with one partition and `rf` replicas, as `c`.
async fn create_topic(c: &mut Conn, name: &str, rf: i16) -> CreateTopicsResponse {
    let topic = create_topics_request::CreatableTopic::default()
        .with_name(tn(name))
        .with_num_partitions(1)
        .with_replication_factor(rf);
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(10000)
        .with_topics(vec![topic]);
    c.call(ApiKey::CreateTopics, 7, &req).await
}

/// Send `req` as `api` v`version` and decode the answer.
async fn exchange(c: &mut Conn, api: ApiKey, version: i16, req: &RequestKind) -> ResponseKind {
    let mut buf = bytes::BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(s("acl-test")))
        .encode(&mut buf, api.request_header_version(version))
        .unwrap();
    req.encode(&mut buf, version).unwrap();
    c.send_raw(&buf).await;
    let mut frame = c
        .recv_frame()
        .await
        .unwrap_or_else(|| panic!("{api:?}: connection closed"));
    ResponseHeader::decode(&mut frame, api.response_header_version(version)).unwrap();
    ResponseKind::decode(api, &mut frame, version).unwrap()
}

/// Every error code in a response (its Debug form names them `..._error_code: N`).
fn error_codes(resp: &ResponseKind) -> Vec<i16> {
    let text = format!("{resp:?}");
    let re = regex::Regex::new(r"error_code: (-?\d+)").unwrap();
    re.captures_iter(&text)
        .map(|c| c[1].parse().unwrap())
        .collect()
}

/// Grant (or with `grant` false, revoke) `op` on a LITERAL resource to User:alice, as admin.
async fn acl(admin: &mut Conn, grant: bool, op: Operation, rt: ResourceType, name: &str) {
    if grant {
        let creation = create_acls_request::AclCreation::default()
            .with_resource_type(rt.code())
            .with_resource_name(s(name))
            .with_resource_pattern_type(3)
            .with_principal(s("User:alice"))
            .with_host(s("*"))
            .with_operation(op.code())
            .with_permission_type(3);
        let r: CreateAclsResponse = admin
            .call(
                ApiKey::CreateAcls,
                3,
                &CreateAclsRequest::default().with_creations(vec![creation]),
            )
            .await;
        assert_eq!(
            r.results[0].error_code, 0,
            "{:?}",
            r.results[0].error_message
        );
    } else {
        let filter = delete_acls_request::DeleteAclsFilter::default()
            .with_resource_type_filter(rt.code())
            .with_resource_name_filter(Some(s(name)))
            .with_pattern_type_filter(3)
            .with_principal_filter(Some(s("User:alice")))
            .with_host_filter(None)
            .with_operation(op.code())
            .with_permission_type(3);
        let r: DeleteAclsResponse = admin
            .call(
                ApiKey::DeleteAcls,
                3,
                &DeleteAclsRequest::default().with_filters(vec![filter]),
            )
            .await;
        assert_eq!(r.filter_results[0].error_code, 0);
        assert_eq!(
            r.filter_results[0].matching_acls.len(),
            1,
            "the ACL granted before is revoked"
        );
    }
}

/// One row of the matrix: the request, the ACL it needs, the refusal without it, and
/// ACLs it needs besides (granted first, so only the row's own ACL is missing).
struct Case {
    api: ApiKey,
    /// The version to send (default: the highest served).
    version: Option<i16>,
    needs: (Operation, ResourceType, &'static str),
    denied: i16,
    also: Vec<(Operation, ResourceType, &'static str)>,
    request: RequestKind,
}

fn records() -> Bytes {
    batch(&[Rec::kv(b"k", b"v")], Compression::None, None)
}

const C: &str = "kafka-cluster";

fn cases() -> Vec<Case> {
    use Operation::*;
    use ResourceType::*;
    let case = |api, needs, denied, request| Case {
        api,
        version: None,
        needs,
        denied,
        also: Vec::new(),
        request,
    };
    vec![
        // Produce and Fetch by topic name: v12 (v13 names topics by id).
        Case { version: Some(12), ..case(ApiKey::Produce, (Write, Topic, "m-produce"), TOPIC_DENIED, RequestKind::Produce(
            ProduceRequest::default().with_acks(1).with_timeout_ms(5000).with_topic_data(vec![
                produce_request::TopicProduceData::default().with_name(tn("m-produce")).with_partition_data(vec![
                    produce_request::PartitionProduceData::default().with_index(0).with_records(Some(records())),
                ]),
            ]))) },
        Case { version: Some(12), ..case(ApiKey::Fetch, (Read, Topic, "m-fetch"), TOPIC_DENIED, RequestKind::Fetch(
            FetchRequest::default().with_replica_id(BrokerId(-1)).with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![
                fetch_request::FetchTopic::default().with_topic(tn("m-fetch")).with_partitions(vec![
                    fetch_request::FetchPartition::default().with_partition(0).with_partition_max_bytes(1 << 20),
                ]),
            ]))) },
        case(ApiKey::ListOffsets, (Describe, Topic, "m-offsets"), TOPIC_DENIED, RequestKind::ListOffsets(
            ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
                list_offsets_request::ListOffsetsTopic::default().with_name(tn("m-offsets")).with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1),
                ]),
            ]))),
        case(ApiKey::Metadata, (Describe, Topic, "m-meta"), TOPIC_DENIED, RequestKind::Metadata(
            MetadataRequest::default().with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(tn("m-meta")))])))),
        Case { also: vec![(Read, Topic, "m-commit")], ..case(ApiKey::OffsetCommit, (Read, Group, "g-commit"), GROUP_DENIED, RequestKind::OffsetCommit(
            OffsetCommitRequest::default().with_group_id(GroupId(s("g-commit"))).with_generation_id_or_member_epoch(-1).with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default().with_name(tn("m-commit")).with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(1),
                ]),
            ]))) },
        case(ApiKey::OffsetFetch, (Describe, Group, "g-fetch"), GROUP_DENIED, RequestKind::OffsetFetch(
            OffsetFetchRequest::default().with_groups(vec![offset_fetch_request::OffsetFetchRequestGroup::default().with_group_id(GroupId(s("g-fetch"))).with_topics(None)]))),
        case(ApiKey::FindCoordinator, (Describe, Group, "g-find"), GROUP_DENIED, RequestKind::FindCoordinator(
            FindCoordinatorRequest::default().with_key_type(0).with_coordinator_keys(vec![s("g-find")]))),
        case(ApiKey::JoinGroup, (Read, Group, "g-join"), GROUP_DENIED, RequestKind::JoinGroup(
            JoinGroupRequest::default().with_group_id(GroupId(s("g-join"))).with_session_timeout_ms(10000).with_rebalance_timeout_ms(10000)
                .with_protocol_type(s("consumer")).with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default().with_name(s("range")).with_metadata(Bytes::new())]))),
        case(ApiKey::Heartbeat, (Read, Group, "g-hb"), GROUP_DENIED, RequestKind::Heartbeat(
            HeartbeatRequest::default().with_group_id(GroupId(s("g-hb"))).with_member_id(s("m")).with_generation_id(1))),
        case(ApiKey::LeaveGroup, (Read, Group, "g-leave"), GROUP_DENIED, RequestKind::LeaveGroup(
            LeaveGroupRequest::default().with_group_id(GroupId(s("g-leave"))).with_members(vec![leave_group_request::MemberIdentity::default().with_member_id(s("m"))]))),
        case(ApiKey::SyncGroup, (Read, Group, "g-sync"), GROUP_DENIED, RequestKind::SyncGroup(
            SyncGroupRequest::default().with_group_id(GroupId(s("g-sync"))).with_member_id(s("m")).with_generation_id(1)
                .with_protocol_type(Some(s("consumer"))).with_protocol_name(Some(s("range"))))),
        case(ApiKey::DescribeGroups, (Describe, Group, "g-desc"), GROUP_DENIED, RequestKind::DescribeGroups(
            DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g-desc"))]))),
        case(ApiKey::DeleteGroups, (Delete, Group, "g-del"), GROUP_DENIED, RequestKind::DeleteGroups(
            DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g-del"))]))),
        Case { also: vec![(Read, Topic, "m-offdel")], ..case(ApiKey::OffsetDelete, (Delete, Group, "g-offdel"), GROUP_DENIED, RequestKind::OffsetDelete(
            OffsetDeleteRequest::default().with_group_id(GroupId(s("g-offdel"))).with_topics(vec![
                offset_delete_request::OffsetDeleteRequestTopic::default().with_name(tn("m-offdel")).with_partitions(vec![
                    offset_delete_request::OffsetDeleteRequestPartition::default().with_partition_index(0),
                ]),
            ]))) },
        // Its settings come back only with DESCRIBE_CONFIGS (topic_config_error_code otherwise).
        Case { also: vec![(DescribeConfigs, Topic, "m-create")], ..case(ApiKey::CreateTopics, (Create, Topic, "m-create"), TOPIC_DENIED, RequestKind::CreateTopics(
            CreateTopicsRequest::default().with_timeout_ms(5000).with_topics(vec![
                create_topics_request::CreatableTopic::default().with_name(tn("m-create")).with_num_partitions(1).with_replication_factor(1),
            ]))) },
        case(ApiKey::DeleteTopics, (Delete, Topic, "m-deltopic"), TOPIC_DENIED, RequestKind::DeleteTopics(
            DeleteTopicsRequest::default().with_timeout_ms(5000).with_topics(vec![delete_topics_request::DeleteTopicState::default().with_name(Some(tn("m-deltopic")))]))),
        case(ApiKey::DeleteRecords, (Delete, Topic, "m-delrec"), TOPIC_DENIED, RequestKind::DeleteRecords(
            DeleteRecordsRequest::default().with_timeout_ms(5000).with_topics(vec![
                delete_records_request::DeleteRecordsTopic::default().with_name(tn("m-delrec")).with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default().with_partition_index(0).with_offset(0),
                ]),
            ]))),
        case(ApiKey::InitProducerId, (Write, Topic, "m-anything"), CLUSTER_DENIED, RequestKind::InitProducerId(
            InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60000).with_producer_id(ProducerId(-1)).with_producer_epoch(-1))),
        case(ApiKey::OffsetForLeaderEpoch, (Describe, Topic, "m-epoch"), TOPIC_DENIED, RequestKind::OffsetForLeaderEpoch(
            OffsetForLeaderEpochRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
                offset_for_leader_epoch_request::OffsetForLeaderTopic::default().with_topic(tn("m-epoch")).with_partitions(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderPartition::default().with_partition(0).with_leader_epoch(0).with_current_leader_epoch(-1),
                ]),
            ]))),
        case(ApiKey::DescribeConfigs, (DescribeConfigs, Topic, "m-conf"), TOPIC_DENIED, RequestKind::DescribeConfigs(
            DescribeConfigsRequest::default().with_resources(vec![describe_configs_request::DescribeConfigsResource::default().with_resource_type(2).with_resource_name(s("m-conf")).with_configuration_keys(None)]))),
        case(ApiKey::AlterConfigs, (AlterConfigs, Topic, "m-conf"), TOPIC_DENIED, RequestKind::AlterConfigs(
            AlterConfigsRequest::default().with_resources(vec![alter_configs_request::AlterConfigsResource::default().with_resource_type(2).with_resource_name(s("m-conf"))
                .with_configs(vec![alter_configs_request::AlterableConfig::default().with_name(s("retention.ms")).with_value(Some(s("100000")))])]))),
        case(ApiKey::IncrementalAlterConfigs, (AlterConfigs, Topic, "m-conf2"), TOPIC_DENIED, RequestKind::IncrementalAlterConfigs(
            IncrementalAlterConfigsRequest::default().with_resources(vec![incremental_alter_configs_request::AlterConfigsResource::default().with_resource_type(2).with_resource_name(s("m-conf2"))
                .with_configs(vec![incremental_alter_configs_request::AlterableConfig::default().with_name(s("retention.ms")).with_config_operation(0).with_value(Some(s("100000")))])]))),
        case(ApiKey::AlterReplicaLogDirs, (Alter, Cluster, C), CLUSTER_DENIED, RequestKind::AlterReplicaLogDirs(
            AlterReplicaLogDirsRequest::default().with_dirs(vec![alter_replica_log_dirs_request::AlterReplicaLogDir::default().with_path(s("/nope"))
                .with_topics(vec![alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default().with_name(tn("m-produce")).with_partitions(vec![0])])]))),
        case(ApiKey::DescribeLogDirs, (Describe, Cluster, C), CLUSTER_DENIED, RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default().with_topics(None))),
        case(ApiKey::CreatePartitions, (Alter, Topic, "m-parts"), TOPIC_DENIED, RequestKind::CreatePartitions(
            CreatePartitionsRequest::default().with_timeout_ms(5000).with_topics(vec![create_partitions_request::CreatePartitionsTopic::default().with_name(tn("m-parts")).with_count(2).with_assignments(None)]))),
        case(ApiKey::ElectLeaders, (Alter, Cluster, C), CLUSTER_DENIED, RequestKind::ElectLeaders(
            ElectLeadersRequest::default().with_election_type(0).with_timeout_ms(5000).with_topic_partitions(Some(vec![
                elect_leaders_request::TopicPartitions::default().with_topic(tn("m-produce")).with_partitions(vec![0]),
            ])))),
        case(ApiKey::AlterPartitionReassignments, (Alter, Cluster, C), CLUSTER_DENIED, RequestKind::AlterPartitionReassignments(
            AlterPartitionReassignmentsRequest::default().with_timeout_ms(5000).with_topics(vec![
                alter_partition_reassignments_request::ReassignableTopic::default().with_name(tn("m-produce")).with_partitions(vec![
                    alter_partition_reassignments_request::ReassignablePartition::default().with_partition_index(0).with_replicas(None),
                ]),
            ]))),
        case(ApiKey::ListPartitionReassignments, (Describe, Cluster, C), CLUSTER_DENIED, RequestKind::ListPartitionReassignments(
            ListPartitionReassignmentsRequest::default().with_timeout_ms(5000).with_topics(None))),
        case(ApiKey::DescribeAcls, (Describe, Cluster, C), CLUSTER_DENIED, RequestKind::DescribeAcls(
            DescribeAclsRequest::default().with_resource_type_filter(1).with_pattern_type_filter(1).with_operation(1).with_permission_type(1))),
        case(ApiKey::CreateAcls, (Alter, Cluster, C), CLUSTER_DENIED, RequestKind::CreateAcls(
            CreateAclsRequest::default().with_creations(vec![create_acls_request::AclCreation::default().with_resource_type(2).with_resource_name(s("x"))
                .with_resource_pattern_type(3).with_principal(s("User:bob")).with_host(s("*")).with_operation(3).with_permission_type(3)]))),
        case(ApiKey::DeleteAcls, (Alter, Cluster, C), CLUSTER_DENIED, RequestKind::DeleteAcls(
            DeleteAclsRequest::default().with_filters(vec![delete_acls_request::DeleteAclsFilter::default().with_resource_type_filter(2)
                .with_resource_name_filter(Some(s("x"))).with_pattern_type_filter(3).with_principal_filter(Some(s("User:bob"))).with_operation(1).with_permission_type(1)]))),
        case(ApiKey::DescribeUserScramCredentials, (Describe, Cluster, C), CLUSTER_DENIED, RequestKind::DescribeUserScramCredentials(
            DescribeUserScramCredentialsRequest::default().with_users(None))),
        case(ApiKey::AlterUserScramCredentials, (Alter, Cluster, C), CLUSTER_DENIED, RequestKind::AlterUserScramCredentials(
            AlterUserScramCredentialsRequest::default().with_upsertions(vec![alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                .with_name(s("carol")).with_mechanism(1).with_iterations(4096).with_salt(Bytes::from_static(b"salt")).with_salted_password(Bytes::from_static(&[1; 32]))]))),
        case(ApiKey::DescribeQuorum, (Describe, Cluster, C), CLUSTER_DENIED, RequestKind::DescribeQuorum(
            DescribeQuorumRequest::default().with_topics(vec![describe_quorum_request::TopicData::default().with_topic_name(tn("__cluster_metadata"))
                .with_partitions(vec![describe_quorum_request::PartitionData::default().with_partition_index(0)])]))),
        case(ApiKey::DescribeProducers, (Read, Topic, "m-producers"), TOPIC_DENIED, RequestKind::DescribeProducers(
            DescribeProducersRequest::default().with_topics(vec![describe_producers_request::TopicRequest::default().with_name(tn("m-producers")).with_partition_indexes(vec![0])]))),
        case(ApiKey::UnregisterBroker, (Alter, Cluster, C), CLUSTER_DENIED, RequestKind::UnregisterBroker(UnregisterBrokerRequest::default().with_broker_id(BrokerId(99)))),
        case(ApiKey::AddRaftVoter, (Alter, Cluster, C), CLUSTER_DENIED, RequestKind::AddRaftVoter(AddRaftVoterRequest::default().with_voter_id(99))),
        case(ApiKey::RemoveRaftVoter, (Alter, Cluster, C), CLUSTER_DENIED, RequestKind::RemoveRaftVoter(RemoveRaftVoterRequest::default().with_voter_id(99))),
        Case { also: vec![(Describe, Topic, "m-cgh")], ..case(ApiKey::ConsumerGroupHeartbeat, (Read, Group, "g-cgh"), GROUP_DENIED, RequestKind::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatRequest::default().with_group_id(GroupId(s("g-cgh"))).with_member_id(s("Rz0Hx3t1QdGx1uSVzWpIfQ")).with_member_epoch(0)
                .with_rebalance_timeout_ms(30000).with_subscribed_topic_names(Some(vec![tn("m-cgh")])).with_topic_partitions(Some(vec![])))) },
        case(ApiKey::ConsumerGroupDescribe, (Describe, Group, "g-cgd"), GROUP_DENIED, RequestKind::ConsumerGroupDescribe(
            ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s("g-cgd"))]))),
        case(ApiKey::ListConfigResources, (DescribeConfigs, Cluster, C), CLUSTER_DENIED, RequestKind::ListConfigResources(ListConfigResourcesRequest::default())),
        case(ApiKey::InitProducerId, (Write, TransactionalId, "tx-init"), TXN_DENIED, RequestKind::InitProducerId(
            InitProducerIdRequest::default().with_transactional_id(Some(txid("tx-init"))).with_transaction_timeout_ms(60000).with_producer_id(ProducerId(-1)).with_producer_epoch(-1))),
        case(ApiKey::FindCoordinator, (Describe, TransactionalId, "tx-find"), TXN_DENIED, RequestKind::FindCoordinator(
            FindCoordinatorRequest::default().with_key_type(1).with_coordinator_keys(vec![s("tx-find")]))),
        Case { version: Some(3), also: vec![(Write, Topic, "m-produce")], ..case(ApiKey::AddPartitionsToTxn, (Write, TransactionalId, "tx-add"), TXN_DENIED, RequestKind::AddPartitionsToTxn(
            AddPartitionsToTxnRequest::default().with_v3_and_below_transactional_id(txid("tx-add")).with_v3_and_below_producer_id(ProducerId(1))
                .with_v3_and_below_topics(vec![add_partitions_to_txn_request::AddPartitionsToTxnTopic::default().with_name(tn("m-produce")).with_partitions(vec![0])]))) },
        Case { version: Some(3), also: vec![(Write, TransactionalId, "tx-add-topic")], ..case(ApiKey::AddPartitionsToTxn, (Write, Topic, "m-produce"), TOPIC_DENIED, RequestKind::AddPartitionsToTxn(
            AddPartitionsToTxnRequest::default().with_v3_and_below_transactional_id(txid("tx-add-topic")).with_v3_and_below_producer_id(ProducerId(1))
                .with_v3_and_below_topics(vec![add_partitions_to_txn_request::AddPartitionsToTxnTopic::default().with_name(tn("m-produce")).with_partitions(vec![0])]))) },
        case(ApiKey::AddPartitionsToTxn, (ClusterAction, Cluster, C), CLUSTER_DENIED, RequestKind::AddPartitionsToTxn(
            AddPartitionsToTxnRequest::default().with_transactions(vec![add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                .with_transactional_id(txid("tx-verify")).with_producer_id(ProducerId(1)).with_verify_only(true)
                .with_topics(vec![add_partitions_to_txn_request::AddPartitionsToTxnTopic::default().with_name(tn("m-produce")).with_partitions(vec![0])])]))),
        Case { also: vec![(Read, Group, "g-aot")], ..case(ApiKey::AddOffsetsToTxn, (Write, TransactionalId, "tx-aot"), TXN_DENIED, RequestKind::AddOffsetsToTxn(
            AddOffsetsToTxnRequest::default().with_transactional_id(txid("tx-aot")).with_producer_id(ProducerId(1)).with_group_id(GroupId(s("g-aot"))))) },
        Case { also: vec![(Write, TransactionalId, "tx-aot-group")], ..case(ApiKey::AddOffsetsToTxn, (Read, Group, "g-aot"), GROUP_DENIED, RequestKind::AddOffsetsToTxn(
            AddOffsetsToTxnRequest::default().with_transactional_id(txid("tx-aot-group")).with_producer_id(ProducerId(1)).with_group_id(GroupId(s("g-aot"))))) },
        case(ApiKey::EndTxn, (Write, TransactionalId, "tx-end"), TXN_DENIED, RequestKind::EndTxn(
            EndTxnRequest::default().with_transactional_id(txid("tx-end")).with_producer_id(ProducerId(1)).with_committed(true))),
        Case { also: vec![(Read, Group, "g-toc"), (Read, Topic, "m-commit")], ..case(ApiKey::TxnOffsetCommit, (Write, TransactionalId, "tx-toc"), TXN_DENIED, RequestKind::TxnOffsetCommit(
            TxnOffsetCommitRequest::default().with_transactional_id(txid("tx-toc")).with_group_id(GroupId(s("g-toc"))).with_producer_id(ProducerId(1)).with_generation_id(-1)
                .with_topics(vec![txn_offset_commit_request::TxnOffsetCommitRequestTopic::default().with_name(tn("m-commit")).with_partitions(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(1)])]))) },
        case(ApiKey::WriteTxnMarkers, (ClusterAction, Cluster, C), CLUSTER_DENIED, RequestKind::WriteTxnMarkers(
            WriteTxnMarkersRequest::default().with_markers(vec![write_txn_markers_request::WritableTxnMarker::default().with_producer_id(ProducerId(5))
                .with_transaction_result(false).with_topics(vec![write_txn_markers_request::WritableTxnMarkerTopic::default().with_name(tn("m-produce")).with_partition_indexes(vec![0])])]))),
        case(ApiKey::DescribeTopicPartitions, (Describe, Topic, "m-dtp"), TOPIC_DENIED, RequestKind::DescribeTopicPartitions(
            DescribeTopicPartitionsRequest::default().with_topics(vec![describe_topic_partitions_request::TopicRequest::default().with_name(tn("m-dtp"))]).with_response_partition_limit(10))),
    ]
}

/// APIs Kafka answers without an ACL (the group and cluster listings filter instead).
const OPEN: &[ApiKey] = &[
    ApiKey::ApiVersions,
    ApiKey::SaslHandshake,
    ApiKey::SaslAuthenticate,
    ApiKey::DescribeCluster,
    ApiKey::ListGroups,
    ApiKey::GetTelemetrySubscriptions,
    ApiKey::PushTelemetry,
];

#[tokio::test(flavor = "multi_thread")]
async fn every_api_refuses_without_its_acl_and_serves_with_it() {
    let b = broker(&[]).await;
    let addr = sasl_addr(&b);
    let mut admin = login(addr, "admin").await;
    // The topics the rows name, made by the super user.
    for t in [
        "m-produce",
        "m-fetch",
        "m-offsets",
        "m-meta",
        "m-commit",
        "m-offdel",
        "m-deltopic",
        "m-delrec",
        "m-epoch",
        "m-conf",
        "m-conf2",
        "m-parts",
        "m-producers",
        "m-cgh",
        "m-dtp",
    ] {
        let r = create_topic(&mut admin, t, 1).await;
        assert_eq!(r.topics[0].error_code, 0, "{t}");
    }
    let cases = cases();
    let covered: Vec<ApiKey> = cases
        .iter()
        .map(|c| c.api)
        .chain(OPEN.iter().copied())
        .collect();
    for (api, _) in weir::handlers::APIS {
        assert!(
            covered.contains(api),
            "{api:?} has no row in the ACL matrix: add one"
        );
    }
    let mut alice = login(addr, "alice").await;
    let mut failures = Vec::new();
    for case in &cases {
        let version = case
            .version
            .unwrap_or(weir::handlers::supported(case.api).unwrap().max);
        for (op, rt, name) in &case.also {
            acl(&mut admin, true, *op, *rt, name).await;
        }
        let refused = error_codes(&exchange(&mut alice, case.api, version, &case.request).await);
        if !refused.contains(&case.denied) {
            failures.push(format!(
                "{:?} without {:?}: codes {refused:?}, expected {}",
                case.api, case.needs, case.denied
            ));
        }
        let (op, rt, name) = case.needs;
        acl(&mut admin, true, op, rt, name).await;
        let served = error_codes(&exchange(&mut alice, case.api, version, &case.request).await);
        if served
            .iter()
            .any(|c| [TOPIC_DENIED, GROUP_DENIED, CLUSTER_DENIED, TXN_DENIED].contains(c))
        {
            failures.push(format!(
                "{:?} with {:?}: still refused, codes {served:?}",
                case.api, case.needs
            ));
        }
        acl(&mut admin, false, op, rt, name).await;
        for (op, rt, name) in &case.also {
            acl(&mut admin, false, *op, *rt, name).await;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The open APIs answer alice with no ACL at all; listings show only what she may see.
    let r: DescribeClusterResponse = alice
        .call(
            ApiKey::DescribeCluster,
            1,
            &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
        )
        .await;
    assert_eq!(
        (r.error_code, r.cluster_authorized_operations),
        (0, 0),
        "no cluster operation allowed"
    );
    let listed = |r: &MetadataResponse| {
        r.topics
            .iter()
            .filter_map(|t| t.name.clone())
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
    };
    let all: MetadataResponse = alice
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(None),
        )
        .await;
    assert!(listed(&all).is_empty(), "{:?}", listed(&all));
    acl(
        &mut admin,
        true,
        Operation::Read,
        ResourceType::Topic,
        "m-meta",
    )
    .await;
    let all: MetadataResponse = alice
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default()
                .with_topics(None)
                .with_include_topic_authorized_operations(true),
        )
        .await;
    assert_eq!(listed(&all), ["m-meta"]);
    assert_eq!(
        all.topics[0].topic_authorized_operations,
        (1 << 3) | (1 << 8),
        "READ and the DESCRIBE it implies"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_prefixed_wildcard_super_users_and_the_default() {
    let b = broker(&[]).await;
    let addr = sasl_addr(&b);
    let mut admin = login(addr, "admin").await;
    let mut alice = login(addr, "alice").await;
    let metadata_code = |r: &MetadataResponse| r.topics[0].error_code;
    let ask = |t: &str| {
        MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(tn(t)))]))
            .with_allow_auto_topic_creation(false)
    };
    let create = |principal: &str, pattern: i8, name: &str, op: Operation, permission: i8| {
        create_acls_request::AclCreation::default()
            .with_resource_type(2)
            .with_resource_name(s(name))
            .with_resource_pattern_type(pattern)
            .with_principal(s(principal))
            .with_host(s("*"))
            .with_operation(op.code())
            .with_permission_type(permission)
    };
    let r: CreateAclsResponse = admin
        .call(
            ApiKey::CreateAcls,
            3,
            &CreateAclsRequest::default().with_creations(vec![
                create("User:alice", 4, "sales-", Operation::Describe, 3),
                create("User:*", 3, "*", Operation::Describe, 3),
                create("User:alice", 3, "sales-secret", Operation::Describe, 2),
                create("alice", 3, "bad", Operation::Read, 3),
            ]),
        )
        .await;
    let codes: Vec<i16> = r.results.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        [0, 0, 0, 42],
        "a principal without a type is INVALID_REQUEST"
    );
    let a: MetadataResponse = alice.call(ApiKey::Metadata, 12, &ask("sales-eu")).await;
    assert_eq!(
        metadata_code(&a),
        3,
        "prefixed ALLOW: described (unknown topic)"
    );
    let a: MetadataResponse = alice.call(ApiKey::Metadata, 12, &ask("sales-secret")).await;
    assert_eq!(metadata_code(&a), TOPIC_DENIED, "DENY beats ALLOW");
    let a: MetadataResponse = alice.call(ApiKey::Metadata, 12, &ask("other")).await;
    assert_eq!(metadata_code(&a), 3, "the wildcard ALLOW for User:*");
    // DescribeAcls with MATCH returns what applies to a resource.
    let d: DescribeAclsResponse = admin
        .call(
            ApiKey::DescribeAcls,
            3,
            &DescribeAclsRequest::default()
                .with_resource_type_filter(2)
                .with_resource_name_filter(Some(s("sales-secret")))
                .with_pattern_type_filter(2)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_operation(1)
                .with_permission_type(1),
        )
        .await;
    assert_eq!(d.resources.len(), 3, "{:?}", d.resources);
    // Groups have no ACL: refused by default, open with allow.everyone.if.no.acl.found.
    let find = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![s("free-group")]);
    let f: FindCoordinatorResponse = alice.call(ApiKey::FindCoordinator, 4, &find).await;
    assert_eq!(f.coordinators[0].error_code, GROUP_DENIED);
    let open = broker(&["allow.everyone.if.no.acl.found=true"]).await;
    let mut alice2 = login(sasl_addr(&open), "alice").await;
    let f: FindCoordinatorResponse = alice2.call(ApiKey::FindCoordinator, 4, &find).await;
    assert_eq!(f.coordinators[0].error_code, 0);
    // Without an authorizer, the ACL APIs say so.
    let plain = TestBroker::start(&[]).await;
    let mut c = Conn::connect(plain.addr).await;
    let d: DescribeAclsResponse = c
        .call(
            ApiKey::DescribeAcls,
            3,
            &DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        )
        .await;
    assert_eq!(d.error_code, 54, "SECURITY_DISABLED");
}

#[tokio::test(flavor = "multi_thread")]
async fn librdkafka_needs_its_acls_to_produce_and_consume_in_a_group() {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let b = broker(&[]).await;
    let addr = sasl_addr(&b);
    let mut admin = login(addr, "admin").await;
    let r = create_topic(&mut admin, "orders", 1).await;
    assert_eq!(r.topics[0].error_code, 0);
    let cfg = |extra: &[(&str, &str)]| {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", addr.to_string())
            .set("security.protocol", "sasl_plaintext")
            .set("sasl.mechanisms", "PLAIN")
            .set("sasl.username", "alice")
            .set("sasl.password", "alice-secret")
            .set("message.timeout.ms", "5000");
        for (k, v) in extra {
            c.set(*k, *v);
        }
        c
    };
    let producer: FutureProducer = cfg(&[]).create().unwrap();
    let send = || {
        producer.send(
            FutureRecord::<(), _>::to("orders").payload("x"),
            Duration::from_secs(5),
        )
    };
    let e = send().await.expect_err("no WRITE yet");
    assert!(e.0.to_string().contains("authorization"), "{}", e.0);
    acl(
        &mut admin,
        true,
        Operation::Write,
        ResourceType::Topic,
        "orders",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match send().await {
            Ok(_) => break,
            Err((e, _)) => assert!(Instant::now() < deadline, "{e}"),
        }
    }
    // A consumer in a group: READ on the topic and on the group.
    acl(
        &mut admin,
        true,
        Operation::Read,
        ResourceType::Topic,
        "orders",
    )
    .await;
    acl(
        &mut admin,
        true,
        Operation::Read,
        ResourceType::Group,
        "readers",
    )
    .await;
    let consumer: StreamConsumer =
        cfg(&[("group.id", "readers"), ("auto.offset.reset", "earliest")])
            .create()
            .unwrap();
    consumer.subscribe(&["orders"]).unwrap();
    let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("a record in time")
        .expect("read");
    assert_eq!(rdkafka::Message::payload(&m), Some(&b"x"[..]));
    consumer
        .commit_message(&m, rdkafka::consumer::CommitMode::Sync)
        .expect("commit with READ on the group");
    // Another group without its ACL is refused.
    let other: StreamConsumer =
        cfg(&[("group.id", "strangers"), ("auto.offset.reset", "earliest")])
            .create()
            .unwrap();
    other.subscribe(&["orders"]).unwrap();
    let e = tokio::time::timeout(Duration::from_secs(30), other.recv())
        .await
        .expect("an error in time")
        .expect_err("no READ on the group");
    assert!(e.to_string().to_lowercase().contains("authoriz"), "{e}");
}

/// A CA and client certificates for the principal test: `OU=eng,CN=alice` and
/// `OU=ops,CN=bob` (RFC 2253 order), plus the broker's certificate.
fn pki(dir: &std::path::Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "acl test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |file: &str, sans: Vec<String>, ou: &str, cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(sans).unwrap();
        // rcgen encodes CN before OU, so RFC 2253 (last first) writes OU=...,CN=....
        p.distinguished_name.push(DnType::CommonName, cn);
        p.distinguished_name
            .push(DnType::OrganizationalUnitName, ou);
        let cert = p.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{file}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
        std::fs::write(
            dir.join(format!("{file}.pem")),
            format!("{}{}", key.serialize_pem(), cert.pem()),
        )
        .unwrap();
    };
    leaf("broker", vec!["127.0.0.1".into()], "brokers", "broker");
    leaf("alice", vec![], "eng", "alice");
    leaf("bob", vec![], "ops", "bob");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificates_are_principals_through_the_mapping_rules() {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let p = |f: &str| dir.path().join(f).display().to_string();
    let sets = [
        "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0".to_string(),
        format!("ssl.keystore.location={}", p("broker.pem")),
        format!("ssl.truststore.location={}", p("ca.pem")),
        "ssl.client.auth=required".to_string(),
        "ssl.principal.mapping.rules=RULE:^OU=eng,CN=(.*?)$/$1/L,DEFAULT".to_string(),
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer".to_string(),
        // The plaintext listener is the operator's here.
        "super.users=User:ANONYMOUS".to_string(),
    ];
    let sets: Vec<&str> = sets.iter().map(|s| s.as_str()).collect();
    let b = TestBroker::start(&sets).await;
    let ssl = b.broker.as_ref().unwrap().listener_addr("SSL").unwrap();
    let mut admin = Conn::connect(b.addr).await;
    let r = create_topic(&mut admin, "certs", 1).await;
    assert_eq!(r.topics[0].error_code, 0);
    let grant = |principal: &str| {
        create_acls_request::AclCreation::default()
            .with_resource_type(2)
            .with_resource_name(s("certs"))
            .with_resource_pattern_type(3)
            .with_principal(s(principal))
            .with_host(s("*"))
            .with_operation(Operation::Describe.code())
            .with_permission_type(3)
    };
    let topic_error = |who: &str| {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", ssl.to_string())
            .set("security.protocol", "ssl")
            .set("ssl.ca.location", p("ca.pem"))
            .set("ssl.certificate.location", p(&format!("{who}.crt")))
            .set("ssl.key.location", p(&format!("{who}.key")))
            .create()
            .unwrap();
        let md = consumer
            .fetch_metadata(Some("certs"), Duration::from_secs(10))
            .expect("metadata over mTLS");
        md.topics()[0].error().map(|e| format!("{e:?}"))
    };
    let alice_before = tokio::task::block_in_place(|| topic_error("alice"));
    assert!(
        alice_before
            .as_ref()
            .is_some_and(|e| e.contains("AUTHORIZATION")),
        "no ACL yet: {alice_before:?}"
    );
    // The rule maps OU=eng,CN=alice to alice; OU=ops,CN=bob falls to DEFAULT.
    let r: CreateAclsResponse = admin
        .call(
            ApiKey::CreateAcls,
            3,
            &CreateAclsRequest::default()
                .with_creations(vec![grant("User:alice"), grant("User:OU=ops,CN=bob")]),
        )
        .await;
    assert!(r.results.iter().all(|r| r.error_code == 0));
    assert_eq!(tokio::task::block_in_place(|| topic_error("alice")), None);
    assert_eq!(tokio::task::block_in_place(|| topic_error("bob")), None);
}

fn secured_cluster(_: usize) -> Vec<String> {
    vec![
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512".into(),
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512".into(),
        format!("listener.name.sasl_plaintext.plain.sasl.jaas.config={USERS}"),
        r#"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="broker-secret";"#.into(),
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
        "super.users=User:admin;User:broker".into(),
        "min.insync.replicas=2".into(),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn an_acl_added_on_one_node_is_enforced_on_the_others_within_a_second() {
    let c = cluster::Cluster::start_named(3, "SASL_PLAINTEXT", secured_cluster);
    // The quorum forms and every broker registers (metadata through node 3 lists 3).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut admin3 = loop {
        if tokio::net::TcpStream::connect(c.addr(2)).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "node 3 does not listen\n{}",
                c.logs()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        }
        let mut conn = login(c.addr(2), "admin").await;
        let md: MetadataResponse = conn
            .call(
                ApiKey::Metadata,
                12,
                &MetadataRequest::default().with_topics(Some(vec![])),
            )
            .await;
        if md.brokers.len() == 3 {
            break conn;
        }
        assert!(
            Instant::now() < deadline,
            "{} brokers\n{}",
            md.brokers.len(),
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let mut admin1 = login(c.addr(0), "admin").await;
    let r = create_topic(&mut admin1, "shared", 3).await;
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    // acks=all with min.insync.replicas=2 needs a follower's fetch: brokers, super users,
    // replicate under the authorizer.
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(tn("shared"))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records())),
            ])]);
    let leader_deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut conn = login(c.addr(0), "admin").await;
        let r: ProduceResponse = conn.call(ApiKey::Produce, 12, &produce).await;
        let code = r.responses[0].partition_responses[0].error_code;
        if code == 0 {
            break;
        }
        let md: MetadataResponse = admin3
            .call(
                ApiKey::Metadata,
                12,
                &MetadataRequest::default().with_topics(None),
            )
            .await;
        let leader = md
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "shared"))
            .map(|t| t.partitions[0].leader_id.0);
        if let Some(l) = leader.filter(|l| *l > 0) {
            let mut conn = login(c.addr(l as usize - 1), "admin").await;
            let r: ProduceResponse = conn.call(ApiKey::Produce, 12, &produce).await;
            if r.responses[0].partition_responses[0].error_code == 0 {
                break;
            }
        }
        assert!(
            Instant::now() < leader_deadline,
            "acks=all produce: error {code}\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Alice may not describe the topic on node 3 until node 1 adds her ACL.
    let mut alice3 = login(c.addr(2), "alice").await;
    let ask = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(tn("shared"))),
    ]));
    let md: MetadataResponse = alice3.call(ApiKey::Metadata, 12, &ask).await;
    assert_eq!(md.topics[0].error_code, TOPIC_DENIED);
    acl(
        &mut admin1,
        true,
        Operation::Describe,
        ResourceType::Topic,
        "shared",
    )
    .await;
    let granted = Instant::now();
    loop {
        let md: MetadataResponse = alice3.call(ApiKey::Metadata, 12, &ask).await;
        if md.topics[0].error_code == 0 {
            break;
        }
        assert!(
            granted.elapsed() < Duration::from_secs(1),
            "not in force on node 3 after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_records_authentications_denials_and_admin_operations() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.log");
    let setting = format!("audit.log.file={}", file.display());
    let b = broker(&[&setting, "audit.log.admin.allowed=true"]).await;
    let addr = sasl_addr(&b);
    // A wrong password.
    let mut c = Conn::connect(addr).await;
    let r = c.sasl_plain("alice", "nope").await;
    assert_eq!(r.error_code, 58);
    // A denial, and an admin operation allowed to the super user.
    let mut alice = login(addr, "alice").await;
    let _ = create_topic(&mut alice, "audited", 1).await;
    let mut admin = login(addr, "admin").await;
    let r = create_topic(&mut admin, "audited", 1).await;
    assert_eq!(r.topics[0].error_code, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        let has = |kind: &str, outcome: &str| {
            lines
                .iter()
                .any(|l| l["kind"] == kind && l["outcome"] == outcome)
        };
        if has("authentication", "failure")
            && has("authorization", "denied")
            && has("authorization", "allowed")
        {
            break lines;
        }
        assert!(Instant::now() < deadline, "audit log so far: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let denied = lines.iter().find(|l| l["outcome"] == "denied").unwrap();
    assert_eq!(denied["principal"], "User:alice");
    assert_eq!(denied["api"], "CreateTopics");
    assert_eq!(denied["resource"], "audited");
    assert!(denied["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    let failed = lines
        .iter()
        .find(|l| l["kind"] == "authentication" && l["outcome"] == "failure")
        .unwrap();
    assert_eq!(failed["mechanism"], "PLAIN");
    assert!(
        failed["reason"].as_str().unwrap().contains("alice"),
        "{failed}"
    );
    assert!(lines.iter().any(|l| l["outcome"] == "allowed"
        && l["principal"] == "User:admin"
        && l["api"] == "CreateTopics"));
}
