//! DescribeLogDirs: placeholder, being implemented.

use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
use kafka_protocol::protocol::VersionRange;

use super::Ctx;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(_ctx: &Ctx, _req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    todo!("admin helper")
}
