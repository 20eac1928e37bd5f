//! The policy file format: strict serde types (`deny_unknown_fields`) and
//! value checks that run inside the deserializer, so serde_norway reports
//! every error at the value's line and key path.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::ValueEnum;
use serde::de::Visitor;
use serde::{Deserialize, Deserializer};

use super::{Partial, API_VERSION, KIND};
use crate::cli::{Prefer, Strategy};
use crate::request::predelete::{HOOK_VARIABLES, MAX_HOOK_TIMEOUT_SECONDS};
use crate::selector::Selector;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct FileSpec {
    #[serde(default, rename = "apiVersion", deserialize_with = "api_version")]
    _api_version: (),
    #[serde(default, rename = "kind", deserialize_with = "kind")]
    _kind: (),
    #[serde(default, deserialize_with = "label_key")]
    pub(super) priority_label: Option<String>,
    #[serde(default)]
    pub(super) priorities: BTreeMap<String, Factor>,
    #[serde(deserialize_with = "non_empty")]
    pub(super) rules: Vec<RuleSpec>,
    /// Commands to run before each object of a kind is deleted.
    #[serde(default)]
    pub(super) hooks: HooksSpec,
}

/// `hooks: {pod: {...}, job: {...}}`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct HooksSpec {
    pub(super) pod: Option<HookSpec>,
    pub(super) job: Option<HookSpec>,
}

/// One kind's hooks: `beforeDelete: [program, args…]`, `timeoutSeconds: N`,
/// `env: [NAME…]` (the cleaner's variables the hook also gets).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct HookSpec {
    #[serde(deserialize_with = "command")]
    pub(super) before_delete: Vec<String>,
    #[serde(default, deserialize_with = "timeout_seconds")]
    pub(super) timeout_seconds: Option<u64>,
    #[serde(default, deserialize_with = "env_names")]
    pub(super) env: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RuleSpec {
    pub(super) name: String,
    #[serde(deserialize_with = "selector")]
    pub(super) selector: Selector,
    #[serde(default, deserialize_with = "strategy")]
    strategy: Option<Strategy>,
    #[serde(default, deserialize_with = "duration")]
    older_than: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    keep_succeeded_for: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    keep_failed_for: Option<Duration>,
    keep_last: Option<usize>,
    #[serde(default, deserialize_with = "fraction")]
    threshold: Option<f64>,
    #[serde(default, deserialize_with = "fraction")]
    high_watermark: Option<f64>,
    #[serde(default, deserialize_with = "fraction")]
    low_watermark: Option<f64>,
    #[serde(default, deserialize_with = "prefer")]
    prefer: Option<Prefer>,
    /// Every finished object the selector matches (the rule's only criterion).
    all: Option<bool>,
}

impl RuleSpec {
    pub(super) fn partial(&self) -> Partial {
        Partial {
            strategy: self.strategy,
            older_than: self.older_than,
            keep_succeeded_for: self.keep_succeeded_for,
            keep_failed_for: self.keep_failed_for,
            keep_last: self.keep_last,
            threshold: self.threshold,
            high_watermark: self.high_watermark,
            low_watermark: self.low_watermark,
            prefer: self.prefer,
            all: self.all,
        }
    }
}

pub(super) struct Factor(pub(super) f64);

impl<'de> Deserialize<'de> for Factor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        number(d, "a retention multiplier such as 4 or 0.5", |v| {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(format!(
                    "a priority multiplies retention and must be above 0, e.g. 4 or 0.5, not {v}"
                ))
            }
        })
        .map(Factor)
    }
}

// The checks below run inside the deserializer's visit of the value, so
// serde_norway places their errors at the value's line and key path.

/// A string scalar turned into `T` by `parse`.
fn text<'de, D: Deserializer<'de>, T>(
    d: D,
    expecting: &'static str,
    parse: impl FnOnce(&str) -> std::result::Result<T, String>,
) -> std::result::Result<T, D::Error> {
    struct V<F>(&'static str, F);
    impl<'de, T, F: FnOnce(&str) -> std::result::Result<T, String>> Visitor<'de> for V<F> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<T, E> {
            (self.1)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V(expecting, parse))
}

/// A number scalar checked by `check`.
fn number<'de, D: Deserializer<'de>>(
    d: D,
    expecting: &'static str,
    check: impl FnOnce(f64) -> std::result::Result<f64, String>,
) -> std::result::Result<f64, D::Error> {
    struct V<F>(&'static str, F);
    impl<'de, F: FnOnce(f64) -> std::result::Result<f64, String>> Visitor<'de> for V<F> {
        type Value = f64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(self.0)
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<f64, E> {
            (self.1)(v).map_err(E::custom)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<f64, E> {
            self.visit_f64(v as f64)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<f64, E> {
            self.visit_f64(v as f64)
        }
    }
    d.deserialize_f64(V(expecting, check))
}

fn api_version<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<(), D::Error> {
    text(d, "crucible-clean/v1", |v| {
        if v == API_VERSION {
            Ok(())
        } else {
            Err(format!(
                "unsupported apiVersion {v:?}; this version reads {API_VERSION}"
            ))
        }
    })
}

fn kind<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<(), D::Error> {
    text(d, "CleanupPolicy", |v| {
        if v == KIND {
            Ok(())
        } else {
            Err(format!("kind must be {KIND}, not {v:?}"))
        }
    })
}

fn non_empty<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<RuleSpec>, D::Error> {
    let v = Vec::<RuleSpec>::deserialize(d)?;
    if v.is_empty() {
        return Err(serde::de::Error::custom(
            "no rules: add at least one rule with a name and a selector",
        ));
    }
    Ok(v)
}

fn selector<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Selector, D::Error> {
    text(d, "a label selector such as app=evaluation,test-id", |s| {
        let sel = Selector::parse(s)?;
        if sel.is_empty() {
            return Err(
                "an empty selector would match every object; give one such as app=evaluation"
                    .into(),
            );
        }
        if let Some(r) = sel.empty_negation() {
            return Err(format!(
                "{r} has an empty value and would match nearly every object"
            ));
        }
        Ok(sel)
    })
}

fn label_key<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    text(d, "a label key such as crucible-clean/priority", |s| {
        crate::selector::validate_key(s)?;
        Ok(Some(s.to_string()))
    })
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Duration>, D::Error> {
    text(d, "a duration such as 30m", |s| {
        let d = crate::duration::parse(s)?;
        if d.is_zero() {
            return Err("a duration must be more than 0, e.g. 30m".into());
        }
        Ok(d)
    })
    .map(Some)
}

fn fraction<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<f64>, D::Error> {
    number(d, "a fraction such as 0.8", |v| {
        if v > 0.0 && v <= 1.0 {
            Ok(v)
        } else {
            Err(format!(
                "must be a fraction above 0 and at most 1, e.g. 0.8, not {v}"
            ))
        }
    })
    .map(Some)
}

fn strategy<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Strategy>, D::Error> {
    text(d, "a strategy", |s| {
        Strategy::from_str(s, false).map(Some).map_err(|_| {
            let names: Vec<&str> = Strategy::SELECTABLE.iter().map(|s| s.name()).collect();
            format!("unknown strategy {s:?}; use one of {}", names.join(", "))
        })
    })
}

fn prefer<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Prefer>, D::Error> {
    text(d, "an order", |s| {
        Prefer::from_str(s, false)
            .map(Some)
            .map_err(|_| format!("unknown order {s:?}; use oldest, failed or succeeded"))
    })
}

fn command<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    if v.is_empty() || v[0].trim().is_empty() {
        return Err(serde::de::Error::custom(
            "beforeDelete needs a program and its arguments, e.g. [./hooks/record.sh, --verbose]",
        ));
    }
    Ok(v)
}

fn timeout_seconds<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    number(d, "a number of seconds such as 10", |v| {
        if v.fract() == 0.0 && v >= 1.0 && v <= MAX_HOOK_TIMEOUT_SECONDS as f64 {
            Ok(v)
        } else {
            Err(format!(
                "timeoutSeconds must be a whole number of seconds from 1 to {MAX_HOOK_TIMEOUT_SECONDS}, not {v}"
            ))
        }
    })
    .map(|v| Some(v as u64))
}

/// `env:`: names of environment variables, none of them one the cleaner
/// sets itself for each object.
fn env_names<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    for n in &names {
        let mut chars = n.chars();
        let first = chars.next();
        let valid = first.is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(serde::de::Error::custom(format!(
                "env: {n:?} is not a variable name (letters, digits and _, not starting with a digit), e.g. [SLACK_WEBHOOK_URL]"
            )));
        }
        if HOOK_VARIABLES.contains(&n.as_str()) {
            return Err(serde::de::Error::custom(format!(
                "env: {n:?} is set by the cleaner for each object; list only your own variables"
            )));
        }
    }
    Ok(names)
}
