//! ApiVersions (key 18), v0–v4. The table is generated from the handler registry; a
//! request for a newer version than we know gets UNSUPPORTED_VERSION at v0 (KIP-511).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::VersionRange;

use super::{Ctx, APIS};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

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
    }
    ApiVersionsResponse::default().with_api_keys(table())
}
