//! Partition leadership and replica moves, as the metadata state machine applies them
//! (see [`super::state`]): Kafka's election rules for ElectLeaders, leadership moved away
//! from a fenced broker and back to offline partitions when one returns, and the steps
//! of a reassignment (KIP-455). Pure functions over the image; no I/O.

use std::collections::BTreeMap;

use super::image::{BrokerMeta, MetadataImage, PartitionMeta};
use super::state::MetadataError;

/// Kafka's election rules for ElectLeaders (see [`super::state::MetadataCommand::ElectLeader`]).
pub(super) fn elect_leader(
    p: &mut PartitionMeta,
    live: &BTreeMap<i32, BrokerMeta>,
    unclean: bool,
) -> Result<(), MetadataError> {
    let next = if unclean {
        if p.leader >= 0 {
            return Err(MetadataError::ElectionNotNeeded);
        }
        let clean = p
            .replicas
            .iter()
            .copied()
            .find(|r| p.isr.contains(r) && live.contains_key(r));
        match clean {
            Some(r) => r,
            None => {
                let r = p
                    .replicas
                    .iter()
                    .copied()
                    .find(|r| live.contains_key(r))
                    .ok_or(MetadataError::EligibleLeadersNotAvailable)?;
                // The ISR is what the new leader has: nothing else is known to be in sync.
                p.isr = vec![r];
                r
            }
        }
    } else {
        let preferred = p.replicas.first().copied().unwrap_or(-1);
        if p.leader == preferred {
            return Err(MetadataError::ElectionNotNeeded);
        }
        if !(p.isr.contains(&preferred) && live.contains_key(&preferred)) {
            return Err(MetadataError::PreferredLeaderNotAvailable);
        }
        preferred
    };
    p.leader = next;
    p.leader_epoch = p.leader_epoch.saturating_add(1);
    Ok(())
}

/// The replicas a partition had before its ongoing reassignment (all of them if none).
fn original_replicas(p: &PartitionMeta) -> Vec<i32> {
    p.replicas
        .iter()
        .copied()
        .filter(|r| !p.adding_replicas.contains(r))
        .collect()
}

pub(super) fn start_reassignment(
    p: &mut PartitionMeta,
    target: &[i32],
    registered: &[i32],
    live: &BTreeMap<i32, BrokerMeta>,
) -> Result<(), MetadataError> {
    if target.is_empty() {
        return Err(MetadataError::InvalidReplicaAssignment(
            "The replica list must not be empty.".into(),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = target.iter().find(|r| !seen.insert(**r)) {
        return Err(MetadataError::InvalidReplicaAssignment(format!(
            "The replica list contains broker {dup} more than once."
        )));
    }
    if let Some(unknown) = target.iter().find(|r| !registered.contains(r)) {
        return Err(MetadataError::InvalidReplicaAssignment(format!(
            "The manual partition assignment includes broker {unknown}, but no such broker is registered."
        )));
    }
    let original = original_replicas(p);
    let mut replicas = target.to_vec();
    replicas.extend(original.iter().filter(|r| !target.contains(r)));
    p.adding_replicas = target
        .iter()
        .copied()
        .filter(|r| !original.contains(r))
        .collect();
    p.removing_replicas = original
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect();
    // Replicas added by a replaced reassignment leave the ISR with it.
    p.isr.retain(|r| replicas.contains(r));
    p.replicas = replicas;
    complete_reassignment(p, live);
    Ok(())
}

pub(super) fn cancel_reassignment(
    p: &mut PartitionMeta,
    live: &BTreeMap<i32, BrokerMeta>,
) -> Result<(), MetadataError> {
    if !p.is_reassigning() {
        return Err(MetadataError::NoReassignmentInProgress);
    }
    // As in Kafka's revert: the replicas minus the adding ones, at once.
    let original = original_replicas(p);
    if !p.isr.iter().any(|r| original.contains(r)) {
        return Err(MetadataError::InvalidReplicaAssignment(
            "cannot cancel: no original replica is in sync any more".into(),
        ));
    }
    finish_reassignment(p, original, live);
    Ok(())
}

/// Complete an ongoing reassignment once every target replica is in the ISR.
pub(super) fn complete_reassignment(p: &mut PartitionMeta, live: &BTreeMap<i32, BrokerMeta>) {
    if !p.is_reassigning() {
        return;
    }
    let target = p.target_replicas();
    if target.iter().all(|r| p.isr.contains(r)) {
        finish_reassignment(p, target, live);
    }
}

/// Make `replicas` the partition's replica set: the ISR keeps only its members, and a
/// leader outside it hands over to the first live ISR member (epoch + 1; -1 if none).
fn finish_reassignment(
    p: &mut PartitionMeta,
    replicas: Vec<i32>,
    live: &BTreeMap<i32, BrokerMeta>,
) {
    p.isr.retain(|r| replicas.contains(r));
    if !replicas.contains(&p.leader) {
        p.leader = replicas
            .iter()
            .copied()
            .find(|r| p.isr.contains(r) && live.contains_key(r))
            .unwrap_or(-1);
        p.leader_epoch = p.leader_epoch.saturating_add(1);
    }
    p.replicas = replicas;
    p.adding_replicas.clear();
    p.removing_replicas.clear();
}

/// Drop `id` from every ISR it shares with others and give each partition it led to the
/// first live ISR member in replica order, bumping the epoch; offline (-1) if none.
pub(super) fn move_leaderships_away(img: &mut MetadataImage, id: i32) {
    let live = &img.brokers;
    for t in img.topics.values_mut() {
        for p in &mut t.partitions {
            if p.isr.len() > 1 {
                p.isr.retain(|r| *r != id);
            }
            if p.leader != id {
                continue;
            }
            let next = p
                .replicas
                .iter()
                .copied()
                .find(|r| *r != id && p.isr.contains(r) && live.contains_key(r))
                .unwrap_or(-1);
            p.leader = next;
            p.leader_epoch = p.leader_epoch.saturating_add(1);
        }
    }
}

/// Partitions left without a leader whose ISR holds `id` (it was their last in-sync
/// replica) get it back as leader, with a new epoch.
pub(super) fn elect_offline_partitions(img: &mut MetadataImage, id: i32) {
    for t in img.topics.values_mut() {
        for p in &mut t.partitions {
            if p.leader < 0 && p.isr.contains(&id) {
                p.leader = id;
                p.leader_epoch = p.leader_epoch.saturating_add(1);
            }
        }
    }
}
