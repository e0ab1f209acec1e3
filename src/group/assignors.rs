//! The server-side assignors of `consumer` groups: `uniform` (Kafka's default: balanced
//! and sticky) and `range` (per topic, consecutive ranges, so co-partitioned topics
//! line up). Both are pure functions from members, subscriptions and partition counts
//! (plus the previous target, for stickiness) to a target assignment.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::consumer_types::Assignment;

/// The names clients may put in `server_assignor`.
pub const ASSIGNORS: [&str; 2] = ["uniform", "range"];

/// One member as an assignor sees it.
#[derive(Debug, Clone)]
pub(crate) struct MemberSpec {
    pub member_id: String,
    pub instance_id: Option<String>,
    /// Subscribed topics that exist, by id.
    pub topics: BTreeSet<Uuid>,
}

/// Computes the target assignment of every member (members without partitions get an
/// empty one). `partitions` holds the partition count of each subscribed topic.
pub(crate) fn assign(
    assignor: &str,
    members: &[MemberSpec],
    partitions: &BTreeMap<Uuid, i32>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    match assignor {
        "range" => range(members, partitions),
        _ => uniform(members, partitions, previous),
    }
}

/// Range: for each topic, its subscribers in a stable order (static members by
/// instance id first, as Kafka does, so a restarted static member keeps its place;
/// then the others by member id) each get a consecutive range; the first
/// `partitions % members` get one more.
fn range(members: &[MemberSpec], partitions: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut sorted: Vec<&MemberSpec> = members.iter().collect();
    sorted.sort_by(|a, b| match (&a.instance_id, &b.instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    });
    let mut result: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::new()))
        .collect();
    for (topic, count) in partitions {
        let subscribers: Vec<&&MemberSpec> =
            sorted.iter().filter(|m| m.topics.contains(topic)).collect();
        let n = i32::try_from(subscribers.len()).unwrap_or(i32::MAX);
        if n == 0 {
            continue;
        }
        let (quota, extra) = (count / n, count % n);
        let mut start = 0;
        for (i, member) in subscribers.iter().enumerate() {
            let i = i32::try_from(i).unwrap_or(i32::MAX);
            let end = start + quota + i32::from(i < extra);
            if end > start {
                if let Some(a) = result.get_mut(&member.member_id) {
                    a.insert(*topic, (start..end).collect());
                }
            }
            start = end;
        }
    }
    result
}

/// Uniform: every partition some member subscribes to goes to a subscriber, as evenly
/// as the subscriptions allow, moving as few partitions as possible from the previous
/// target. Three steps: members keep what they had (if still subscribed and existing);
/// free partitions go to the least loaded subscriber; then partitions move from a
/// member to a subscriber with at least two fewer until none can. Each move lowers the
/// sum of squared loads, so this ends; with identical subscriptions loads then differ
/// by at most one.
fn uniform(
    members: &[MemberSpec],
    partitions: &BTreeMap<Uuid, i32>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let subscribers = |topic: &Uuid| -> Vec<usize> {
        (0..members.len())
            .filter(|i| members[*i].topics.contains(topic))
            .collect()
    };
    let eligible: BTreeMap<Uuid, Vec<usize>> =
        partitions.keys().map(|t| (*t, subscribers(t))).collect();
    let mut owner: BTreeMap<(Uuid, i32), usize> = BTreeMap::new();
    let mut load = vec![0usize; members.len()];

    for (i, member) in members.iter().enumerate() {
        let Some(before) = previous.get(&member.member_id) else {
            continue;
        };
        for (topic, ps) in before {
            let Some(count) = partitions.get(topic) else {
                continue;
            };
            if !member.topics.contains(topic) {
                continue;
            }
            for p in ps.iter().filter(|p| **p < *count) {
                // Targets are disjoint; should two claim a partition, the first keeps it.
                if let std::collections::btree_map::Entry::Vacant(e) = owner.entry((*topic, *p)) {
                    e.insert(i);
                    load[i] += 1;
                }
            }
        }
    }

    for (topic, count) in partitions {
        let candidates = &eligible[topic];
        for p in 0..*count {
            if owner.contains_key(&(*topic, p)) {
                continue;
            }
            if let Some(&to) = candidates.iter().min_by_key(|i| (load[**i], **i)) {
                owner.insert((*topic, p), to);
                load[to] += 1;
            }
        }
    }

    loop {
        let mut moved = false;
        let keys: Vec<(Uuid, i32)> = owner.keys().copied().collect();
        for key in keys {
            let from = owner[&key];
            let to = eligible[&key.0]
                .iter()
                .copied()
                .filter(|i| load[*i] + 1 < load[from])
                .min_by_key(|i| (load[*i], *i));
            if let Some(to) = to {
                owner.insert(key, to);
                load[from] -= 1;
                load[to] += 1;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }

    let mut result: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::new()))
        .collect();
    for ((topic, p), i) in owner {
        if let Some(a) = result.get_mut(&members[i].member_id) {
            a.entry(topic).or_default().insert(p);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, topics: &[Uuid]) -> MemberSpec {
        MemberSpec {
            member_id: id.to_string(),
            instance_id: None,
            topics: topics.iter().copied().collect(),
        }
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(BTreeSet::len).sum()
    }

    #[test]
    fn uniform_is_balanced_and_sticky() {
        let (t1, t2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let partitions = BTreeMap::from([(t1, 5), (t2, 7)]);
        let two = [spec("a", &[t1, t2]), spec("b", &[t1, t2])];
        let first = assign("uniform", &two, &partitions, &BTreeMap::new());
        assert_eq!(count(&first["a"]), 6);
        assert_eq!(count(&first["b"]), 6);
        let three = [two[0].clone(), two[1].clone(), spec("c", &[t1, t2])];
        let second = assign("uniform", &three, &partitions, &first);
        for id in ["a", "b", "c"] {
            assert_eq!(count(&second[id]), 4, "{second:?}");
        }
        // Stickiness: a and b only lost partitions, they gained none.
        for id in ["a", "b"] {
            for (t, ps) in &second[id] {
                assert!(ps.is_subset(&first[id][t]), "{id} moved: {second:?}");
            }
        }
    }

    #[test]
    fn uniform_respects_heterogeneous_subscriptions() {
        let (t1, t2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let partitions = BTreeMap::from([(t1, 4), (t2, 2)]);
        let members = [spec("a", &[t1]), spec("b", &[t1, t2])];
        let result = assign("uniform", &members, &partitions, &BTreeMap::new());
        assert!(!result["a"].contains_key(&t2));
        assert_eq!(count(&result["a"]) + count(&result["b"]), 6);
        assert_eq!(count(&result["a"]), 3);
    }

    #[test]
    fn range_gives_consecutive_ranges_per_topic() {
        let (t1, t2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let partitions = BTreeMap::from([(t1, 5), (t2, 5)]);
        let members = [spec("b", &[t1, t2]), spec("a", &[t1, t2])];
        let result = assign("range", &members, &partitions, &BTreeMap::new());
        assert_eq!(result["a"][&t1], BTreeSet::from([0, 1, 2]));
        assert_eq!(result["b"][&t1], BTreeSet::from([3, 4]));
        assert_eq!(result["a"][&t2], result["a"][&t1]);
    }
}
