//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka runs them: no channel
//! binding, user names escaped (`=2C`, `=3D`), iterations between 4096 and 16384, and
//! credentials kept as salt, stored key, server key and iterations, never the password.
//! The server keeps no state between connections; the client side serves the broker's
//! own connections and the `weir` commands. The cryptography is aws-lc-rs's (PBKDF2,
//! HMAC, SHA-2); this module only composes it as the RFC says.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::{digest, hmac, pbkdf2, rand};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{Step, Users};

/// Kafka's bounds on SCRAM iterations (`ScramMechanism.minIterations/maxIterations`).
pub const MIN_ITERATIONS: u32 = 4096;
pub const MAX_ITERATIONS: u32 = 16384;

/// The message Kafka answers a SCRAM failure with; which step failed goes to the log.
const FAILED: &str =
    "Authentication failed during authentication due to invalid credentials with SASL mechanism";

/// The hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The protocol's `ScramMechanism` code (AlterUserScramCredentials and Describe).
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_code(code: i8) -> Option<ScramMechanism> {
        match code {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    pub fn parse(name: &str) -> Option<ScramMechanism> {
        [ScramMechanism::Sha256, ScramMechanism::Sha512]
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    fn hmac_algorithm(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest_algorithm(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2_algorithm(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn output_len(self) -> usize {
        self.digest_algorithm().output_len()
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let key = hmac::Key::new(self.hmac_algorithm(), key);
        hmac::sign(&key, data).as_ref().to_vec()
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_algorithm(), data)
            .as_ref()
            .to_vec()
    }

    /// `Hi(password, salt, i)`: PBKDF2 with this mechanism's HMAC.
    pub fn salted_password(self, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.output_len()];
        let iterations = std::num::NonZeroU32::new(iterations.max(1)).expect("at least one");
        pbkdf2::derive(
            self.pbkdf2_algorithm(),
            iterations,
            salt,
            password.as_bytes(),
            &mut out,
        );
        out
    }
}

/// What the server stores per user and mechanism (RFC 5802 section 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

impl ScramCredential {
    /// The credential for an already salted password (what AlterUserScramCredentials
    /// carries: clients never send the password itself).
    pub fn from_salted(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        salted_password: &[u8],
        iterations: u32,
    ) -> ScramCredential {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// A credential for `password` with a fresh random salt.
    pub fn new(mechanism: ScramMechanism, password: &str, iterations: u32) -> ScramCredential {
        let salt = random_bytes(32);
        let salted = mechanism.salted_password(password, &salt, iterations);
        ScramCredential::from_salted(mechanism, salt, &salted, iterations)
    }
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    rand::fill(&mut out).expect("the system random generator works");
    out
}

fn nonce() -> String {
    B64.encode(random_bytes(24))
}

/// A SCRAM user name as it appears in a message (`=2C` is `,`, `=3D` is `=`).
fn unescape_name(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "2C" => ',',
            "3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

fn escape_name(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

/// `k=value` attributes of a message, in order.
fn attributes(msg: &str) -> Vec<(&str, &str)> {
    msg.split(',')
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k, v),
            None => (a, ""),
        })
        .collect()
}

/// The client's first message, parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientFirst {
    pub user: String,
    pub nonce: String,
    /// Everything after the GS2 header: part of the signed AuthMessage.
    pub bare: String,
    /// The GS2 header (`n,,` or `n,a=authzid,`), echoed base64 in the final message.
    pub gs2_header: String,
    pub extensions: Vec<(String, String)>,
}

pub fn parse_client_first(token: &[u8]) -> Result<ClientFirst, String> {
    let msg = std::str::from_utf8(token).map_err(|_| "not UTF-8".to_string())?;
    let mut parts = msg.splitn(3, ',');
    let cbind = parts.next().unwrap_or_default();
    let raw_authzid = parts.next().ok_or("no GS2 header")?;
    let authzid = raw_authzid;
    let bare = parts.next().ok_or("no GS2 header")?;
    match cbind {
        "n" | "y" => {}
        p if p.starts_with("p=") => return Err("channel binding is not supported".into()),
        other => return Err(format!("bad channel binding flag {other:?}")),
    }
    let authzid = match authzid {
        "" => None,
        a => Some(
            a.strip_prefix("a=")
                .and_then(unescape_name)
                .ok_or("bad authorization id")?,
        ),
    };
    let attrs = attributes(bare);
    let mut it = attrs.iter();
    let user = match it.next() {
        Some(("n", v)) => unescape_name(v).ok_or("bad user name escape")?,
        Some(("m", _)) => return Err("mandatory extensions are not supported".into()),
        _ => return Err("no user name".into()),
    };
    let nonce = match it.next() {
        Some(("r", v)) if !v.is_empty() => v.to_string(),
        _ => return Err("no client nonce".into()),
    };
    if user.is_empty() {
        return Err("empty user name".into());
    }
    if let Some(a) = authzid {
        if a != user {
            return Err(format!("authorization id {a:?} differs from user {user:?}"));
        }
    }
    let extensions = it.map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Ok(ClientFirst {
        gs2_header: format!("{cbind},{raw_authzid},"),
        user,
        nonce,
        bare: bare.to_string(),
        extensions,
    })
}

/// The server side of one SCRAM exchange.
#[derive(Debug)]
pub enum Server {
    /// Waiting for the client's first message.
    Start(ScramMechanism),
    /// Sent the server-first message; waiting for the client's final one.
    SentFirst {
        mechanism: ScramMechanism,
        user: String,
        credential: ScramCredential,
        gs2_header: String,
        /// The client's nonce followed by ours.
        nonce: String,
        /// How much of `nonce` is the client's.
        client_nonce_len: usize,
        /// client-first-bare "," server-first: the start of the AuthMessage.
        auth_prefix: String,
    },
    Done,
}

impl Server {
    pub fn new(mechanism: ScramMechanism) -> Server {
        Server::Start(mechanism)
    }

    pub fn step(&mut self, token: &[u8], users: &dyn Users) -> Step {
        match std::mem::replace(self, Server::Done) {
            Server::Start(mechanism) => self.first(mechanism, token, users),
            Server::SentFirst {
                mechanism,
                user,
                credential,
                gs2_header,
                nonce,
                client_nonce_len,
                auth_prefix,
            } => final_step(
                mechanism,
                &user,
                &credential,
                &gs2_header,
                (&nonce, client_nonce_len),
                &auth_prefix,
                token,
            ),
            Server::Done => Step::failed("Unexpected SCRAM message", "message after the end"),
        }
    }

    fn first(&mut self, mechanism: ScramMechanism, token: &[u8], users: &dyn Users) -> Step {
        let fail = |detail: String| Step::failed(format!("{FAILED} {}", mechanism.name()), detail);
        let first = match parse_client_first(token) {
            Ok(f) => f,
            Err(e) => return fail(format!("bad client-first message: {e}")),
        };
        if first
            .extensions
            .iter()
            .any(|(k, v)| k == "tokenauth" && v.eq_ignore_ascii_case("true"))
        {
            return fail("delegation tokens are not supported".into());
        }
        let Some(credential) = users.scram_credential(&first.user, mechanism) else {
            return Step::failed(
                "Authentication failed: Invalid user credentials",
                format!(
                    "no {} credential for user {:?}",
                    mechanism.name(),
                    first.user
                ),
            );
        };
        let nonce = format!("{}{}", first.nonce, self::nonce());
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        *self = Server::SentFirst {
            mechanism,
            user: first.user,
            credential,
            gs2_header: first.gs2_header,
            client_nonce_len: first.nonce.len(),
            nonce,
            auth_prefix: format!("{},{server_first}", first.bare),
        };
        Step::Continue(server_first.into_bytes())
    }
}

fn final_step(
    mechanism: ScramMechanism,
    user: &str,
    credential: &ScramCredential,
    gs2_header: &str,
    (nonce, client_nonce_len): (&str, usize),
    auth_prefix: &str,
    token: &[u8],
) -> Step {
    let fail = |detail: String| Step::failed(format!("{FAILED} {}", mechanism.name()), detail);
    let Ok(msg) = std::str::from_utf8(token) else {
        return fail("client-final message is not UTF-8".into());
    };
    let Some((without_proof, proof)) = msg.rsplit_once(",p=") else {
        return fail("client-final message without a proof".into());
    };
    let attrs = attributes(without_proof);
    let binding = attrs.iter().find(|(k, _)| *k == "c").map(|(_, v)| *v);
    let client_nonce = attrs.iter().find(|(k, _)| *k == "r").map(|(_, v)| *v);
    if binding != Some(B64.encode(gs2_header).as_str()) {
        return fail(format!(
            "channel binding {binding:?} does not match the GS2 header"
        ));
    }
    // librdkafka before 2.6.1 (kcat on Debian's 2.0.2 among them) sends its own nonce
    // once more in front of the combined one. That exact form still proves the client
    // saw our nonce, so it is accepted; anything else is refused, as RFC 5802 requires.
    let doubled = format!("{}{nonce}", &nonce[..client_nonce_len.min(nonce.len())]);
    if client_nonce != Some(nonce) && client_nonce != Some(doubled.as_str()) {
        return fail(format!(
            "nonce {client_nonce:?} is not the one of this exchange"
        ));
    }
    let Ok(proof) = B64.decode(proof) else {
        return fail("proof is not base64".into());
    };
    let auth_message = format!("{auth_prefix},{without_proof}");
    let signature = mechanism.hmac(&credential.stored_key, auth_message.as_bytes());
    if proof.len() != signature.len() {
        return fail(format!("proof of {} bytes", proof.len()));
    }
    let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
    if verify_slices_are_equal(&mechanism.hash(&client_key), &credential.stored_key).is_err() {
        return fail(format!("wrong proof for user {user:?}"));
    }
    let server_signature = mechanism.hmac(&credential.server_key, auth_message.as_bytes());
    Step::Done {
        user: user.to_string(),
        token: format!("v={}", B64.encode(server_signature)).into_bytes(),
        lifetime: None,
    }
}

/// The client side of one exchange: `first()`, then `respond(server_first)`, then
/// `verify(server_final)`.
pub struct Client {
    mechanism: ScramMechanism,
    password: String,
    nonce: String,
    bare: String,
    server_signature: Option<Vec<u8>>,
}

impl Client {
    pub fn new(mechanism: ScramMechanism, user: &str, password: &str) -> Client {
        let nonce = nonce();
        Client {
            mechanism,
            password: password.to_string(),
            bare: format!("n={},r={nonce}", escape_name(user)),
            nonce,
            server_signature: None,
        }
    }

    pub fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.bare).into_bytes()
    }

    /// The client-final message for the server's first message.
    pub fn respond(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let msg = std::str::from_utf8(server_first).map_err(|_| "server-first is not UTF-8")?;
        let attrs = attributes(msg);
        let get = |k: &str| attrs.iter().find(|(a, _)| *a == k).map(|(_, v)| *v);
        if let Some(e) = get("e") {
            return Err(format!("server refused: {e}"));
        }
        let nonce = get("r").ok_or("server-first without a nonce")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("server nonce does not extend ours".into());
        }
        let salt = B64
            .decode(get("s").ok_or("server-first without a salt")?)
            .map_err(|_| "salt is not base64")?;
        let iterations: u32 = get("i")
            .and_then(|i| i.parse().ok())
            .ok_or("server-first without iterations")?;
        if iterations < MIN_ITERATIONS {
            return Err(format!(
                "server asks for {iterations} iterations, fewer than {MIN_ITERATIONS}"
            ));
        }
        let m = self.mechanism;
        let salted = m.salted_password(&self.password, &salt, iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c={},r={nonce}", B64.encode("n,,"));
        let auth_message = format!("{},{msg},{without_proof}", self.bare);
        let signature = m.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = m.hmac(&salted, b"Server Key");
        self.server_signature = Some(m.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Check the server's final message: it proves the server knew the credential.
    pub fn verify(&self, server_final: &[u8]) -> Result<(), String> {
        let msg = std::str::from_utf8(server_final).map_err(|_| "server-final is not UTF-8")?;
        if let Some(e) = msg.strip_prefix("e=") {
            return Err(format!("server refused: {e}"));
        }
        let v = msg
            .strip_prefix("v=")
            .ok_or("server-final without a signature")?;
        let v = B64
            .decode(v)
            .map_err(|_| "server signature is not base64")?;
        let expected = self.server_signature.as_deref().ok_or("no exchange yet")?;
        verify_slices_are_equal(&v, expected).map_err(|_| "the server's signature is wrong".into())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Store(BTreeMap<(String, ScramMechanism), ScramCredential>);

    impl Users for Store {
        fn plain_password(&self, _: &str) -> Option<String> {
            None
        }
        fn scram_credential(&self, user: &str, m: ScramMechanism) -> Option<ScramCredential> {
            self.0.get(&(user.to_string(), m)).cloned()
        }
    }

    fn store(user: &str, password: &str) -> Store {
        let mut m = BTreeMap::new();
        for mech in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            m.insert(
                (user.to_string(), mech),
                ScramCredential::new(mech, password, 4096),
            );
        }
        Store(m)
    }

    fn run(
        mech: ScramMechanism,
        user: &str,
        password: &str,
        users: &Store,
    ) -> Result<String, String> {
        let mut client = Client::new(mech, user, password);
        let mut server = Server::new(mech);
        let server_first = match server.step(&client.first(), users) {
            Step::Continue(t) => t,
            Step::Failed { message, .. } => return Err(message),
            other => panic!("{other:?}"),
        };
        let client_final = client.respond(&server_first)?;
        match server.step(&client_final, users) {
            Step::Done { user, token, .. } => {
                client.verify(&token)?;
                Ok(user)
            }
            Step::Failed { message, detail } => Err(format!("{message} ({detail})")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rfc_7677_test_vector() {
        // RFC 7677 section 3: user "user", password "pencil", 4096 iterations.
        let m = ScramMechanism::Sha256;
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = m.salted_password("pencil", &salt, 4096);
        let cred = ScramCredential::from_salted(m, salt, &salted, 4096);
        let bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let without_proof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let step = final_step(
            m,
            "user",
            &cred,
            "n,,",
            ("rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", 20),
            &format!("{bare},{server_first}"),
            format!("{without_proof},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=").as_bytes(),
        );
        assert_eq!(
            step,
            Step::Done {
                user: "user".into(),
                token: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec(),
                lifetime: None
            }
        );
    }

    #[test]
    fn both_mechanisms_authenticate_and_refuse_wrong_passwords() {
        let users = store("al,i=ce", "secret");
        for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            assert_eq!(run(m, "al,i=ce", "secret", &users).unwrap(), "al,i=ce");
            let e = run(m, "al,i=ce", "wrong", &users).unwrap_err();
            assert!(
                e.contains("invalid credentials") && e.contains("wrong proof"),
                "{e}"
            );
            let e = run(m, "bob", "secret", &users).unwrap_err();
            assert!(e.contains("Invalid user credentials"), "{e}");
        }
    }

    #[test]
    fn tampered_messages_are_refused() {
        let users = store("alice", "secret");
        let m = ScramMechanism::Sha256;
        // A different nonce, a different binding, a bad proof, a short proof, no proof.
        type Tamper = fn(&str) -> String;
        let cases: [(Tamper, &str); 5] = [
            (|good| good.replacen(",r=", ",r=x", 1), "nonce"),
            (
                |good| good.replacen("c=biws", "c=eSws", 1),
                "channel binding",
            ),
            (
                |good| {
                    format!(
                        "{},p={}",
                        good.rsplit_once(",p=").unwrap().0,
                        B64.encode([7u8; 32])
                    )
                },
                "wrong proof",
            ),
            (
                |good| format!("{},p=AAAA", good.rsplit_once(",p=").unwrap().0),
                "proof of 3 bytes",
            ),
            (
                |good| good.rsplit_once(",p=").unwrap().0.to_string(),
                "without a proof",
            ),
        ];
        for (tamper, why) in cases {
            let mut client = Client::new(m, "alice", "secret");
            let mut server = Server::new(m);
            let Step::Continue(first) = server.step(&client.first(), &users) else {
                panic!()
            };
            let good = String::from_utf8(client.respond(&first).unwrap()).unwrap();
            match server.step(tamper(&good).as_bytes(), &users) {
                Step::Failed { detail, .. } => assert!(detail.contains(why), "{detail} vs {why}"),
                other => panic!("{why}: {other:?}"),
            }
        }
        for bad in [
            &b"n,,"[..],
            b"p=tls-unique,,n=a,r=b",
            b"n,,n=a",
            b"n,a=bob,n=alice,r=x",
            b"n,,m=x,n=a,r=b",
            b"n,,n=a=ZZ,r=x",
            &[0xff, 0xfe],
        ] {
            let mut s = Server::new(m);
            assert!(
                matches!(s.step(bad, &users), Step::Failed { .. }),
                "{bad:?}"
            );
        }
        let mut s = Server::new(m);
        assert!(matches!(
            s.step(b"n,,n=alice,r=abc,tokenauth=true", &users),
            Step::Failed { .. }
        ));
    }

    #[test]
    fn librdkafkas_doubled_client_nonce_is_accepted_and_nothing_else() {
        let users = store("alice", "secret");
        let m = ScramMechanism::Sha256;
        for (doubled, accepted) in [(true, true), (false, false)] {
            let mut client = Client::new(m, "alice", "secret");
            let mut server = Server::new(m);
            let Step::Continue(first) = server.step(&client.first(), &users) else {
                panic!()
            };
            let cnonce = client.nonce.clone();
            let full = String::from_utf8(first.clone()).unwrap();
            let full = full
                .split(',')
                .next()
                .unwrap()
                .trim_start_matches("r=")
                .to_string();
            // What librdkafka < 2.6.1 sends: its nonce, then the combined one; the proof
            // is computed over that message, as librdkafka does.
            let sent = if doubled {
                format!("{cnonce}{full}")
            } else {
                format!("x{full}")
            };
            let without_proof = format!("c=biws,r={sent}");
            let auth_message = format!(
                "{},{},{without_proof}",
                client.bare,
                String::from_utf8(first).unwrap()
            );
            let salted =
                m.salted_password("secret", &users.0[&("alice".to_string(), m)].salt, 4096);
            let client_key = m.hmac(&salted, b"Client Key");
            let signature = m.hmac(&m.hash(&client_key), auth_message.as_bytes());
            let proof: Vec<u8> = client_key
                .iter()
                .zip(&signature)
                .map(|(k, s)| k ^ s)
                .collect();
            let msg = format!("{without_proof},p={}", B64.encode(proof));
            let step = server.step(msg.as_bytes(), &users);
            assert_eq!(matches!(step, Step::Done { .. }), accepted, "{step:?}");
            client.nonce.clear();
        }
    }

    #[test]
    fn client_checks_the_server() {
        let m = ScramMechanism::Sha256;
        let mut client = Client::new(m, "alice", "secret");
        assert!(client.respond(b"r=other,s=AAAA,i=4096").is_err());
        let nonce = String::from_utf8(client.first()).unwrap();
        let nonce = nonce.rsplit_once("r=").unwrap().1.to_string();
        assert!(client
            .respond(format!("r={nonce}x,s=AAAA,i=10").as_bytes())
            .unwrap_err()
            .contains("iterations"));
        assert!(client
            .respond(format!("r={nonce}x,s=AAAA,i=4096").as_bytes())
            .is_ok());
        assert!(client.verify(b"v=AAAA").is_err());
        assert!(client
            .verify(b"e=invalid-proof")
            .unwrap_err()
            .contains("invalid-proof"));
    }

    #[test]
    fn names_escape_and_unescape() {
        assert_eq!(escape_name("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(unescape_name("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(unescape_name("a=2"), None);
        assert_eq!(unescape_name("a=41"), None);
    }

    proptest::proptest! {
        #[test]
        fn server_never_panics_on_arbitrary_tokens(first in proptest::collection::vec(proptest::num::u8::ANY, 0..200), second in ".{0,200}") {
            let users = store("alice", "secret");
            for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
                let mut s = Server::new(m);
                let _ = s.step(&first, &users);
                let _ = s.step(second.as_bytes(), &users);
                let mut s = Server::new(m);
                let _ = s.step(b"n,,n=alice,r=abc", &users);
                let _ = s.step(second.as_bytes(), &users);
                let _ = s.step(&first, &users);
            }
        }
    }
}
