//! Kafka's `sasl.jaas.config` values: `<LoginModule> <flag> key="value" ... ;`. The
//! broker reads the PLAIN users (`user_<name>="<password>"`) and its own credentials
//! (`username`, `password`) for the connections it makes itself; the `weir` commands read
//! a client's. Values are quoted (with `\` escapes) or bare words, as Java's JAAS parser
//! accepts them.

use std::collections::BTreeMap;

/// One login module entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginModule {
    pub class: String,
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

impl LoginModule {
    /// The PLAIN users this entry defines (`user_<name>` options).
    pub fn plain_users(&self) -> BTreeMap<String, String> {
        self.options
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("user_")?.to_string(), v.clone())))
            .filter(|(k, _)| !k.is_empty())
            .collect()
    }

    /// The `username` and `password` options, when both are given.
    pub fn credentials(&self) -> Option<(String, String)> {
        Some((
            self.options.get("username")?.clone(),
            self.options.get("password")?.clone(),
        ))
    }
}

const FLAGS: &[&str] = &["required", "requisite", "sufficient", "optional"];

/// Parse a `sasl.jaas.config` value: exactly one login module, as Kafka requires.
pub fn parse(value: &str) -> Result<LoginModule, String> {
    let mut modules = parse_modules(value)?;
    match modules.len() {
        1 => Ok(modules.remove(0)),
        0 => Err("no login module".into()),
        n => Err(format!("{n} login modules; give exactly one")),
    }
}

fn parse_modules(value: &str) -> Result<Vec<LoginModule>, String> {
    let tokens = tokenize(value)?;
    let mut modules = Vec::new();
    let mut it = tokens.into_iter().peekable();
    while let Some(tok) = it.next() {
        let Token::Word(class) = tok else {
            return Err("expected a login module class name".into());
        };
        let flag = match it.next() {
            Some(Token::Word(f)) if FLAGS.contains(&f.to_ascii_lowercase().as_str()) => f.to_ascii_lowercase(),
            other => {
                return Err(format!(
                    "login module {class}: expected a control flag (required, requisite, sufficient or optional), found {}",
                    describe(other.as_ref())
                ))
            }
        };
        let mut options = BTreeMap::new();
        loop {
            match it.next() {
                Some(Token::Semicolon) => break,
                Some(Token::Word(key)) => {
                    if it.next() != Some(Token::Equals) {
                        return Err(format!("option {key}: expected `=`"));
                    }
                    let value = match it.next() {
                        Some(Token::Word(v)) | Some(Token::Quoted(v)) => v,
                        other => {
                            return Err(format!(
                                "option {key}: expected a value, found {}",
                                describe(other.as_ref())
                            ))
                        }
                    };
                    options.insert(key, value);
                }
                other => {
                    return Err(format!(
                        "login module {class}: expected an option or `;`, found {}",
                        describe(other.as_ref())
                    ))
                }
            }
        }
        modules.push(LoginModule {
            class,
            flag,
            options,
        });
    }
    Ok(modules)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    Semicolon,
}

fn describe(t: Option<&Token>) -> String {
    match t {
        None => "the end (a missing `;`?)".into(),
        // Words are not echoed: a misplaced one may be a password.
        Some(Token::Word(_)) => "a bare word".into(),
        Some(Token::Quoted(_)) => "a quoted value".into(),
        Some(Token::Equals) => "`=`".into(),
        Some(Token::Semicolon) => "`;`".into(),
    }
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                out.push(Token::Equals);
            }
            ';' => {
                chars.next();
                out.push(Token::Semicolon);
            }
            '"' | '\'' => {
                let quote = c;
                chars.next();
                let mut v = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unterminated quoted value".into()),
                        Some('\\') => match chars.next() {
                            Some(e) => v.push(e),
                            None => return Err("unterminated quoted value".into()),
                        },
                        Some(q) if q == quote => break,
                        Some(ch) => v.push(ch),
                    }
                }
                out.push(Token::Quoted(v));
            }
            _ => {
                let mut w = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() || ch == '=' || ch == ';' || ch == '"' || ch == '\'' {
                        break;
                    }
                    w.push(ch);
                    chars.next();
                }
                out.push(Token::Word(w));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_broker_plain_config_parses() {
        let m = parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required
                username="admin" password="admin-secret"
                user_admin="admin-secret" user_alice="al\"ice";"#,
        )
        .unwrap();
        assert_eq!(
            m.class,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(m.flag, "required");
        assert_eq!(
            m.credentials(),
            Some(("admin".into(), "admin-secret".into()))
        );
        let users = m.plain_users();
        assert_eq!(users["alice"], "al\"ice");
        assert_eq!(users.len(), 2);
        let bare = parse("x.ScramLoginModule REQUIRED username=bob password=pw;").unwrap();
        assert_eq!(bare.credentials(), Some(("bob".into(), "pw".into())));
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let e = |s: &str| parse(s).unwrap_err();
        assert!(e("A required username=\"x\"").contains("missing `;`"));
        assert!(e("A mandatory;").contains("control flag"));
        assert!(e("A required username;").contains("expected `=`"));
        assert!(e("A required username=;").contains("expected a value"));
        assert!(e("A required password=\"x;").contains("unterminated"));
        assert!(e("").contains("no login module"));
        assert!(e("A required; B required;").contains("exactly one"));
        assert!(e("= required;").contains("class name"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,200}") {
            let _ = parse(&s);
        }
    }
}
