//! CreateTopics: placeholder, being implemented.

use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::VersionRange;

use super::Ctx;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(_ctx: &Ctx, _req: CreateTopicsRequest) -> CreateTopicsResponse {
    todo!("admin helper")
}
