//! DescribeProducers: placeholder, being implemented.

use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse};
use kafka_protocol::protocol::VersionRange;

use super::Ctx;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(_ctx: &Ctx, _req: DescribeProducersRequest) -> DescribeProducersResponse {
    todo!("admin helper")
}
