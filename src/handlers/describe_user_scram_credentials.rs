//! DescribeUserScramCredentials (key 50), v0: the mechanisms and iterations of users'
//! SCRAM credentials (never the keys), from the metadata image.

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;
use crate::admin::scram;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    ctx: &Ctx,
    req: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    if !ctx.authorize_cluster(crate::authorizer::Operation::Describe) {
        let code = kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code();
        ctx.note_error(code);
        return DescribeUserScramCredentialsResponse::default().with_error_code(code);
    }
    let users = req
        .users
        .map(|u| u.into_iter().map(|u| u.name.to_string()).collect());
    let results = scram::describe(&ctx.state.controller.image(), users)
        .into_iter()
        .map(|(user, r)| {
            let base = DescribeUserScramCredentialsResult::default().with_user(s(&user));
            match r {
                Ok(infos) => base.with_credential_infos(
                    infos
                        .into_iter()
                        .map(|(m, i)| {
                            CredentialInfo::default()
                                .with_mechanism(m)
                                .with_iterations(i)
                        })
                        .collect(),
                ),
                Err(e) => {
                    ctx.note_error(e.code);
                    base.with_error_code(e.code)
                        .with_error_message(e.message.as_deref().map(s))
                }
            }
        })
        .collect();
    DescribeUserScramCredentialsResponse::default().with_results(results)
}
