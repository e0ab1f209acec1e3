//! The ACL rows: the base produce and its consume again on a node with Kafka's
//! StandardAuthorizer and 10,000 ACLs (half LITERAL, half PREFIXED, for other principals
//! and topics), the benchmark's own principal allowed through the wildcard topic and
//! group ACLs. Each row is noted with its ratio to the same row without an authorizer,
//! so the cost of a decision on the produce and fetch paths shows in the same run.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;

use super::*;

/// How many ACLs the node holds besides the benchmark's own.
const ACLS: usize = 10_000;

impl Bench {
    pub(super) fn acl_rows(&mut self, base: &Send) -> anyhow::Result<()> {
        let dir = self.dir.join("acl");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        // No ACL exists when the benchmark creates them, so the cluster is open until
        // then; afterwards every topic, group and the cluster have ACLs (the wildcard
        // ones), and each decision goes through the 10,000-ACL index.
        let extra = vec![
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"
                .to_string(),
            "allow.everyone.if.no.acl.found=true".to_string(),
        ];
        let (t, startup_s) = Target::start_single_with(&self.weir, &dir, None, &extra)?;
        let idx = self.add_broker("1 node, authorizer with 10,000 ACLs", &t, startup_s);
        if let Err(e) = create_acls(&t.bootstrap) {
            self.stop(t, idx);
            return Err(e);
        }
        self.log(format!("  {ACLS} ACLs created on {}", t.bootstrap));
        self.via_acl = true;
        let rows = self.base_pair(&t, idx, base);
        self.via_acl = false;
        self.stop(t, idx);
        let (produce, consume) = rows?;
        for acl in [produce, consume] {
            self.note_ratio(
                &acl,
                "-acl/",
                "the MB/s without an authorizer",
                "with ACLs / without",
            );
        }
        Ok(())
    }
}

/// The ACLs, in one CreateAcls request: the benchmark's principal (the plaintext
/// listener's `User:ANONYMOUS`) may do anything on the cluster, every topic and every
/// group; the others name other users and topics.
fn create_acls(bootstrap: &str) -> anyhow::Result<()> {
    let s = |v: String| StrBytes::from_string(v);
    let acl = |rt: i8, name: String, pattern: i8, principal: String, op: i8| {
        AclCreation::default()
            .with_resource_type(rt)
            .with_resource_name(s(name))
            .with_resource_pattern_type(pattern)
            .with_principal(s(principal))
            .with_host(s("*".into()))
            .with_operation(op)
            .with_permission_type(3)
    };
    let me = || "User:ANONYMOUS".to_string();
    let mut creations = vec![
        acl(4, "kafka-cluster".into(), 3, me(), 2),
        acl(2, "*".into(), 3, me(), 2),
        acl(3, "*".into(), 3, me(), 2),
    ];
    for i in 0..ACLS {
        let (name, pattern) = if i % 2 == 0 {
            (format!("orders-{i}"), 3)
        } else {
            (format!("team-{i}-"), 4)
        };
        creations.push(acl(
            2,
            name,
            pattern,
            format!("User:user-{i}"),
            if i % 3 == 0 { 4 } else { 3 },
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let timeout = std::time::Duration::from_secs(60);
        let mut c =
            weir::replica::client::BrokerClient::connect(bootstrap, "weir-bench".into(), timeout)
                .await?;
        let r: CreateAclsResponse = c
            .call(
                ApiKey::CreateAcls,
                3,
                &CreateAclsRequest::default().with_creations(creations),
                timeout,
            )
            .await?;
        if let Some(bad) = r.results.iter().find(|r| r.error_code != 0) {
            bail!(
                "CreateAcls: error {} {:?}",
                bad.error_code,
                bad.error_message
            );
        }
        Ok(())
    })
}
