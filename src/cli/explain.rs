//! One-line explanations of the Kafka errors an operator meets most, in the words of
//! Kafka's own `Errors` descriptions, for the commands' error messages.

/// Kafka's description of `code`, where it is one an operator is likely to see.
pub fn explain(code: i16) -> Option<&'static str> {
    Some(match code {
        -1 => "The server experienced an unexpected error when processing the request.",
        1 => "The requested offset is not within the range of offsets maintained by the server.",
        2 => "This message has failed its CRC checksum, exceeds the valid size, has a null key for a compacted topic, or is otherwise corrupt.",
        3 => "This server does not host this topic-partition.",
        5 => "There is no leader for this topic-partition as we are in the middle of a leadership election.",
        6 => "This broker is not the leader (or a replica) of this partition.",
        7 => "The request timed out.",
        10 => "The request included a message larger than the max message size the server will accept.",
        15 => "The coordinator is not available.",
        16 => "This is not the correct coordinator.",
        17 => "The request attempted to perform an operation on an invalid topic.",
        19 => "Messages are rejected since there are fewer in-sync replicas than required.",
        24 => "The configured groupId is invalid.",
        25 => "The coordinator is not aware of this member.",
        29 => "Topic authorization failed.",
        30 => "Group authorization failed.",
        31 => "Cluster authorization failed.",
        35 => "The version of API is not supported.",
        36 => "Topic with this name already exists.",
        37 => "Number of partitions is below 1, or not above the current count.",
        38 => "Replication factor is below 1 or larger than the number of available brokers.",
        39 => "Replica assignment is invalid.",
        40 => "Configuration is invalid.",
        41 => "This is not the correct controller for this cluster.",
        42 => "The request is malformed or was sent to an incompatible broker; see the broker log.",
        44 => "Request parameters do not satisfy the configured policy.",
        56 => "Disk error when trying to access log file on the disk.",
        68 => "The group is not empty.",
        69 => "The group id does not exist.",
        73 => "Topic deletion is disabled.",
        80 => "The preferred leader was not available.",
        83 => "Eligible topic partition leaders are not available.",
        84 => "Leader election not needed for topic partition.",
        85 => "No partition reassignment is in progress.",
        87 => "This record has failed the validation on broker and hence will be rejected.",
        _ => return None,
    })
}
