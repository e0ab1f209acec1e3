//! Producer ids for idempotent producers, handed out from blocks allocated through the
//! metadata log so that ids are unique across restarts (and, later, across brokers).

use std::sync::Arc;

use tokio::sync::Mutex;

use crate::cluster::{ClusterError, CommandResult, Controller, MetadataCommand, MetadataError};

/// Ids per metadata allocation: one Raft commit serves this many InitProducerId calls.
const BLOCK: i64 = 1000;

pub struct ProducerIdManager {
    controller: Arc<Controller>,
    /// Next id to hand out and the end (exclusive) of the current block.
    block: Mutex<(i64, i64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProducerIdError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("unexpected answer to a producer-id allocation")]
    Unexpected,
}

impl ProducerIdManager {
    pub fn new(controller: Arc<Controller>) -> ProducerIdManager {
        ProducerIdManager {
            controller,
            block: Mutex::new((0, 0)),
        }
    }

    pub async fn next(&self) -> Result<i64, ProducerIdError> {
        let mut b = self.block.lock().await;
        if b.0 >= b.1 {
            match self
                .controller
                .propose(MetadataCommand::AllocateProducerIds { count: BLOCK })
                .await?
            {
                CommandResult::ProducerIds { first } => *b = (first, first + BLOCK),
                CommandResult::Err(e) => return Err(e.into()),
                CommandResult::Ok => return Err(ProducerIdError::Unexpected),
            }
        }
        let id = b.0;
        b.0 += 1;
        Ok(id)
    }
}
