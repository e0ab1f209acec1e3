//! Fuzzes what a client sends before it has authenticated: SASL tokens for every
//! mechanism (PLAIN, SCRAM-SHA-256/512 over several steps, OAUTHBEARER with its JWT),
//! a JWKS document as an identity provider serves it, and the JAAS settings an operator
//! writes. Nothing may panic, and a refusal never names a user as authenticated.

#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use weir::sasl::jwks::{JwksSource, KeySet, KeyStore, Refresh};
use weir::sasl::jwt::{JwtValidator, Keys, TokenRules};
use weir::sasl::oauthbearer::BearerValidator;
use weir::sasl::{jaas, Exchange, Mechanism, ScramCredential, ScramMechanism, Step, Users};

/// A user of every mechanism: PLAIN alice, SCRAM alice (both hashes), and a bearer
/// validator over a fixed EC key (signed tokens) or unsigned tokens.
struct Fixture {
    plain: BTreeMap<String, String>,
    scram: BTreeMap<ScramMechanism, ScramCredential>,
    signed: JwtValidator,
    unsecured: JwtValidator,
    use_unsecured: bool,
}

impl Users for Fixture {
    fn plain_password(&self, user: &str) -> Option<String> {
        self.plain.get(user).cloned()
    }

    fn scram_credential(&self, user: &str, m: ScramMechanism) -> Option<ScramCredential> {
        (user == "alice").then(|| self.scram.get(&m).cloned()).flatten()
    }

    fn bearer_validator(&self) -> Option<&dyn BearerValidator> {
        Some(if self.use_unsecured { &self.unsecured } else { &self.signed })
    }
}

const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

/// The fixture with signed tokens, or (`unsecured`) the one taking unsigned tokens.
fn fixture(unsecured: bool) -> &'static Fixture {
    static F: OnceLock<(Fixture, Fixture)> = OnceLock::new();
    let pair = F.get_or_init(|| {
        let make = |use_unsecured| {
            let mut scram = BTreeMap::new();
            for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
                let salt = b"fuzz-salt".to_vec();
                let salted = m.salted_password("secret", &salt, 4096);
                scram.insert(m, ScramCredential::from_salted(m, salt, &salted, 4096));
            }
            let refresh = Refresh {
                every: Duration::from_secs(3600),
                retry_backoff: Duration::from_millis(100),
                retry_backoff_max: Duration::from_secs(10),
            };
            let store = KeyStore::with_keys(
                JwksSource::File("jwks.json".into()),
                refresh,
                KeySet::parse(JWKS.as_bytes()).expect("fixture JWKS"),
            );
            Fixture {
                plain: [("alice".to_string(), "secret".to_string())].into(),
                scram,
                signed: JwtValidator {
                    rules: TokenRules::default(),
                    keys: Keys::Jwks(Arc::new(store)),
                },
                unsecured: JwtValidator {
                    rules: TokenRules::default(),
                    keys: Keys::Unsecured,
                },
                use_unsecured,
            }
        };
        (make(false), make(true))
    });
    if unsecured {
        &pair.1
    } else {
        &pair.0
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // The high bit of the first byte picks the bearer validator, the rest the mechanism.
    let users = fixture(mode & 0x80 != 0);
    let mechanism = Mechanism::ALL[usize::from(mode & 0x7F) % Mechanism::ALL.len()];
    let mut exchange = Exchange::new(mechanism);
    // Tokens separated by 0xFE 0xFE; at most four steps.
    let mut tokens = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < rest.len() {
        if rest[i] == 0xFE && rest[i + 1] == 0xFE {
            tokens.push(&rest[start..i]);
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    tokens.push(&rest[start..]);
    for token in tokens.into_iter().take(4) {
        match exchange.step(token, users) {
            Step::Continue(_) => continue,
            Step::Done { user, .. } => {
                assert!(!user.is_empty(), "authenticated without a user");
                break;
            }
            Step::Failed { .. } => break,
        }
    }
    if let Ok(text) = std::str::from_utf8(rest) {
        let _ = jaas::parse(text);
        let _ = users.signed.validate(text);
        let _ = users.unsecured.validate(text);
        let _ = JwksSource::parse(text);
    }
    let _ = KeySet::parse(rest);
});
