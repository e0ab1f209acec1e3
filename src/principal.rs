//! Who a connection acts as, in Kafka's `Type:name` form: `User:ANONYMOUS` until it
//! authenticates, `User:<name>` after SASL, and on a TLS listener with client
//! certificates the certificate's distinguished name mapped by
//! `ssl.principal.mapping.rules` (KIP-371): `DEFAULT` gives the whole name as Java's
//! `X500Principal.getName()` writes it (RFC 2253: `CN=alice,OU=eng,O=acme,C=US`), and
//! `RULE:pattern/replacement/[LU]` rewrites a name the pattern matches whole (Java's
//! `$1` group references; `L`/`U` lower- or upper-case the result). The first rule that
//! applies wins; a name no rule applies to is refused.

use regex::Regex;

/// The principal of a connection that has not authenticated.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// One mapping rule.
#[derive(Debug, Clone)]
pub enum Rule {
    Default,
    Rewrite {
        pattern: Regex,
        replacement: String,
        case: Option<char>,
    },
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        match (self, other) {
            (Rule::Default, Rule::Default) => true,
            (
                Rule::Rewrite {
                    pattern: a,
                    replacement: ra,
                    case: ca,
                },
                Rule::Rewrite {
                    pattern: b,
                    replacement: rb,
                    case: cb,
                },
            ) => a.as_str() == b.as_str() && ra == rb && ca == cb,
            _ => false,
        }
    }
}

impl Eq for Rule {}

/// Parses `ssl.principal.mapping.rules`.
pub fn parse_rules(s: &str) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("DEFAULT") {
            rules.push(Rule::Default);
            rest = r;
        } else if let Some(r) = rest.strip_prefix("RULE:") {
            let (pattern, r) = until_slash(r).ok_or("a RULE needs pattern/replacement/")?;
            let r = r
                .strip_prefix('/')
                .ok_or("a RULE needs pattern/replacement/")?;
            let (replacement, r) = until_slash(r).unwrap_or((r.to_string(), ""));
            let r = r.strip_prefix('/').unwrap_or(r);
            let (case, r) = match r.chars().next() {
                Some(c @ ('L' | 'U')) => (Some(c), &r[1..]),
                _ => (None, r),
            };
            let anchored = Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|e| format!("bad pattern {pattern:?}: {e}"))?;
            rules.push(Rule::Rewrite {
                pattern: anchored,
                replacement: java_replacement(&replacement),
                case,
            });
            rest = r;
        } else {
            return Err(format!(
                "expected DEFAULT or RULE:pattern/replacement/[LU] at {rest:?}"
            ));
        }
        rest = rest.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    if rules.is_empty() {
        return Err("no rule".into());
    }
    Ok(rules)
}

/// The text up to the next unescaped `/` (with `\/` unescaped), and what follows.
fn until_slash(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '/' => return Some((out, &s[i..])),
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    None
}

/// Java's `$1` becomes `${1}` (Rust would read `$1x` as a group named `1x`).
fn java_replacement(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            let mut n = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n.push(*d);
                chars.next();
            }
            out.push_str(&format!("${{{n}}}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// The principal name for distinguished name `dn` under `rules`, or `None` when no rule
/// applies.
pub fn map_name(rules: &[Rule], dn: &str) -> Option<String> {
    rules.iter().find_map(|r| match r {
        Rule::Default => Some(dn.to_string()),
        Rule::Rewrite {
            pattern,
            replacement,
            case,
        } => {
            if !pattern.is_match(dn) {
                return None;
            }
            let out = pattern.replace(dn, replacement.as_str()).into_owned();
            Some(match case {
                Some('L') => out.to_lowercase(),
                Some('U') => out.to_uppercase(),
                _ => out,
            })
        }
    })
}

/// The subject of a DER certificate as RFC 2253 writes it (most specific first).
pub fn subject_dn(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        let parts: Vec<String> = rdn
            .iter()
            .map(|a| {
                let key = short_name(&a.attr_type().to_id_string());
                let value = a.as_str().map(escape).unwrap_or_else(|_| {
                    format!(
                        "#{}",
                        a.attr_value()
                            .data
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect::<String>()
                    )
                });
                format!("{key}={value}")
            })
            .collect();
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// The keywords `X500Principal.getName()` uses; other attributes by OID.
fn short_name(oid: &str) -> String {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        other => return other.to_string(),
    }
    .to_string()
}

/// RFC 2253 escaping of an attribute value.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kip_371_rules_map_names() {
        let rules = parse_rules(
            r"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/, RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, DEFAULT",
        )
        .unwrap();
        assert_eq!(rules.len(), 4);
        let m = |dn: &str| map_name(&rules, dn).unwrap();
        assert_eq!(
            m("CN=kafka-broker,OU=ServiceUsers,O=acme,C=US"),
            "kafka-broker"
        );
        assert_eq!(
            m("CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Santa Clara,ST=CA,C=US"),
            "duke@javasoft"
        );
        assert_eq!(m("OU=x,cn=alice.b,O=y"), "ALICE.B");
        assert_eq!(m("O=only"), "O=only");
        let strict = parse_rules("RULE:^CN=(.*)$/$1x/").unwrap();
        assert_eq!(
            map_name(&strict, "CN=a"),
            Some("ax".into()),
            "$1 followed by a letter"
        );
        assert_eq!(map_name(&strict, "O=b"), None, "no rule applies");
        let slash = parse_rules(r"RULE:^CN=(.*)\/(.*)$/$2/").unwrap();
        assert_eq!(map_name(&slash, "CN=a/b"), Some("b".into()));
        for bad in ["", "RULE:", "RULE:x", "WHATEVER", "RULE:(/x/"] {
            assert!(parse_rules(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_are_escaped_as_rfc_2253_says() {
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape(" x "), "\\ x\\ ");
        assert_eq!(escape("#x"), "\\#x");
        assert_eq!(short_name("2.5.4.3"), "CN");
        assert_eq!(short_name("1.2.3"), "1.2.3");
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(s in ".{0,80}") {
            if let Ok(rules) = parse_rules(&s) {
                let _ = map_name(&rules, "CN=x,O=y");
            }
        }
    }
}
