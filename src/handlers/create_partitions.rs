//! CreatePartitions: placeholder, being implemented.

use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::VersionRange;

use super::Ctx;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(_ctx: &Ctx, _req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    todo!("admin helper")
}
