//! The node's handle on the metadata quorum: start/bootstrap, propose, read the image.

// IMPLEMENTATION OWNED BY THE CLUSTER HELPER; the signatures below are the contract.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use super::{ClusterError, CommandResult, MetadataCommand, MetadataImage};

/// What the controller needs from the broker config.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub node_id: i32,
    /// Directory of the sled database (Raft log, vote, applied state, snapshots).
    pub dir: PathBuf,
    /// Cluster id to use when bootstrapping a new cluster; generated when `None`.
    pub cluster_id: Option<String>,
}

/// A running metadata node.
pub struct Controller {
    image_rx: watch::Receiver<Arc<MetadataImage>>,
}

impl Controller {
    /// Open the store, start openraft, bootstrap a one-voter cluster if the store is new,
    /// wait until this node is leader and has applied everything committed, and make sure
    /// the cluster id is set.
    pub async fn start(_cfg: ControllerConfig) -> Result<Arc<Controller>, ClusterError> {
        todo!("cluster helper")
    }

    /// The latest applied image (cheap: an `Arc` clone).
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image_rx.borrow().clone()
    }

    /// A receiver that sees every new image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image_rx.clone()
    }

    /// Commit a command through Raft and return its result once applied locally
    /// (the image returned by `image()` afterwards reflects it).
    pub async fn propose(&self, _cmd: MetadataCommand) -> Result<CommandResult, ClusterError> {
        todo!("cluster helper")
    }

    /// Stop Raft and flush the store.
    pub async fn shutdown(&self) -> Result<(), ClusterError> {
        todo!("cluster helper")
    }
}
