//! GetTelemetrySubscriptions (key 71), v0: which metrics a client should push and how
//! often (KIP-714). A client without an instance id gets a new one. The answer comes
//! from the client-metrics subscriptions matching the client (see `crate::telemetry`);
//! with none, the list of requested metrics is empty and the client pushes nothing.
//! Monotonic sums are asked for cumulatively, as Prometheus reads them.

use kafka_protocol::messages::{
    GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse,
};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;
use crate::telemetry::{ClientInfo, ACCEPTED_COMPRESSION, MAX_BYTES};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    ctx: &Ctx,
    req: GetTelemetrySubscriptionsRequest,
) -> GetTelemetrySubscriptionsResponse {
    let (software_name, software_version) = ctx.software.lock().clone().unwrap_or_default();
    let info = ClientInfo {
        client_id: ctx.client_id.clone(),
        software_name,
        software_version,
        source_address: ctx.peer.ip().to_string(),
        source_port: ctx.peer.port(),
    };
    let image = ctx.state.controller.image();
    let (instance, selection) = ctx
        .state
        .telemetry
        .subscribe(&image, req.client_instance_id, info);
    GetTelemetrySubscriptionsResponse::default()
        .with_client_instance_id(instance)
        .with_subscription_id(selection.subscription_id)
        .with_accepted_compression_types(ACCEPTED_COMPRESSION.to_vec())
        .with_push_interval_ms(selection.interval_ms)
        .with_telemetry_max_bytes(MAX_BYTES)
        .with_delta_temporality(false)
        .with_requested_metrics(selection.metrics.iter().map(|m| s(m)).collect())
}
