//! Label selectors in kubectl's syntax, parsed client-side so that a
//! malformed one is a usage error (exit 2) before any request is sent, and
//! evaluated client-side by the selection stage.

use std::fmt;

use crate::model::LabelSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Selector(pub Vec<Requirement>);

impl Selector {
    pub(crate) fn parse(input: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top_level(input)? {
            let part = part.trim();
            if part.is_empty() {
                if input.trim().is_empty() {
                    continue;
                }
                return Err(format!("invalid selector {input:?}: empty requirement"));
            }
            reqs.push(
                parse_requirement(part).map_err(|e| format!("invalid selector {input:?}: {e}"))?,
            );
        }
        Ok(Selector(reqs))
    }

    pub(crate) fn matches(&self, labels: &impl LabelSet) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => labels.label(k) != Some(v.as_str()),
            Requirement::In(k, vs) => labels.label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => labels.label(k).is_none_or(|l| !vs.iter().any(|v| v == l)),
            Requirement::Exists(k) => labels.label(k).is_some(),
            Requirement::DoesNotExist(k) => labels.label(k).is_none(),
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first requirement that negates an empty value (`k!=`, `k notin
    /// (a,)`), as written: it matches nearly every object.
    pub(crate) fn empty_negation(&self) -> Option<String> {
        self.0.iter().find_map(|r| match r {
            Requirement::NotEquals(k, v) if v.is_empty() => Some(format!("{k}!=")),
            Requirement::NotIn(k, vs) if vs.iter().any(String::is_empty) => {
                Some(format!("{k} notin ({})", vs.join(",")))
            }
            _ => None,
        })
    }

    /// Adds `key in (values)`; no-op for an empty list.
    pub(crate) fn with_in(mut self, key: &str, values: &[String]) -> Self {
        if !values.is_empty() {
            self.0
                .push(Requirement::In(key.to_string(), values.to_vec()));
        }
        self
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|r| match r {
                Requirement::Equals(k, v) => format!("{k}={v}"),
                Requirement::NotEquals(k, v) => format!("{k}!={v}"),
                Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Requirement::Exists(k) => k.clone(),
                Requirement::DoesNotExist(k) => format!("!{k}"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(input: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("invalid selector {input:?}: unbalanced ')'"));
                }
            }
            ',' if depth == 0 => {
                out.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("invalid selector {input:?}: unbalanced '('"));
    }
    out.push(&input[start..]);
    Ok(out)
}

fn parse_requirement(s: &str) -> Result<Requirement, String> {
    if let Some(key) = s.strip_prefix('!') {
        let key = key.trim();
        validate_key(key)?;
        return Ok(Requirement::DoesNotExist(key.to_string()));
    }
    for (op, neg) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((k, v)) = s.split_once(op) {
            let (k, v) = (k.trim(), v.trim());
            validate_key(k)?;
            validate_value(v)?;
            return Ok(if neg {
                Requirement::NotEquals(k.into(), v.into())
            } else {
                Requirement::Equals(k.into(), v.into())
            });
        }
    }
    let words: Vec<&str> = s.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let key = words[0];
        let rest = words[1].trim_start();
        let (neg, list) = if let Some(r) = rest.strip_prefix("notin") {
            (true, r)
        } else if let Some(r) = rest.strip_prefix("in") {
            (false, r)
        } else {
            return Err(format!(
                "unknown operator in {s:?} (use =, ==, !=, in, notin)"
            ));
        };
        validate_key(key)?;
        let list = list.trim();
        let inner = list
            .strip_prefix('(')
            .and_then(|l| l.strip_suffix(')'))
            .ok_or_else(|| format!("expected a parenthesised list in {s:?}"))?;
        let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
        for v in &values {
            validate_value(v)?;
        }
        return Ok(if neg {
            Requirement::NotIn(key.into(), values)
        } else {
            Requirement::In(key.into(), values)
        });
    }
    validate_key(s)?;
    Ok(Requirement::Exists(s.to_string()))
}

fn is_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A label key: optional DNS-subdomain prefix and `/`, then a name of at most 63 characters.
pub(crate) fn validate_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|seg| {
                !seg.is_empty()
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !seg.starts_with('-')
                    && !seg.ends_with('-')
            });
        if !ok {
            return Err(format!("invalid label key {k:?}: bad prefix"));
        }
    }
    if !is_name_part(name) {
        return Err(format!(
            "invalid label key {k:?}: must be at most 63 alphanumeric characters, '-', '_' or '.', starting and ending alphanumeric"
        ));
    }
    Ok(())
}

/// A label value: empty, or at most 63 characters of the name alphabet.
pub(crate) fn validate_value(v: &str) -> Result<(), String> {
    if v.is_empty() || is_name_part(v) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value {v:?}: must be at most 63 alphanumeric characters, '-', '_' or '.', starting and ending alphanumeric"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_kubectl_operator() {
        let s = Selector::parse(
            "app=evaluation,tier==x,env!=prod,test-id in (a, b),zone notin (z),team,!legacy",
        )
        .unwrap();
        assert_eq!(s.0.len(), 7);
        assert_eq!(
            s.0[3],
            Requirement::In("test-id".into(), vec!["a".into(), "b".into()])
        );
        assert_eq!(
            s.to_string(),
            "app=evaluation,tier=x,env!=prod,test-id in (a,b),zone notin (z),team,!legacy"
        );
    }

    #[test]
    fn matches_like_the_api_server() {
        let s = Selector::parse("app=evaluation,test-id in (t1,t2),!keep").unwrap();
        assert!(s.matches(&labels(&[("app", "evaluation"), ("test-id", "t1")])));
        assert!(!s.matches(&labels(&[("app", "evaluation"), ("test-id", "t3")])));
        assert!(!s.matches(&labels(&[("app", "evaluation")])));
        assert!(!s.matches(&labels(&[
            ("app", "evaluation"),
            ("test-id", "t1"),
            ("keep", "")
        ])));
        let ne = Selector::parse("env!=prod,zone notin (a)").unwrap();
        assert!(ne.matches(&labels(&[])), "!= and notin match absent keys");
        assert!(Selector::parse("").unwrap().matches(&labels(&[("x", "y")])));
    }

    #[test]
    fn rejects_malformed_selectors() {
        for bad in [
            "app=",
            "=x",
            "app=eval uation",
            "a in (x",
            "a in x",
            "a foo (x)",
            "app=evaluation,",
            "-bad",
            "a)",
            "UPPER.example/x=y",
            "k=v-",
        ] {
            if bad == "app=" {
                // an empty value is legal
                assert!(Selector::parse(bad).is_ok());
                continue;
            }
            assert!(Selector::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn with_in_adds_a_set_requirement() {
        let s = Selector::parse("app=evaluation")
            .unwrap()
            .with_in("test-id", &["x".into()])
            .with_in("eval-id", &[]);
        assert_eq!(s.to_string(), "app=evaluation,test-id in (x)");
    }
}
#[cfg(test)]
mod empty_negation {
    use super::Selector;

    #[test]
    fn a_negation_of_an_empty_value_is_named() {
        let neg = |s: &str| Selector::parse(s).unwrap().empty_negation();
        assert_eq!(neg("app!="), Some("app!=".into()));
        assert_eq!(neg("team=red,app!="), Some("app!=".into()));
        assert_eq!(neg("app notin ()"), Some("app notin ()".into()));
        assert_eq!(neg("app notin (a,)"), Some("app notin (a,)".into()));
        for fine in [
            "app=",
            "app!=x",
            "app notin (a,b)",
            "app in ()",
            "!app",
            "app",
        ] {
            assert_eq!(neg(fine), None, "{fine}");
        }
    }
}
