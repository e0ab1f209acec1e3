//! Which topics a `consumer` group member subscribes to: explicit names and a regex
//! (RE2 syntax, whole-name match, as Kafka), resolved against the topic metadata.

use std::collections::BTreeMap;

use regex::Regex;

use super::consumer::{ConsumerGroup, ConsumerMember};
use super::consumer_types::{TopicInfo, Topics};

/// The subscribed topics (by explicit name or by regex) that exist now.
pub(crate) fn subscription_metadata(
    group: &ConsumerGroup,
    topics: &Topics,
) -> BTreeMap<String, TopicInfo> {
    let matchers = Matchers::of(group);
    let mut seen = BTreeMap::new();
    for member in group.members.values() {
        for name in &member.subscribed_topic_names {
            if let Some(info) = topics.get(name) {
                seen.insert(name.clone(), *info);
            }
        }
        if member.subscribed_topic_regex.is_some() {
            for (name, info) in topics {
                if matchers.subscribes(member, name) {
                    seen.insert(name.clone(), *info);
                }
            }
        }
    }
    seen
}

/// The compiled regexes of a group's members (usually one or none), compiled once per
/// use rather than once per topic.
pub(crate) struct Matchers {
    regexes: BTreeMap<String, Option<Regex>>,
}

impl Matchers {
    pub(crate) fn of(group: &ConsumerGroup) -> Self {
        let regexes = group
            .members
            .values()
            .filter_map(|m| m.subscribed_topic_regex.clone())
            .map(|p| {
                let compiled = compile(&p);
                (p, compiled)
            })
            .collect();
        Matchers { regexes }
    }

    pub(crate) fn subscribes(&self, member: &ConsumerMember, topic: &str) -> bool {
        if member.subscribed_topic_names.iter().any(|n| n == topic) {
            return true;
        }
        member
            .subscribed_topic_regex
            .as_ref()
            .and_then(|p| self.regexes.get(p))
            .and_then(Option::as_ref)
            .is_some_and(|re| re.is_match(topic))
    }
}

/// Kafka matches the whole topic name (RE2/J `matches()`), hence the anchors. The
/// `regex` crate has RE2's syntax and linear-time guarantee.
pub(crate) fn compile(pattern: &str) -> Option<Regex> {
    Regex::new(&format!("^(?:{pattern})$")).ok()
}
