//! SASL/PLAIN (RFC 4616): one token, `authzid NUL username NUL password`, checked against
//! the listener's users. Messages are Kafka's (`PlainSaslServer`). Only ever offer it
//! over TLS on untrusted networks: the password crosses the wire as it is.

use aws_lc_rs::constant_time::verify_slices_are_equal;

use super::{Step, Users};

/// What a client sends: authorization id (may be empty), user name, password.
#[derive(Debug, PartialEq, Eq)]
pub struct PlainToken<'a> {
    pub authzid: &'a str,
    pub user: &'a str,
    pub password: &'a str,
}

/// Parse a PLAIN token; the error is Kafka's message for it.
pub fn parse(token: &[u8]) -> Result<PlainToken<'_>, String> {
    let text = std::str::from_utf8(token)
        .map_err(|_| "Invalid SASL/PLAIN response: not UTF-8".to_string())?;
    let parts: Vec<&str> = text.split('\0').collect();
    if parts.len() != 3 {
        return Err(format!(
            "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
            parts.len()
        ));
    }
    Ok(PlainToken {
        authzid: parts[0],
        user: parts[1],
        password: parts[2],
    })
}

/// The client's token, for the broker's own connections and `weir` commands.
pub fn client_token(user: &str, password: &str) -> Vec<u8> {
    format!("\0{user}\0{password}").into_bytes()
}

pub fn authenticate(token: &[u8], users: &dyn Users) -> Step {
    let t = match parse(token) {
        Ok(t) => t,
        Err(e) => return Step::failed(e.clone(), e),
    };
    if t.user.is_empty() {
        return Step::failed(
            "Authentication failed: username not specified",
            "empty user name",
        );
    }
    if t.password.is_empty() {
        return Step::failed(
            "Authentication failed: password not specified",
            format!("empty password for user {:?}", t.user),
        );
    }
    if !t.authzid.is_empty() && t.authzid != t.user {
        return Step::failed(
            "Authentication failed: Client requested an authorization id that is different from username",
            format!("authorization id {:?} for user {:?}", t.authzid, t.user),
        );
    }
    let known = users.plain_password(t.user);
    // Compare even for an unknown user so timing does not tell which users exist.
    let expected = known.as_deref().unwrap_or("\u{0}no such user\u{0}");
    let matches = verify_slices_are_equal(expected.as_bytes(), t.password.as_bytes()).is_ok();
    match (known.is_some(), matches) {
        (true, true) => Step::Done {
            user: t.user.to_string(),
            token: Vec::new(),
            lifetime: None,
        },
        (false, _) => Step::failed(
            "Authentication failed: Invalid username or password",
            format!("unknown user {:?}", t.user),
        ),
        (true, false) => Step::failed(
            "Authentication failed: Invalid username or password",
            format!("wrong password for user {:?}", t.user),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn users() -> BTreeMap<String, String> {
        [("alice".to_string(), "alice-secret".to_string())].into()
    }

    fn message(step: Step) -> String {
        match step {
            Step::Failed { message, .. } => message,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn right_password_authenticates_and_anything_else_is_refused() {
        assert_eq!(
            authenticate(&client_token("alice", "alice-secret"), &users()),
            Step::Done {
                user: "alice".into(),
                token: vec![],
                lifetime: None
            }
        );
        assert!(authenticate(b"alice\0alice\0alice-secret", &users()) != Step::Continue(vec![]));
        let wrong = message(authenticate(&client_token("alice", "nope"), &users()));
        let unknown = message(authenticate(&client_token("bob", "x"), &users()));
        assert_eq!(wrong, unknown, "no hint whether the user exists");
        assert!(message(authenticate(b"bob\0alice\0alice-secret", &users()))
            .contains("authorization id"));
        assert!(message(authenticate(b"\0\0x", &users())).contains("username not specified"));
        assert!(message(authenticate(b"\0alice\0", &users())).contains("password not specified"));
        assert!(message(authenticate(b"alice", &users())).contains("expected 3 tokens, got 1"));
        assert!(message(authenticate(b"\0a\0b\0c", &users())).contains("got 4"));
        assert!(message(authenticate(&[0, 0xff, 0, 1], &users())).contains("UTF-8"));
    }
}
