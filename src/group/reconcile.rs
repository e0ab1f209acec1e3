//! Reconciliation of one member towards its target assignment (Kafka's
//! CurrentAssignmentBuilder). The rule that keeps a partition from being owned by two
//! members: a member is only given a partition nobody holds (neither assigned nor
//! pending revocation), and a member asked to revoke keeps holding the revoked
//! partitions until its heartbeat no longer lists them as owned.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::consumer::{ConsumerMember, MemberState};
use super::consumer_types::Assignment;

/// The member's next state given the group's target assignment `target` (of epoch
/// `target_epoch`), the epoch of the member holding each held partition, and the
/// partitions the member says it owns (None: not sent, i.e. unchanged, so assume it
/// still owns everything it was given).
pub(crate) fn reconcile(
    member: &ConsumerMember,
    target_epoch: i32,
    target: &Assignment,
    partition_epochs: &BTreeMap<(Uuid, i32), i32>,
    owned: Option<&Assignment>,
) -> ConsumerMember {
    let step = Step {
        member,
        target_epoch,
        target,
        partition_epochs,
        owned,
    };
    match member.state {
        MemberState::Stable if member.member_epoch == target_epoch => member.clone(),
        MemberState::Stable => step.next(member.member_epoch),
        MemberState::UnrevokedPartitions => {
            if owns_any(owned, &member.pending_revocation) {
                member.clone()
            } else {
                // Revocation confirmed: the member moves one epoch on, then towards
                // the latest target.
                step.next(member.member_epoch + 1)
            }
        }
        MemberState::UnreleasedPartitions => step.next(member.member_epoch),
        // Only reachable for a member that already gave up all its partitions (the
        // heartbeat fences the others first).
        MemberState::Unknown => step.next(target_epoch),
    }
}

/// Whether the member still owns any of `partitions`; not knowing means yes.
pub(crate) fn owns_any(owned: Option<&Assignment>, partitions: &Assignment) -> bool {
    let Some(owned) = owned else {
        return true;
    };
    owned.iter().any(|(topic, ps)| {
        partitions
            .get(topic)
            .is_some_and(|pending| !pending.is_disjoint(ps))
    })
}

struct Step<'a> {
    member: &'a ConsumerMember,
    target_epoch: i32,
    target: &'a Assignment,
    partition_epochs: &'a BTreeMap<(Uuid, i32), i32>,
    owned: Option<&'a Assignment>,
}

impl Step<'_> {
    fn next(&self, epoch: i32) -> ConsumerMember {
        let mut kept = Assignment::new();
        let mut revoke = Assignment::new();
        let mut gain = Assignment::new();
        let mut unreleased = false;
        let empty = BTreeSet::new();
        let topics: BTreeSet<Uuid> = self
            .target
            .keys()
            .chain(self.member.assigned.keys())
            .copied()
            .collect();
        for topic in topics {
            let target = self.target.get(&topic).unwrap_or(&empty);
            let current = self.member.assigned.get(&topic).unwrap_or(&empty);
            let keep: BTreeSet<i32> = current.intersection(target).copied().collect();
            let lose: BTreeSet<i32> = current.difference(&keep).copied().collect();
            let mut take: BTreeSet<i32> = target.difference(&keep).copied().collect();
            let before = take.len();
            // A partition someone (even this member, pending revocation) still holds
            // cannot be given yet.
            take.retain(|p| !self.partition_epochs.contains_key(&(topic, *p)));
            unreleased |= take.len() != before;
            for (set, values) in [(&mut kept, keep), (&mut revoke, lose), (&mut gain, take)] {
                if !values.is_empty() {
                    set.insert(topic, values);
                }
            }
        }

        let mut next = self.member.clone();
        next.previous_member_epoch = self.member.member_epoch;
        if !revoke.is_empty() && owns_any(self.owned, &revoke) {
            // Revoke first; the member stays at its epoch until it confirms.
            next.member_epoch = epoch;
            next.state = MemberState::UnrevokedPartitions;
            next.assigned = kept;
            next.pending_revocation = revoke;
            return next;
        }
        for (topic, partitions) in gain {
            kept.entry(topic).or_default().extend(partitions);
        }
        next.member_epoch = self.target_epoch;
        next.state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
        next.assigned = kept;
        next.pending_revocation = Assignment::new();
        next
    }
}
