//! Topic administration shared by CreateTopics, Metadata auto-creation, CreatePartitions
//! and DeleteTopics: name rules, replica assignment and the metadata commands.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use crate::admin::Admin;
use crate::cluster::{CommandResult, MetadataCommand, MetadataImage, PartitionMeta, TopicMeta};
use crate::config::check_topic_value;
use crate::errors::KafkaError;

/// Kafka's cap on the partitions one request may create (MAX_PARTITIONS_PER_BATCH).
pub const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

/// Kafka's limit: a partition directory name must fit in 255 bytes.
pub const MAX_NAME_LEN: usize = 249;

/// Kafka's topic name rules.
pub fn validate_name(name: &str) -> Result<(), KafkaError> {
    let bad = |why: &str| {
        Err(KafkaError::with_message(
            ResponseError::InvalidTopicException,
            format!("topic name {name:?} is illegal: {why}"),
        ))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name == "." || name == ".." {
        return bad("it cannot be '.' or '..'");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("it is longer than 249 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return bad("it contains characters other than ASCII alphanumerics, '.', '_' and '-'");
    }
    Ok(())
}

/// Replicas for `count` new partitions starting at `first`, over the live brokers.
///
/// Without `broker.rack` anywhere: round-robin, partition `p` starting at the `p`-th
/// broker, so leaders spread evenly. With racks: Kafka's rack-aware placement
/// (`AdminUtils.assignReplicasToBrokersRackAware`), deterministic (start index and
/// replica shift 0): brokers are listed alternating between racks, partition `p` is led
/// by the `p`-th broker of that list, and each further replica is the next broker (with a
/// shift that grows every full round) that adds a rack not yet used, or when every rack
/// has one, a broker not yet used. Brokers without a rack count as one rack of their own,
/// as KRaft's placer treats them.
pub fn assign(
    image: &MetadataImage,
    first: i32,
    count: i32,
    rf: i16,
) -> Result<Vec<PartitionMeta>, KafkaError> {
    let brokers: Vec<i32> = image.brokers.keys().copied().collect();
    if rf < 1 || rf as usize > brokers.len() {
        return Err(KafkaError::with_message(
            ResponseError::InvalidReplicationFactor,
            format!(
                "replication factor {rf} is larger than the {} available brokers",
                brokers.len()
            ),
        ));
    }
    let racks: BTreeMap<i32, String> = image
        .brokers
        .values()
        .map(|b| (b.id, b.rack.clone().unwrap_or_default()))
        .collect();
    let rack_aware = image.brokers.values().any(|b| b.rack.is_some());
    Ok((first..first + count)
        .map(|p| {
            let replicas = if rack_aware {
                rack_aware_replicas(&racks, p, rf as usize)
            } else {
                (0..rf as usize)
                    .map(|r| brokers[(p as usize + r) % brokers.len()])
                    .collect()
            };
            PartitionMeta::new(p, replicas)
        })
        .collect())
}

/// Kafka's rack-alternated broker list: racks in name order, taking the next broker of
/// each rack in turn, e.g. a:[1,2] b:[3] c:[4,5] gives 1,3,4,2,5.
fn rack_alternated(racks: &BTreeMap<i32, String>) -> Vec<i32> {
    let mut by_rack: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (id, rack) in racks {
        by_rack.entry(rack.as_str()).or_default().push(*id);
    }
    let longest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| by_rack.values().filter_map(move |ids| ids.get(i).copied()))
        .collect()
}

/// One partition's replicas under Kafka's rack-aware rule (see [`assign`]).
fn rack_aware_replicas(racks: &BTreeMap<i32, String>, partition: i32, rf: usize) -> Vec<i32> {
    let list = rack_alternated(racks);
    let n = list.len();
    let num_racks = racks
        .values()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let p = partition.max(0) as usize;
    // Kafka bumps the shift each time the partitions wrap around the broker list, so
    // that followers do not always sit next to the same leader.
    let shift = p / n;
    let first_index = p % n;
    let leader = list[first_index];
    let mut replicas = vec![leader];
    let mut used_racks = vec![racks[&leader].as_str()];
    let mut k = 0;
    while replicas.len() < rf {
        let index = (first_index + 1 + (shift * num_racks + k) % (n - 1)) % n;
        k += 1;
        let b = list[index];
        let rack = racks[&b].as_str();
        let new_rack = !used_racks.contains(&rack) || used_racks.len() == num_racks;
        let new_broker = !replicas.contains(&b) || replicas.len() == n;
        if new_rack && new_broker {
            replicas.push(b);
            if !used_racks.contains(&rack) {
                used_racks.push(rack);
            }
        }
    }
    replicas
}

/// Partitions from an explicit assignment (CreateTopics / CreatePartitions).
pub fn from_assignment(
    image: &MetadataImage,
    first: i32,
    assignment: &[Vec<i32>],
) -> Result<Vec<PartitionMeta>, KafkaError> {
    let mut out = Vec::new();
    for (i, replicas) in assignment.iter().enumerate() {
        if replicas.is_empty() {
            return Err(KafkaError::with_message(
                ResponseError::InvalidReplicaAssignment,
                "empty replica list",
            ));
        }
        let mut seen = replicas.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != replicas.len() {
            return Err(KafkaError::with_message(
                ResponseError::InvalidReplicaAssignment,
                "duplicate broker in replica list",
            ));
        }
        if let Some(b) = replicas.iter().find(|b| !image.brokers.contains_key(b)) {
            return Err(KafkaError::with_message(
                ResponseError::InvalidReplicaAssignment,
                format!("unknown broker {b}"),
            ));
        }
        out.push(PartitionMeta::new(first + i as i32, replicas.clone()));
    }
    Ok(out)
}

/// Validate topic config overrides.
pub fn validate_configs(configs: &BTreeMap<String, String>) -> Result<(), KafkaError> {
    for (k, v) in configs {
        check_topic_value(k, v).map_err(|e| KafkaError::from(&e))?;
    }
    Ok(())
}

/// Everything needed to create one topic.
pub struct NewTopic {
    pub name: String,
    pub partitions: Vec<PartitionMeta>,
    pub configs: BTreeMap<String, String>,
}

/// Build (and validate) a topic from a request's numbers; -1 means the broker default.
pub fn plan(
    admin: Admin<'_>,
    image: &MetadataImage,
    name: &str,
    num_partitions: i32,
    replication_factor: i16,
    assignment: &[Vec<i32>],
    configs: BTreeMap<String, String>,
) -> Result<NewTopic, KafkaError> {
    validate_name(name)?;
    if image.topics.contains_key(name) {
        return Err(KafkaError::with_message(
            ResponseError::TopicAlreadyExists,
            format!("topic '{name}' already exists"),
        ));
    }
    validate_configs(&configs)?;
    let partitions = if !assignment.is_empty() {
        if num_partitions != -1 || replication_factor != -1 {
            return Err(KafkaError::with_message(
                ResponseError::InvalidRequest,
                "both an assignment and numPartitions/replicationFactor were given",
            ));
        }
        from_assignment(image, 0, assignment)?
    } else {
        let n = if num_partitions == -1 {
            crate::admin::broker_configs::effective(admin.config, image, admin.node_id)
                .num_partitions
        } else {
            num_partitions
        };
        if n < 1 {
            return Err(KafkaError::with_message(
                ResponseError::InvalidPartitions,
                "number of partitions must be at least 1",
            ));
        }
        let rf = if replication_factor == -1 {
            admin.config.default_replication_factor
        } else {
            replication_factor
        };
        assign(image, 0, n, rf)?
    };
    Ok(NewTopic {
        name: name.to_string(),
        partitions,
        configs,
    })
}

/// Commit a planned topic; returns its metadata once applied.
pub async fn create(admin: Admin<'_>, topic: NewTopic) -> Result<TopicMeta, KafkaError> {
    let id = Uuid::new_v4();
    let cmd = MetadataCommand::CreateTopic {
        name: topic.name.clone(),
        id,
        partitions: topic.partitions,
        configs: topic.configs,
        internal: topic.name.starts_with("__"),
    };
    match admin
        .controller
        .propose(cmd)
        .await
        .map_err(|e| KafkaError::from(&e))?
    {
        CommandResult::Err(e) => Err(KafkaError::from(&e)),
        _ => {
            admin.replicas.reconcile_latest().await;
            let image = admin.controller.image();
            image.topic(&topic.name).cloned().ok_or_else(|| {
                KafkaError::with_message(
                    ResponseError::UnknownServerError,
                    "created topic is missing from metadata",
                )
            })
        }
    }
}

/// Auto-create a topic with the broker defaults (Metadata requests). A concurrent
/// creation of the same topic counts as success.
pub async fn auto_create(admin: Admin<'_>, name: &str) -> Result<TopicMeta, KafkaError> {
    let image = admin.controller.image();
    if let Some(t) = image.topic(name) {
        return Ok(t.clone());
    }
    let plan = plan(admin, &image, name, -1, -1, &[], BTreeMap::new())?;
    match create(admin, plan).await {
        Err(e) if e.code == ResponseError::TopicAlreadyExists.code() => {
            admin.controller.image().topic(name).cloned().ok_or(e)
        }
        other => other,
    }
}

/// How a partition is described to clients (Metadata, DescribeTopicPartitions): its
/// leader, error code and offline replicas. A partition this broker leads but has no
/// log for (in `unavailable`) is shown without a leader, with this broker offline, so
/// that clients wait and retry instead of sending requests that can only fail.
pub struct PartitionView {
    pub leader: i32,
    pub error_code: i16,
    pub offline: Vec<i32>,
}

pub fn partition_view(
    image: &MetadataImage,
    p: &PartitionMeta,
    topic: &str,
    node_id: i32,
    unavailable: &std::collections::HashSet<(String, i32)>,
) -> PartitionView {
    let unservable = p.replicas.contains(&node_id)
        && !unavailable.is_empty()
        && unavailable.contains(&(topic.to_string(), p.partition));
    let offline = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !image.brokers.contains_key(r) || (unservable && *r == node_id))
        .collect();
    let leader = if unservable && p.leader == node_id {
        -1
    } else {
        p.leader
    };
    PartitionView {
        leader,
        error_code: if leader < 0 {
            ResponseError::LeaderNotAvailable.code()
        } else {
            0
        },
        offline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(brokers: &[(i32, Option<&str>)]) -> MetadataImage {
        let mut img = MetadataImage::default();
        for (id, rack) in brokers {
            img.brokers.insert(
                *id,
                crate::cluster::BrokerMeta {
                    id: *id,
                    host: "h".into(),
                    port: 9092,
                    rack: rack.map(str::to_string),
                    listeners: Vec::new(),
                },
            );
        }
        img
    }

    fn replicas(img: &MetadataImage, first: i32, count: i32, rf: i16) -> Vec<Vec<i32>> {
        assign(img, first, count, rf)
            .expect("assign")
            .into_iter()
            .map(|p| {
                assert_eq!((p.leader, &p.isr), (p.replicas[0], &p.replicas));
                p.replicas
            })
            .collect()
    }

    #[test]
    fn without_racks_assignment_is_round_robin() {
        let img = image(&[(1, None), (2, None), (3, None)]);
        assert_eq!(
            replicas(&img, 0, 4, 2),
            vec![vec![1, 2], vec![2, 3], vec![3, 1], vec![1, 2]]
        );
        assert_eq!(replicas(&img, 2, 1, 3), vec![vec![3, 1, 2]]);
        let e = assign(&img, 0, 1, 4).unwrap_err();
        assert_eq!(e.code, ResponseError::InvalidReplicationFactor.code());
    }

    #[test]
    fn rack_alternated_list_takes_one_broker_per_rack_in_turn() {
        let racks: BTreeMap<i32, String> = [(1, "a"), (2, "a"), (3, "b"), (4, "c"), (5, "c")]
            .into_iter()
            .map(|(id, r)| (id, r.to_string()))
            .collect();
        assert_eq!(rack_alternated(&racks), vec![1, 3, 4, 2, 5]);
    }

    #[test]
    fn racks_spread_every_partition_and_its_leaders() {
        // Six brokers, three racks, unevenly numbered so that id order is not rack order.
        let img = image(&[
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("b")),
            (4, Some("b")),
            (5, Some("c")),
            (6, Some("c")),
        ]);
        let rack = |b: i32| img.brokers[&b].rack.clone().expect("rack");
        let parts = replicas(&img, 0, 12, 3);
        let mut leaders = BTreeMap::new();
        for r in &parts {
            let mut racks: Vec<String> = r.iter().map(|b| rack(*b)).collect();
            racks.sort();
            racks.dedup();
            assert_eq!(racks.len(), 3, "replicas {r:?} share a rack");
            *leaders.entry(r[0]).or_insert(0) += 1;
        }
        assert_eq!(leaders.len(), 6);
        assert!(leaders.values().all(|n| *n == 2), "{leaders:?}");
        // Two racks, RF 3: both racks are used, no broker twice.
        let img = image(&[(1, Some("a")), (2, Some("a")), (3, Some("b"))]);
        for r in replicas(&img, 0, 6, 3) {
            let mut sorted = r.clone();
            sorted.sort();
            assert_eq!(sorted, vec![1, 2, 3]);
            assert_ne!(rack(r[0]), rack(r[1]), "{r:?}");
        }
        // A broker without a rack counts as a rack of its own.
        let img = image(&[(1, Some("a")), (2, Some("a")), (3, None)]);
        for r in replicas(&img, 0, 3, 2) {
            assert!(r.contains(&3), "{r:?}");
        }
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a b", "ä", "a/b", &"x".repeat(250)] {
            let e = validate_name(bad).unwrap_err();
            assert_eq!(
                e.code,
                ResponseError::InvalidTopicException.code(),
                "{bad:?}"
            );
        }
    }
}
