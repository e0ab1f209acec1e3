//! Automatic preferred-leader rebalancing (`auto.leader.rebalance.enable`).
//!
//! Every partition has a preferred leader, its first replica; assignments spread those
//! evenly, so leadership is balanced when every partition is led by its preferred
//! replica. A broker that stops loses its leaderships to the others and, once back, only
//! follows: without rebalancing the load stays piled on the brokers that never stopped.
//! As Kafka does, the active controller checks every
//! `leader.imbalance.check.interval.seconds`; a broker is imbalanced when more than
//! `leader.imbalance.per.broker.percentage` of the partitions that prefer it are led by
//! another broker, and then every such partition whose preferred replica is live and in
//! the ISR (and is not being reassigned) gets a preferred election, one metadata command
//! each, exactly what `ElectLeaders` does.

use std::sync::Weak;
use std::time::Duration;

use openraft::ServerState;

use super::controller::Controller;
use super::image::MetadataImage;
use super::state::{CommandResult, MetadataCommand, MetadataError};

/// `leader.imbalance.check.interval.seconds` and `leader.imbalance.per.broker.percentage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebalanceConfig {
    pub interval: Duration,
    pub percentage: u32,
}

/// The partitions a rebalance elects their preferred leader for, in topic and partition
/// order.
pub fn imbalanced(img: &MetadataImage, percentage: u32) -> Vec<(String, i32)> {
    /// The partitions one broker is the preferred replica of.
    #[derive(Default)]
    struct Preferred {
        total: usize,
        led_by_others: usize,
        electable: Vec<(String, i32)>,
    }
    let mut by_broker: std::collections::BTreeMap<i32, Preferred> = Default::default();
    for (name, t) in &img.topics {
        for p in &t.partitions {
            let Some(&preferred) = p.replicas.first() else {
                continue;
            };
            let entry = by_broker.entry(preferred).or_default();
            entry.total += 1;
            if p.leader == preferred {
                continue;
            }
            entry.led_by_others += 1;
            let electable = img.brokers.contains_key(&preferred)
                && p.isr.contains(&preferred)
                && p.adding_replicas.is_empty()
                && p.removing_replicas.is_empty();
            if electable {
                entry.electable.push((name.clone(), p.partition));
            }
        }
    }
    let mut out: Vec<(String, i32)> = by_broker
        .into_values()
        .filter(|b| b.led_by_others * 100 > b.total * percentage as usize)
        .flat_map(|b| b.electable)
        .collect();
    out.sort();
    out
}

/// Partitions not led by their preferred replica (Kafka's PreferredReplicaImbalanceCount).
pub fn imbalance_count(img: &MetadataImage) -> usize {
    img.topics
        .values()
        .flat_map(|t| &t.partitions)
        .filter(|p| p.replicas.first().is_some_and(|&r| r != p.leader))
        .count()
}

/// Runs on every quorum node and acts only while it leads.
pub(super) async fn rebalance_loop(weak: Weak<Controller>, cfg: RebalanceConfig) {
    loop {
        tokio::time::sleep(cfg.interval).await;
        let Some(ctl) = weak.upgrade() else {
            return;
        };
        let (state, term) = {
            let m = ctl.raft.metrics();
            let m = m.borrow();
            (m.state, m.current_term)
        };
        if state != ServerState::Leader {
            continue;
        }
        let wanted = imbalanced(&ctl.image(), cfg.percentage);
        if wanted.is_empty() {
            continue;
        }
        let mut moved = 0;
        for (topic, partition) in wanted {
            let cmd = MetadataCommand::ElectLeader {
                topic: topic.clone(),
                partition,
                unclean: false,
            };
            match ctl.propose_as_leader(term, cmd).await {
                Ok(CommandResult::Ok) => moved += 1,
                // The image changed since it was read (the replica left the ISR, another
                // election won): the next round looks again.
                Ok(CommandResult::Err(
                    MetadataError::ElectionNotNeeded
                    | MetadataError::PreferredLeaderNotAvailable
                    | MetadataError::UnknownTopic(_)
                    | MetadataError::InvalidPartitions(_),
                )) => {}
                Ok(other) => {
                    tracing::warn!(%topic, partition, result = ?other, "preferred election refused")
                }
                Err(e) => {
                    tracing::debug!(error = %e, "leader rebalance stopped: no longer leading");
                    break;
                }
            }
        }
        if moved > 0 {
            metrics::counter!(crate::metrics::LEADER_REBALANCE_ELECTIONS_TOTAL).increment(moved);
            tracing::info!(
                partitions = moved,
                "leadership moved back to preferred replicas (auto.leader.rebalance.enable)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::image::{BrokerMeta, PartitionMeta, TopicMeta};

    fn image(parts: &[(Vec<i32>, i32)], live: &[i32]) -> MetadataImage {
        let mut img = MetadataImage::default();
        let partitions = parts
            .iter()
            .enumerate()
            .map(|(i, (replicas, leader))| {
                let mut p = PartitionMeta::new(i as i32, replicas.clone());
                p.leader = *leader;
                p
            })
            .collect();
        img.topics.insert(
            "t".into(),
            TopicMeta {
                name: "t".into(),
                id: uuid::Uuid::nil(),
                partitions,
                configs: Default::default(),
                internal: false,
            },
        );
        for &id in live {
            let broker = BrokerMeta {
                id,
                host: "127.0.0.1".into(),
                port: 9092,
                rack: None,
                listeners: vec![],
            };
            img.brokers.insert(id, broker);
        }
        img
    }

    #[test]
    fn a_broker_over_the_percentage_gets_its_partitions_back() {
        // Broker 1 prefers partitions 0 and 3 and leads neither (100%); broker 2 leads
        // all of its own; broker 3 prefers 2 and 5 and lost one (50%).
        let img = image(
            &[
                (vec![1, 2, 3], 2),
                (vec![2, 3, 1], 2),
                (vec![3, 1, 2], 3),
                (vec![1, 3, 2], 3),
                (vec![2, 1, 3], 2),
                (vec![3, 2, 1], 2),
            ],
            &[1, 2, 3],
        );
        let all = |v: &[i32]| v.iter().map(|&p| ("t".to_string(), p)).collect::<Vec<_>>();
        assert_eq!(imbalanced(&img, 10), all(&[0, 3, 5]));
        // 50% is not more than 50%: only broker 1's are moved.
        assert_eq!(imbalanced(&img, 50), all(&[0, 3]));
        assert_eq!(imbalanced(&img, 100), all(&[]));
        assert_eq!(imbalance_count(&img), 3);
    }

    #[test]
    fn only_a_live_in_sync_preferred_replica_outside_a_reassignment_is_elected() {
        let mut img = image(
            &[(vec![1, 2], 2), (vec![1, 2], 2), (vec![1, 2], 2)],
            &[1, 2],
        );
        let parts = &mut img.topics.get_mut("t").unwrap().partitions;
        parts[1].isr = vec![2];
        parts[2].adding_replicas = vec![1];
        assert_eq!(imbalanced(&img, 10), vec![("t".to_string(), 0)]);
        img.brokers.remove(&1);
        assert!(imbalanced(&img, 10).is_empty(), "broker 1 is fenced");
    }
}
