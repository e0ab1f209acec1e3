//! AlterUserScramCredentials (key 51), v0: add, replace or delete users' SCRAM
//! credentials (salted passwords, as clients send them), one result per user; the
//! credentials live in the replicated metadata, so every node authenticates with them.

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;
use crate::admin::scram::{self, Alteration};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    ctx: &Ctx,
    req: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // ALTER on the cluster; every user is refused otherwise.
    if !ctx.authorize_cluster(crate::authorizer::Operation::Alter) {
        let code = kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code();
        ctx.note_error(code);
        let mut users: Vec<String> = Vec::new();
        for u in req
            .deletions
            .iter()
            .map(|d| &d.name)
            .chain(req.upsertions.iter().map(|u| &u.name))
        {
            if !users.contains(&u.to_string()) {
                users.push(u.to_string());
            }
        }
        return AlterUserScramCredentialsResponse::default().with_results(
            users
                .iter()
                .map(|u| {
                    AlterUserScramCredentialsResult::default()
                        .with_user(s(u))
                        .with_error_code(code)
                })
                .collect(),
        );
    }
    let deletions = req.deletions.into_iter().map(|d| Alteration {
        user: d.name.to_string(),
        mechanism: d.mechanism,
        upsert: None,
    });
    let upsertions = req.upsertions.into_iter().map(|u| Alteration {
        user: u.name.to_string(),
        mechanism: u.mechanism,
        upsert: Some((u.iterations, u.salt.to_vec(), u.salted_password.to_vec())),
    });
    let results = scram::alter(ctx.state.admin(), deletions.chain(upsertions).collect())
        .await
        .into_iter()
        .map(|(user, r)| {
            let base = AlterUserScramCredentialsResult::default().with_user(s(&user));
            match r {
                Ok(()) => base,
                Err(e) => {
                    ctx.note_error(e.code);
                    base.with_error_code(e.code)
                        .with_error_message(e.message.as_deref().map(s))
                }
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}
