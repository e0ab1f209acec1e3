//! ApiVersions (key 18), v0–v4. The table is generated from the handler registry; a
//! request for a newer version than we know gets UNSUPPORTED_VERSION at v0 (KIP-511).
//! v3+ also carries the feature levels (KIP-584) Kafka 4.x reports: what this broker
//! supports and what the cluster has finalized, with the metadata offset as the epoch.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::{Ctx, APIS};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// (feature, lowest supported level, highest supported level, finalized level).
/// `metadata.version` 25 is Kafka 4.0-IV3 (the metadata format and the APIs served here
/// are 4.0's); `kraft.version` 1 is the dynamic quorum of KIP-853 (AddRaftVoter,
/// RemoveRaftVoter); `group.version` 1 is the consumer group protocol of KIP-848.
/// `transaction.version` 1 is Kafka's first transaction protocol with flexible
/// `__transaction_state` records (transactions v2, KIP-890 part 2, is level 2: not
/// served, so clients use the v1 protocol).
pub const FEATURES: &[(&str, i16, i16, i16)] = &[
    ("metadata.version", 7, 25, 25),
    ("kraft.version", 0, 1, 1),
    ("group.version", 0, 1, 1),
    ("transaction.version", 0, 1, 1),
];

/// The advertised (api key, min, max) entries.
pub fn table() -> Vec<ApiVersion> {
    APIS.iter()
        .map(|(k, r)| {
            ApiVersion::default()
                .with_api_key(*k as i16)
                .with_min_version(r.min)
                .with_max_version(r.max)
        })
        .collect()
}

pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(table())
}

pub async fn handle(ctx: &Ctx, req: ApiVersionsRequest) -> ApiVersionsResponse {
    if ctx.version >= 3 {
        // v3+ clients send their software name/version; Kafka validates the characters.
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        };
        if !valid(req.client_software_name.as_str()) || !valid(req.client_software_version.as_str())
        {
            ctx.note_error(ResponseError::InvalidRequest.code());
            return ApiVersionsResponse::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_api_keys(table());
        }
        *ctx.software.lock() = Some((
            req.client_software_name.to_string(),
            req.client_software_version.to_string(),
        ));
    }
    let mut resp = ApiVersionsResponse::default().with_api_keys(table());
    if ctx.version >= 3 {
        // v3 clients cannot read a supported range that starts at 0 (Kafka omits those).
        resp.supported_features = FEATURES
            .iter()
            .filter(|(_, min, _, _)| ctx.version >= 4 || *min > 0)
            .map(|(name, min, max, _)| {
                SupportedFeatureKey::default()
                    .with_name(StrBytes::from_static_str(name))
                    .with_min_version(*min)
                    .with_max_version(*max)
            })
            .collect();
        resp.finalized_features = FEATURES
            .iter()
            .map(|(name, _, _, level)| {
                FinalizedFeatureKey::default()
                    .with_name(StrBytes::from_static_str(name))
                    .with_min_version_level(*level)
                    .with_max_version_level(*level)
            })
            .collect();
        resp.finalized_features_epoch = ctx.state.controller.image().applied_index as i64;
    }
    resp
}
