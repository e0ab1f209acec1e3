//! Small helpers shared by handlers.

use kafka_protocol::protocol::StrBytes;

pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}
