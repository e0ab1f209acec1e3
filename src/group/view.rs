//! A read-only summary of every group of a coordinator, for the metrics the broker
//! publishes (state, members, generation, committed offsets for lag).

use super::coordinator::GroupCoordinator;

/// What the metrics need to know about one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupMetricsView {
    pub group_id: String,
    pub state: &'static str,
    pub members: usize,
    pub generation: i32,
    /// ((topic, partition), committed offset).
    pub offsets: Vec<((String, i32), i64)>,
}

impl GroupCoordinator {
    pub fn metrics_view(&self) -> Vec<GroupMetricsView> {
        let consumer = self.consumer_groups.values().map(|g| GroupMetricsView {
            group_id: g.group_id.clone(),
            state: g.state().name(),
            members: g.members.len(),
            generation: g.group_epoch,
            offsets: g
                .offsets
                .iter()
                .map(|(k, v)| (k.clone(), v.offset))
                .collect(),
        });
        self.groups
            .values()
            .map(|g| GroupMetricsView {
                group_id: g.group_id.clone(),
                state: g.state.name(),
                members: g.members.len(),
                generation: g.generation_id,
                offsets: g
                    .offsets
                    .iter()
                    .map(|(k, v)| (k.clone(), v.offset))
                    .collect(),
            })
            .chain(consumer)
            .collect()
    }
}
