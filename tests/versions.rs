//! Every advertised (API, version) pair answers a representative request — success and
//! error paths — with a response that encodes and decodes at that version. A field set
//! at a version that lacks it would make the broker close the connection instead.

mod common;

use bytes::Bytes;
use common::{batch, Conn, Rec, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::Compression;
use uuid::Uuid;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn tn(v: &str) -> TopicName {
    TopicName(s(v))
}

/// Representative requests for one API at one version: (label, request).
fn requests(api: ApiKey, v: i16, topic_id: Uuid, records: &Bytes) -> Vec<(String, RequestKind)> {
    use kafka_protocol::messages as m;
    let mut out: Vec<(String, RequestKind)> = Vec::new();
    let topic = |name: &str| if v >= 13 { tn("") } else { tn(name) };
    let id = |known: bool| {
        if v >= 13 {
            if known {
                topic_id
            } else {
                Uuid::new_v4()
            }
        } else {
            Uuid::nil()
        }
    };
    match api {
        ApiKey::Produce => {
            for (label, part, known) in [
                ("ok", 0, true),
                ("unknown-partition", 99, true),
                ("unknown-topic", 0, false),
            ] {
                let req = ProduceRequest::default()
                    .with_acks(-1)
                    .with_timeout_ms(5000)
                    .with_transactional_id(None)
                    .with_topic_data(vec![m::produce_request::TopicProduceData::default()
                        .with_name(topic(if known { "v" } else { "nope" }))
                        .with_topic_id(id(known))
                        .with_partition_data(vec![
                            m::produce_request::PartitionProduceData::default()
                                .with_index(part)
                                .with_records(Some(records.clone())),
                        ])]);
                out.push((label.into(), RequestKind::Produce(req)));
            }
        }
        ApiKey::Fetch => {
            for (label, part, offset) in [
                ("ok", 0, 0),
                ("out-of-range", 0, 1_000_000),
                ("unknown-partition", 99, 0),
            ] {
                let req = FetchRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_max_bytes(1 << 20)
                    .with_session_epoch(-1)
                    .with_topics(vec![m::fetch_request::FetchTopic::default()
                        .with_topic(topic("v"))
                        .with_topic_id(id(true))
                        .with_partitions(vec![m::fetch_request::FetchPartition::default()
                            .with_partition(part)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(1 << 20)])]);
                out.push((label.into(), RequestKind::Fetch(req)));
            }
        }
        ApiKey::ListOffsets => {
            let parts = [-1i64, -2, -3, 0].iter().map(|ts| {
                m::list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(*ts)
            });
            let mut parts: Vec<_> = parts.collect();
            parts.push(
                m::list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(99)
                    .with_timestamp(-1),
            );
            // One partition may appear once per request in v1; keep the first for v1.
            if v < 2 {
                parts.truncate(1);
            }
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![m::list_offsets_request::ListOffsetsTopic::default()
                    .with_name(tn("v"))
                    .with_partitions(parts)]);
            out.push(("mixed".into(), RequestKind::ListOffsets(req)));
        }
        ApiKey::Metadata => {
            for (label, name) in [("ok", "v"), ("invalid-name", "bad name!")] {
                let t =
                    m::metadata_request::MetadataRequestTopic::default().with_name(Some(tn(name)));
                out.push((
                    label.into(),
                    RequestKind::Metadata(
                        MetadataRequest::default()
                            .with_topics(Some(vec![t]))
                            .with_allow_auto_topic_creation(true),
                    ),
                ));
            }
            out.push((
                "all".into(),
                RequestKind::Metadata(MetadataRequest::default().with_topics(if v == 0 {
                    Some(vec![])
                } else {
                    None
                })),
            ));
        }
        ApiKey::ApiVersions => out.push((
            "ok".into(),
            RequestKind::ApiVersions(
                ApiVersionsRequest::default()
                    .with_client_software_name(s("weir-test"))
                    .with_client_software_version(s("1.0")),
            ),
        )),
        ApiKey::CreateTopics => {
            let t = |name: &str| {
                m::create_topics_request::CreatableTopic::default()
                    .with_name(tn(name))
                    .with_num_partitions(1)
                    .with_replication_factor(1)
            };
            let req = CreateTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![t(&format!("ct-{v}")), t("bad name!"), t("v")]);
            out.push(("mixed".into(), RequestKind::CreateTopics(req)));
        }
        ApiKey::DeleteTopics => {
            let req = if v >= 6 {
                DeleteTopicsRequest::default().with_topics(vec![
                    m::delete_topics_request::DeleteTopicState::default()
                        .with_name(Some(tn(&format!("ct-{v}")))),
                    m::delete_topics_request::DeleteTopicState::default()
                        .with_name(Some(tn("missing"))),
                ])
            } else {
                DeleteTopicsRequest::default()
                    .with_topic_names(vec![tn(&format!("ct-{v}")), tn("missing")])
            };
            out.push((
                "mixed".into(),
                RequestKind::DeleteTopics(req.with_timeout_ms(5000)),
            ));
        }
        ApiKey::DeleteRecords => {
            let req = DeleteRecordsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![
                    m::delete_records_request::DeleteRecordsTopic::default()
                        .with_name(tn("v"))
                        .with_partitions(vec![
                            m::delete_records_request::DeleteRecordsPartition::default()
                                .with_partition_index(0)
                                .with_offset(0),
                            m::delete_records_request::DeleteRecordsPartition::default()
                                .with_partition_index(99)
                                .with_offset(0),
                        ]),
                ]);
            out.push(("mixed".into(), RequestKind::DeleteRecords(req)));
        }
        ApiKey::InitProducerId => {
            out.push((
                "idempotent".into(),
                RequestKind::InitProducerId(
                    InitProducerIdRequest::default()
                        .with_transactional_id(None)
                        .with_transaction_timeout_ms(1000),
                ),
            ));
            out.push((
                "transactional".into(),
                RequestKind::InitProducerId(
                    InitProducerIdRequest::default()
                        .with_transactional_id(Some(TransactionalId(s("tx"))))
                        .with_transaction_timeout_ms(1000),
                ),
            ));
        }
        ApiKey::OffsetForLeaderEpoch => {
            let req = OffsetForLeaderEpochRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![
                    m::offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                        .with_topic(tn("v"))
                        .with_partitions(vec![
                            m::offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                                .with_partition(0)
                                .with_leader_epoch(0)
                                .with_current_leader_epoch(-1),
                            m::offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                                .with_partition(99)
                                .with_leader_epoch(0),
                        ]),
                ]);
            out.push(("mixed".into(), RequestKind::OffsetForLeaderEpoch(req)));
        }
        ApiKey::DescribeConfigs => {
            let r = |ty: i8, name: &str| {
                m::describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(ty)
                    .with_resource_name(s(name))
                    .with_configuration_keys(None)
            };
            let req = DescribeConfigsRequest::default()
                .with_include_synonyms(true)
                .with_include_documentation(v >= 3)
                .with_resources(vec![r(2, "v"), r(4, "1"), r(2, "missing")]);
            out.push(("mixed".into(), RequestKind::DescribeConfigs(req)));
        }
        ApiKey::AlterConfigs => {
            let c = m::alter_configs_request::AlterableConfig::default()
                .with_name(s("retention.ms"))
                .with_value(Some(s("3600000")));
            let req = AlterConfigsRequest::default().with_resources(vec![
                m::alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("v"))
                    .with_configs(vec![c.clone()]),
                m::alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("missing"))
                    .with_configs(vec![c]),
            ]);
            out.push(("mixed".into(), RequestKind::AlterConfigs(req)));
        }
        ApiKey::IncrementalAlterConfigs => {
            let c = m::incremental_alter_configs_request::AlterableConfig::default()
                .with_name(s("retention.ms"))
                .with_config_operation(0)
                .with_value(Some(s("7200000")));
            let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
                m::incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("v"))
                    .with_configs(vec![c.clone()]),
                m::incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("missing"))
                    .with_configs(vec![c]),
            ]);
            out.push(("mixed".into(), RequestKind::IncrementalAlterConfigs(req)));
        }
        ApiKey::DescribeLogDirs => out.push((
            "all".into(),
            RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default().with_topics(None)),
        )),
        ApiKey::CreatePartitions => {
            let req = CreatePartitionsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![
                    m::create_partitions_request::CreatePartitionsTopic::default()
                        .with_name(tn("v"))
                        .with_count(v as i32 + 2)
                        .with_assignments(None),
                    m::create_partitions_request::CreatePartitionsTopic::default()
                        .with_name(tn("missing"))
                        .with_count(3)
                        .with_assignments(None),
                ]);
            out.push(("mixed".into(), RequestKind::CreatePartitions(req)));
        }
        ApiKey::DescribeCluster => out.push((
            "ok".into(),
            RequestKind::DescribeCluster(
                DescribeClusterRequest::default().with_include_fenced_brokers(v >= 2),
            ),
        )),
        ApiKey::ElectLeaders => {
            let req = ElectLeadersRequest::default()
                .with_election_type(if v >= 1 { 1 } else { 0 })
                .with_timeout_ms(5000)
                .with_topic_partitions(Some(vec![
                    m::elect_leaders_request::TopicPartitions::default()
                        .with_topic(tn("v"))
                        .with_partitions(vec![0, 99]),
                ]));
            out.push(("mixed".into(), RequestKind::ElectLeaders(req.clone())));
            out.push((
                "all".into(),
                RequestKind::ElectLeaders(req.with_topic_partitions(None)),
            ));
        }
        ApiKey::AlterPartitionReassignments => {
            let part = |i: i32, replicas: Option<Vec<i32>>| {
                m::alter_partition_reassignments_request::ReassignablePartition::default()
                    .with_partition_index(i)
                    .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect()))
            };
            let req = AlterPartitionReassignmentsRequest::default()
                .with_timeout_ms(5000)
                .with_allow_replication_factor_change(v == 0)
                .with_topics(vec![
                    m::alter_partition_reassignments_request::ReassignableTopic::default()
                        .with_name(tn("v"))
                        .with_partitions(vec![
                            part(0, Some(vec![1])),
                            part(0, None),
                            part(0, Some(vec![7])),
                            part(99, Some(vec![1])),
                        ]),
                ]);
            out.push((
                "mixed".into(),
                RequestKind::AlterPartitionReassignments(req),
            ));
        }
        ApiKey::ListPartitionReassignments => {
            let req = ListPartitionReassignmentsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(Some(vec![
                    m::list_partition_reassignments_request::ListPartitionReassignmentsTopics::default()
                        .with_name(tn("v"))
                        .with_partition_indexes(vec![0, 99]),
                ]));
            out.push((
                "some".into(),
                RequestKind::ListPartitionReassignments(req.clone()),
            ));
            out.push((
                "all".into(),
                RequestKind::ListPartitionReassignments(req.with_topics(None)),
            ));
        }
        ApiKey::DescribeProducers => {
            let req = DescribeProducersRequest::default().with_topics(vec![
                m::describe_producers_request::TopicRequest::default()
                    .with_name(tn("v"))
                    .with_partition_indexes(vec![0, 99]),
            ]);
            out.push(("mixed".into(), RequestKind::DescribeProducers(req)));
        }
        ApiKey::FindCoordinator => {
            let keys = |k: &[&str]| k.iter().map(|k| s(k)).collect::<Vec<_>>();
            let req = |key_type: i8| {
                let r = FindCoordinatorRequest::default().with_key_type(key_type);
                if v >= 4 {
                    r.with_coordinator_keys(keys(&["g", "h"]))
                } else {
                    r.with_key(s("g"))
                }
            };
            out.push(("group".into(), RequestKind::FindCoordinator(req(0))));
            if v >= 1 {
                out.push(("transaction".into(), RequestKind::FindCoordinator(req(1))));
            }
        }
        ApiKey::JoinGroup => {
            for (label, member) in [("new", ""), ("unknown-member", "nope")] {
                let req = JoinGroupRequest::default()
                    .with_group_id(GroupId(s(&format!("jg-{v}"))))
                    .with_session_timeout_ms(10_000)
                    .with_rebalance_timeout_ms(10_000)
                    .with_member_id(s(member))
                    .with_protocol_type(s("consumer"))
                    .with_protocols(vec![
                        m::join_group_request::JoinGroupRequestProtocol::default()
                            .with_name(s("range"))
                            .with_metadata(Bytes::from_static(b"\0\0")),
                    ]);
                out.push((label.into(), RequestKind::JoinGroup(req)));
            }
        }
        ApiKey::SyncGroup => {
            let req = SyncGroupRequest::default()
                .with_group_id(GroupId(s("sg")))
                .with_generation_id(1)
                .with_member_id(s("nope"))
                .with_protocol_type(if v >= 5 { Some(s("consumer")) } else { None })
                .with_protocol_name(if v >= 5 { Some(s("range")) } else { None });
            out.push(("unknown-member".into(), RequestKind::SyncGroup(req)));
        }
        ApiKey::Heartbeat => {
            let req = HeartbeatRequest::default()
                .with_group_id(GroupId(s(&format!("jg-{v}"))))
                .with_generation_id(1)
                .with_member_id(s("nope"));
            out.push(("unknown-member".into(), RequestKind::Heartbeat(req)));
        }
        ApiKey::LeaveGroup => {
            let req = LeaveGroupRequest::default().with_group_id(GroupId(s(&format!("jg-{v}"))));
            let req = if v >= 3 {
                req.with_members(vec![
                    m::leave_group_request::MemberIdentity::default().with_member_id(s("nope"))
                ])
            } else {
                req.with_member_id(s("nope"))
            };
            out.push(("unknown-member".into(), RequestKind::LeaveGroup(req)));
        }
        ApiKey::OffsetCommit => {
            let req = OffsetCommitRequest::default()
                .with_group_id(GroupId(s("oc")))
                .with_generation_id_or_member_epoch(-1)
                .with_retention_time_ms(-1)
                .with_topics(vec![
                    m::offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(tn("v"))
                        .with_partitions(vec![
                            m::offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(1)
                                .with_committed_metadata(Some(s("meta"))),
                        ]),
                ]);
            out.push(("standalone".into(), RequestKind::OffsetCommit(req.clone())));
            out.push((
                "wrong-generation".into(),
                RequestKind::OffsetCommit(
                    req.with_group_id(GroupId(s(&format!("jg-{v}"))))
                        .with_generation_id_or_member_epoch(7)
                        .with_member_id(s("nope")),
                ),
            ));
        }
        ApiKey::OffsetFetch => {
            let req = if v >= 8 {
                OffsetFetchRequest::default().with_groups(vec![
                    m::offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(s("oc")))
                        .with_topics(Some(vec![
                            m::offset_fetch_request::OffsetFetchRequestTopics::default()
                                .with_name(tn("v"))
                                .with_partition_indexes(vec![0, 99]),
                        ])),
                    m::offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(s("missing")))
                        .with_topics(None),
                ])
            } else {
                OffsetFetchRequest::default()
                    .with_group_id(GroupId(s("oc")))
                    .with_topics(Some(vec![
                        m::offset_fetch_request::OffsetFetchRequestTopic::default()
                            .with_name(tn("v"))
                            .with_partition_indexes(vec![0, 99]),
                    ]))
            };
            out.push(("mixed".into(), RequestKind::OffsetFetch(req)));
        }
        ApiKey::DescribeGroups => {
            let req = DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(s("oc")), GroupId(s("missing"))]);
            out.push(("mixed".into(), RequestKind::DescribeGroups(req)));
        }
        ApiKey::ListGroups => {
            let req = ListGroupsRequest::default()
                .with_states_filter(if v >= 4 { vec![s("Empty")] } else { vec![] })
                .with_types_filter(if v >= 5 { vec![s("classic")] } else { vec![] });
            out.push(("filtered".into(), RequestKind::ListGroups(req)));
        }
        ApiKey::DeleteGroups => {
            let req = DeleteGroupsRequest::default()
                .with_groups_names(vec![GroupId(s("missing")), GroupId(s(&format!("jg-{v}")))]);
            out.push(("mixed".into(), RequestKind::DeleteGroups(req)));
        }
        ApiKey::OffsetDelete => {
            let req = OffsetDeleteRequest::default()
                .with_group_id(GroupId(s("oc")))
                .with_topics(vec![
                    m::offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(tn("v"))
                        .with_partitions(vec![
                            m::offset_delete_request::OffsetDeleteRequestPartition::default()
                                .with_partition_index(0),
                        ]),
                ]);
            out.push(("ok".into(), RequestKind::OffsetDelete(req)));
        }
        ApiKey::ConsumerGroupHeartbeat => {
            // A v0 member gets its id from the coordinator; v1 members bring their own.
            let member = if v >= 1 {
                format!("member-{v}")
            } else {
                String::new()
            };
            let req = ConsumerGroupHeartbeatRequest::default()
                .with_group_id(GroupId(s(&format!("cg-{v}"))))
                .with_member_id(s(&member))
                .with_member_epoch(0)
                .with_rebalance_timeout_ms(10_000)
                .with_subscribed_topic_names(Some(vec![tn("v")]))
                .with_topic_partitions(Some(vec![]));
            out.push((
                "join".into(),
                RequestKind::ConsumerGroupHeartbeat(req.clone()),
            ));
            out.push((
                "fenced".into(),
                RequestKind::ConsumerGroupHeartbeat(
                    req.with_member_id(s("nope")).with_member_epoch(5),
                ),
            ));
        }
        ApiKey::ConsumerGroupDescribe => {
            let req = ConsumerGroupDescribeRequest::default()
                .with_group_ids(vec![GroupId(s(&format!("cg-{v}"))), GroupId(s("missing"))]);
            out.push(("mixed".into(), RequestKind::ConsumerGroupDescribe(req)));
        }
        ApiKey::DescribeQuorum => {
            let req = DescribeQuorumRequest::default().with_topics(vec![
                m::describe_quorum_request::TopicData::default()
                    .with_topic_name(tn("__cluster_metadata"))
                    .with_partitions(vec![
                        m::describe_quorum_request::PartitionData::default(),
                        m::describe_quorum_request::PartitionData::default()
                            .with_partition_index(7),
                    ]),
            ]);
            out.push(("mixed".into(), RequestKind::DescribeQuorum(req)));
        }
        ApiKey::UnregisterBroker => out.push((
            "unknown".into(),
            RequestKind::UnregisterBroker(
                UnregisterBrokerRequest::default().with_broker_id(BrokerId(42)),
            ),
        )),
        // A single node: its one voter cannot be removed, and node 9 follows nothing.
        ApiKey::AddRaftVoter => out.push((
            "unknown".into(),
            RequestKind::AddRaftVoter(
                AddRaftVoterRequest::default()
                    .with_voter_id(9)
                    .with_timeout_ms(1000),
            ),
        )),
        ApiKey::RemoveRaftVoter => {
            for (label, id) in [("last voter", 1), ("not a voter", 9)] {
                out.push((
                    label.into(),
                    RequestKind::RemoveRaftVoter(
                        RemoveRaftVoterRequest::default().with_voter_id(id),
                    ),
                ));
            }
        }
        ApiKey::AlterReplicaLogDirs => {
            use m::alter_replica_log_dirs_request::{AlterReplicaLogDir, AlterReplicaLogDirTopic};
            out.push((
                "not a log dir".into(),
                RequestKind::AlterReplicaLogDirs(AlterReplicaLogDirsRequest::default().with_dirs(
                    vec![AlterReplicaLogDir::default()
                        .with_path(s("/not/a/log/dir"))
                        .with_topics(vec![AlterReplicaLogDirTopic::default()
                            .with_name(tn("v"))
                            .with_partitions(vec![0])])],
                )),
            ));
        }
        ApiKey::GetTelemetrySubscriptions => out.push((
            "new client".into(),
            RequestKind::GetTelemetrySubscriptions(GetTelemetrySubscriptionsRequest::default()),
        )),
        // Never subscribed: UNKNOWN_SUBSCRIPTION_ID.
        ApiKey::PushTelemetry => out.push((
            "unknown".into(),
            RequestKind::PushTelemetry(
                PushTelemetryRequest::default().with_client_instance_id(Uuid::new_v4()),
            ),
        )),
        ApiKey::ListConfigResources => out.push((
            "all".into(),
            RequestKind::ListConfigResources(ListConfigResourcesRequest::default()),
        )),
        ApiKey::DescribeTopicPartitions => {
            let topic =
                m::describe_topic_partitions_request::TopicRequest::default().with_name(tn("v"));
            out.push((
                "one and missing".into(),
                RequestKind::DescribeTopicPartitions(
                    DescribeTopicPartitionsRequest::default()
                        .with_topics(vec![
                            topic,
                            m::describe_topic_partitions_request::TopicRequest::default()
                                .with_name(tn("missing")),
                        ])
                        .with_response_partition_limit(10),
                ),
            ));
        }
        // A PLAINTEXT listener: both answer ILLEGAL_SASL_STATE.
        ApiKey::SaslHandshake => out.push((
            "plaintext".into(),
            RequestKind::SaslHandshake(SaslHandshakeRequest::default().with_mechanism(s("PLAIN"))),
        )),
        ApiKey::SaslAuthenticate => out.push((
            "plaintext".into(),
            RequestKind::SaslAuthenticate(
                SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"\0a\0b")),
            ),
        )),
        ApiKey::DescribeUserScramCredentials => out.push((
            "all and missing".into(),
            RequestKind::DescribeUserScramCredentials(
                DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                    m::describe_user_scram_credentials_request::UserName::default()
                        .with_name(s("nobody")),
                ])),
            ),
        )),
        ApiKey::AlterUserScramCredentials => out.push((
            "upsert and bad delete".into(),
            RequestKind::AlterUserScramCredentials(
                AlterUserScramCredentialsRequest::default()
                    .with_upsertions(vec![
                        m::alter_user_scram_credentials_request::ScramCredentialUpsertion::default(
                        )
                        .with_name(s(&format!("u{v}")))
                        .with_mechanism(1)
                        .with_iterations(4096)
                        .with_salt(Bytes::from_static(b"salt"))
                        .with_salted_password(Bytes::from_static(&[7; 32])),
                    ])
                    .with_deletions(vec![
                        m::alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                            .with_name(s("nobody"))
                            .with_mechanism(2),
                    ]),
            ),
        )),
        // No authorizer: SECURITY_DISABLED.
        ApiKey::DescribeAcls => out.push((
            "no authorizer".into(),
            RequestKind::DescribeAcls(
                DescribeAclsRequest::default()
                    .with_resource_type_filter(1)
                    .with_pattern_type_filter(1)
                    .with_operation(1)
                    .with_permission_type(1),
            ),
        )),
        ApiKey::CreateAcls => out.push((
            "no authorizer".into(),
            RequestKind::CreateAcls(CreateAclsRequest::default().with_creations(vec![
                m::create_acls_request::AclCreation::default()
                    .with_resource_type(2)
                    .with_resource_name(s("v"))
                    .with_resource_pattern_type(3)
                    .with_principal(s("User:a"))
                    .with_host(s("*"))
                    .with_operation(3)
                    .with_permission_type(3),
            ])),
        )),
        ApiKey::DeleteAcls => out.push((
            "no authorizer".into(),
            RequestKind::DeleteAcls(DeleteAclsRequest::default().with_filters(vec![
                m::delete_acls_request::DeleteAclsFilter::default()
                    .with_resource_type_filter(1)
                    .with_pattern_type_filter(1)
                    .with_operation(1)
                    .with_permission_type(1),
            ])),
        )),
        // A transactional id no InitProducerId has seen: INVALID_PRODUCER_ID_MAPPING
        // (or NOT_COORDINATOR before __transaction_state exists).
        ApiKey::AddPartitionsToTxn => {
            let topics = vec![
                m::add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(tn("v"))
                    .with_partitions(vec![0, 99]),
            ];
            let req = if v >= 4 {
                AddPartitionsToTxnRequest::default().with_transactions(vec![
                    m::add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                        .with_transactional_id(TransactionalId(s("nobody")))
                        .with_producer_id(ProducerId(1))
                        .with_producer_epoch(0)
                        .with_verify_only(true)
                        .with_topics(topics),
                ])
            } else {
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(TransactionalId(s("nobody")))
                    .with_v3_and_below_producer_id(ProducerId(1))
                    .with_v3_and_below_topics(topics)
            };
            out.push(("unknown id".into(), RequestKind::AddPartitionsToTxn(req)));
        }
        ApiKey::AddOffsetsToTxn => out.push((
            "unknown id".into(),
            RequestKind::AddOffsetsToTxn(
                AddOffsetsToTxnRequest::default()
                    .with_transactional_id(TransactionalId(s("nobody")))
                    .with_producer_id(ProducerId(1))
                    .with_group_id(GroupId(s("g"))),
            ),
        )),
        ApiKey::EndTxn => out.push((
            "unknown id".into(),
            RequestKind::EndTxn(
                EndTxnRequest::default()
                    .with_transactional_id(TransactionalId(s("nobody")))
                    .with_producer_id(ProducerId(1))
                    .with_committed(true),
            ),
        )),
        ApiKey::TxnOffsetCommit => out.push((
            "unknown group member".into(),
            RequestKind::TxnOffsetCommit(
                TxnOffsetCommitRequest::default()
                    .with_transactional_id(TransactionalId(s("nobody")))
                    .with_group_id(GroupId(s(&format!("txn-g-{v}"))))
                    .with_producer_id(ProducerId(1))
                    .with_generation_id(-1)
                    .with_topics(vec![
                        m::txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                            .with_name(tn("v"))
                            .with_partitions(vec![
                            m::txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(1),
                            m::txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                .with_partition_index(99)
                                .with_committed_offset(1),
                        ]),
                    ]),
            ),
        )),
        ApiKey::WriteTxnMarkers => out.push((
            "known and unknown partitions".into(),
            RequestKind::WriteTxnMarkers(WriteTxnMarkersRequest::default().with_markers(vec![
                m::write_txn_markers_request::WritableTxnMarker::default()
                    .with_producer_id(ProducerId(77))
                    .with_transaction_result(false)
                    .with_topics(vec![
                        m::write_txn_markers_request::WritableTxnMarkerTopic::default()
                            .with_name(tn("v"))
                            .with_partition_indexes(vec![0, 99]),
                    ]),
            ])),
        )),
        other => panic!("no representative request for {other:?}: add one"),
    }
    out
}

fn encode_kind(req: &RequestKind, v: i16) -> Result<Vec<u8>, String> {
    let mut buf = bytes::BytesMut::new();
    req.encode(&mut buf, v).map_err(|e| e.to_string())?;
    Ok(buf.to_vec())
}

#[tokio::test]
async fn every_advertised_version_answers() {
    // Joins complete at once instead of waiting for more members.
    let b = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]).await;
    let mut c = Conn::connect(b.addr).await;
    let md: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default()
                .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
                )
                .with_name(Some(tn("v")))]))
                .with_allow_auto_topic_creation(true),
        )
        .await;
    let topic_id = md.topics[0].topic_id;
    let records = batch(&[Rec::kv(b"k", b"v")], Compression::None, None);
    let mut failures = Vec::new();
    let mut checked = 0;
    for (api, range) in weir::handlers::APIS {
        for v in range.min..=range.max {
            for (label, req) in requests(*api, v, topic_id, &records) {
                let body = match encode_kind(&req, v) {
                    Ok(b) => b,
                    Err(e) => {
                        failures.push(format!(
                            "{api:?} v{v} {label}: test request does not encode: {e}"
                        ));
                        continue;
                    }
                };
                let mut header = bytes::BytesMut::new();
                RequestHeader::default()
                    .with_request_api_key(*api as i16)
                    .with_request_api_version(v)
                    .with_correlation_id(v as i32)
                    .with_client_id(Some(s("versions")))
                    .encode(&mut header, api.request_header_version(v))
                    .unwrap();
                header.extend_from_slice(&body);
                c.send_raw(&header).await;
                let Some(mut frame) = c.recv_frame().await else {
                    failures.push(format!("{api:?} v{v} {label}: connection closed"));
                    c = Conn::connect(b.addr).await;
                    continue;
                };
                let hv = if *api == ApiKey::ApiVersions {
                    0
                } else {
                    api.response_header_version(v)
                };
                let ok = ResponseHeader::decode(&mut frame, hv)
                    .is_ok_and(|h| h.correlation_id == v as i32)
                    && ResponseKind::decode(*api, &mut frame, v).is_ok();
                if !ok {
                    failures.push(format!("{api:?} v{v} {label}: response does not decode"));
                }
                checked += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} exchanges failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    b.stop().await;
}

/// README's API table lists exactly what the registry advertises.
#[test]
fn readme_api_table_matches_the_registry() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for (api, range) in weir::handlers::APIS {
        let want = if range.min == range.max {
            format!("{}", range.min)
        } else {
            format!("{}–{}", range.min, range.max)
        };
        let row = format!("| {api:?} | {} | {want} |", *api as i16);
        assert!(readme.contains(&row), "README lacks the row {row:?}");
    }
    let rows = readme
        .lines()
        .filter(|l| {
            l.starts_with("| ")
                && l.split('|')
                    .nth(2)
                    .is_some_and(|k| k.trim().parse::<i16>().is_ok())
        })
        .count();
    assert_eq!(
        rows,
        weir::handlers::APIS.len(),
        "README lists APIs that are not served"
    );
}
