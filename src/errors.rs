//! The mapping of internal error types to Kafka error codes.
//!
//! Each subsystem has its own error type (`LogError`, `MetadataError`, `ClusterError`,
//! `QuorumRefusal`, `ConfigError`); the `From` impls here turn each into the code and
//! message a Kafka client expects, so that mapping is reviewed in one place. Protocol
//! rules that are Kafka errors by definition (a group coordinator's ILLEGAL_GENERATION,
//! a fetch's OFFSET_OUT_OF_RANGE decided by the replica manager, a topic name's
//! INVALID_TOPIC_EXCEPTION) are chosen where the rule is checked, as Kafka's own
//! coordinators and managers do, and travel as [`KafkaError`].

use kafka_protocol::error::ResponseError;

use crate::cluster::{ClusterError, MetadataError, QuorumRefusal};
use crate::log::LogError;

/// A Kafka error: code plus an optional message for responses that carry one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaError {
    pub code: i16,
    pub message: Option<String>,
    /// Records of a produced batch at fault, by index in the batch (Produce v8+).
    pub record_errors: Vec<(i32, String)>,
}

impl KafkaError {
    pub fn new(e: ResponseError) -> KafkaError {
        KafkaError {
            code: e.code(),
            message: None,
            record_errors: Vec::new(),
        }
    }
    pub fn with_message(e: ResponseError, msg: impl Into<String>) -> KafkaError {
        KafkaError {
            code: e.code(),
            message: Some(msg.into()),
            record_errors: Vec::new(),
        }
    }
}

impl std::fmt::Display for KafkaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = ResponseError::try_from_code(self.code)
            .map_or_else(|| format!("error code {}", self.code), |e| format!("{e:?}"));
        match &self.message {
            Some(m) => write!(f, "{name}: {m}"),
            None => f.write_str(&name),
        }
    }
}

impl From<&LogError> for KafkaError {
    fn from(e: &LogError) -> KafkaError {
        use ResponseError as R;
        let code = match e {
            LogError::Corrupt(_) => R::CorruptMessage,
            LogError::TooLarge { .. } => R::MessageTooLarge,
            LogError::InvalidRecord(_) => R::InvalidRecord,
            LogError::InvalidTimestamp(_) => R::InvalidTimestamp,
            LogError::InvalidRecords {
                timestamp: true, ..
            } => R::InvalidTimestamp,
            LogError::InvalidRecords { .. } => R::InvalidRecord,
            LogError::OutOfOrderSequence(_) => R::OutOfOrderSequenceNumber,
            LogError::InvalidProducerEpoch(_) => R::InvalidProducerEpoch,
            LogError::CoordinatorFenced(_) => R::TransactionCoordinatorFenced,
            LogError::OffsetOutOfRange { .. } => R::OffsetOutOfRange,
            LogError::Io(_) => R::KafkaStorageError,
            LogError::Closed => R::NotLeaderOrFollower,
            LogError::LogDirNotFound(_) => R::LogDirNotFound,
        };
        let mut err = KafkaError::with_message(code, e.to_string());
        if let LogError::InvalidRecords { errors, .. } = e {
            err.record_errors = errors.clone();
        }
        err
    }
}

impl From<&MetadataError> for KafkaError {
    fn from(e: &MetadataError) -> KafkaError {
        use ResponseError as R;
        let code = match e {
            MetadataError::TopicExists(_) => R::TopicAlreadyExists,
            MetadataError::UnknownTopic(_) => R::UnknownTopicOrPartition,
            MetadataError::UnknownTopicId(_) => R::UnknownTopicId,
            MetadataError::InvalidPartitions(_) => R::InvalidPartitions,
            MetadataError::AlreadyInitialised(_) | MetadataError::InvalidRequest(_) => {
                R::InvalidRequest
            }
            MetadataError::FencedLeaderEpoch { .. } => R::FencedLeaderEpoch,
            MetadataError::ElectionNotNeeded => R::ElectionNotNeeded,
            MetadataError::PreferredLeaderNotAvailable => R::PreferredLeaderNotAvailable,
            MetadataError::EligibleLeadersNotAvailable => R::EligibleLeadersNotAvailable,
            MetadataError::NoReassignmentInProgress => R::NoReassignmentInProgress,
            MetadataError::InvalidReplicaAssignment(_) => R::InvalidReplicaAssignment,
            MetadataError::BrokerNotRegistered(_) => R::BrokerIdNotRegistered,
            MetadataError::ResourceNotFound(_) => R::ResourceNotFound,
        };
        KafkaError::with_message(code, e.to_string())
    }
}

impl From<&QuorumRefusal> for KafkaError {
    fn from(e: &QuorumRefusal) -> KafkaError {
        use ResponseError as R;
        let code = match e {
            QuorumRefusal::DuplicateVoter(_) => R::DuplicateVoter,
            QuorumRefusal::VoterNotFound(_) => R::VoterNotFound,
            QuorumRefusal::Invalid(_) => R::InvalidRequest,
            QuorumRefusal::NotLeader => R::NotController,
            QuorumRefusal::InProgress => R::RequestTimedOut,
            QuorumRefusal::Failed(_) => R::UnknownServerError,
        };
        KafkaError::with_message(code, e.to_string())
    }
}

impl From<&ClusterError> for KafkaError {
    fn from(e: &ClusterError) -> KafkaError {
        use ResponseError as R;
        let code = match e {
            ClusterError::NotLeader => R::NotController,
            ClusterError::Timeout => R::RequestTimedOut,
            ClusterError::ShuttingDown | ClusterError::Store(_) | ClusterError::Raft(_) => {
                R::UnknownServerError
            }
        };
        KafkaError::with_message(code, e.to_string())
    }
}

impl From<&crate::config::ConfigError> for KafkaError {
    fn from(e: &crate::config::ConfigError) -> KafkaError {
        KafkaError::with_message(ResponseError::InvalidConfig, e.to_string())
    }
}

/// KIP-588: PRODUCER_FENCED exists in a transactional API from version `since`; an older
/// client gets INVALID_PRODUCER_EPOCH for it, as Kafka answers them.
pub fn fenced_for_version(
    e: kafka_protocol::error::ResponseError,
    version: i16,
    since: i16,
) -> kafka_protocol::error::ResponseError {
    use kafka_protocol::error::ResponseError as R;
    if e == R::ProducerFenced && version < since {
        R::InvalidProducerEpoch
    } else {
        e
    }
}
