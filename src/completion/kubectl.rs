//! kubectl's plugin completion protocol. kubectl 1.26+ completes
//! `kubectl crucible-clean …` by running `kubectl_complete-crucible_clean` (a
//! second name of this binary) with the words after the plugin name, the last
//! one being the word under the cursor (maybe empty). It reads one candidate a
//! line (`value<TAB>description`) and a last line `:<directive>`, a bit set of
//! cobra's `ShellCompDirective` (kubernetes/kubectl
//! `pkg/cmd/plugin/plugin_completion.go`, spf13/cobra `completions.go`).
//!
//! Flag names and fixed values come from the clap definition; namespaces,
//! contexts and label values from `live`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::{Arg, ArgAction, CommandFactory, ValueHint};

use super::live::{live_values, Live, CLUSTER_BUDGET};
use crate::cli::Cli;
use crate::model::{EVAL_ID, TEST_ID};
use crate::request::Connection;

/// The `ShellCompDirective` bits of cobra's completion protocol
/// (spf13/cobra `completions.go`) that the answers use.
pub(crate) mod directive {
    /// Let the shell fall back to completing file names.
    pub(crate) const DEFAULT: u32 = 0;
    pub(crate) const NO_FILE_COMP: u32 = 4;
}

/// One completion choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Suggestion {
    pub(crate) value: String,
    pub(crate) description: String,
}

impl Suggestion {
    pub(crate) fn new(value: impl Into<String>, description: impl Into<String>) -> Self {
        Suggestion {
            value: value.into(),
            description: description.into(),
        }
    }
}

/// The answer to one completion request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) candidates: Vec<Suggestion>,
    pub(crate) directive: u32,
}

impl Answer {
    fn none() -> Self {
        Answer {
            candidates: vec![],
            directive: directive::NO_FILE_COMP,
        }
    }

    /// The protocol's text: one `value\tdescription` a line, then `:<directive>`.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.candidates {
            out.push_str(&one_line(&c.value));
            let desc = one_line(&c.description);
            if !desc.is_empty() {
                out.push('\t');
                out.push_str(&desc);
            }
            out.push('\n');
        }
        out.push_str(&format!(":{}\n", self.directive));
        out
    }
}

fn one_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or("")
        .replace('\t', " ")
        .trim()
        .to_string()
}

/// What the word under the cursor asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Want {
    /// A flag name starting with this prefix.
    Flag(String),
    /// A value of the flag with this clap id, starting with the prefix.
    Value { arg: String, prefix: String },
    /// Nothing to offer (the command takes no positional arguments).
    Nothing,
}

/// The connection and scope flags already on the line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) namespace: Option<String>,
    pub(crate) all_namespaces: bool,
    pub(crate) selector: Option<String>,
    pub(crate) kubeconfig: Option<PathBuf>,
    pub(crate) context: Option<String>,
    /// Ids of the flags already given.
    pub(crate) given: BTreeSet<String>,
}

impl Line {
    pub(crate) fn connection(&self) -> Connection {
        Connection {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            request_timeout: Some(CLUSTER_BUDGET),
        }
    }
}

pub(super) fn command() -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    cmd
}

/// A flag takes the next word as its value (`--flag VALUE`), as opposed to
/// switches and `require_equals` flags such as `--dry-run[=MODE]`.
fn takes_next_word(arg: &Arg) -> bool {
    arg.get_action().takes_values() && !arg.is_require_equals_set()
}

fn find_long<'a>(cmd: &'a clap::Command, name: &str) -> Option<&'a Arg> {
    cmd.get_arguments().find(|a| {
        a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|al| al.contains(&name))
    })
}

fn find_short(cmd: &clap::Command, c: char) -> Option<&Arg> {
    cmd.get_arguments().find(|a| a.get_short() == Some(c))
}

/// Reads the words before the cursor (leniently: unknown flags are skipped)
/// and decides what the last word asks for.
pub(crate) fn analyze(cmd: &clap::Command, words: &[String]) -> (Line, Want) {
    let (current, before) = match words.split_last() {
        Some((last, rest)) => (last.as_str(), rest),
        None => ("", &[][..]),
    };
    let mut line = Line::default();
    let mut pending: Option<&Arg> = None;
    let mut flags_done = false;
    for word in before {
        if let Some(arg) = pending.take() {
            record(&mut line, arg, word);
            continue;
        }
        if flags_done || !word.starts_with('-') || word == "-" {
            continue;
        }
        if word == "--" {
            flags_done = true;
        } else if let Some(long) = word.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let Some(arg) = find_long(cmd, name) else {
                continue;
            };
            match value {
                Some(v) => record(&mut line, arg, v),
                None if takes_next_word(arg) => pending = Some(arg),
                None => record(&mut line, arg, ""),
            }
        } else {
            // A cluster of short flags: `-yA`, `-nfoo`, `-n=foo`, `-n foo`.
            let shorts = &word[1..];
            for (i, c) in shorts.char_indices() {
                let Some(arg) = find_short(cmd, c) else { break };
                if arg.get_action().takes_values() {
                    let rest = &shorts[i + c.len_utf8()..];
                    let rest = rest.strip_prefix('=').unwrap_or(rest);
                    if rest.is_empty() && takes_next_word(arg) {
                        pending = Some(arg);
                    } else {
                        record(&mut line, arg, rest);
                    }
                    break;
                }
                record(&mut line, arg, "");
            }
        }
    }

    let want = if let Some(arg) = pending {
        Want::Value {
            arg: arg.get_id().to_string(),
            prefix: current.to_string(),
        }
    } else if flags_done || !current.starts_with('-') {
        Want::Nothing
    } else if let Some((flag, value)) = current.split_once('=') {
        // cobra's convention: for `--flag=val` the candidates are bare values;
        // kubectl's shell scripts put the `--flag=` back.
        let arg = match flag.strip_prefix("--") {
            Some(long) => find_long(cmd, long),
            None => flag.chars().last().and_then(|c| find_short(cmd, c)),
        };
        match arg {
            Some(arg) if arg.get_action().takes_values() => Want::Value {
                arg: arg.get_id().to_string(),
                prefix: value.to_string(),
            },
            _ => Want::Nothing,
        }
    } else {
        Want::Flag(current.to_string())
    };
    (line, want)
}

fn record(line: &mut Line, arg: &Arg, value: &str) {
    let id = arg.get_id().as_str();
    line.given.insert(id.to_string());
    let value = value.to_string();
    match id {
        "namespace" => line.namespace = Some(value),
        "all_namespaces" => line.all_namespaces = true,
        "selector" => line.selector = Some(value),
        "kubeconfig" => line.kubeconfig = Some(PathBuf::from(value)),
        "context" => line.context = Some(value),
        _ => {}
    }
}

/// Flag names for the prefix: long names, plus a short name typed in full.
/// Hidden flags and flags already given (unless repeatable) are left out.
pub(crate) fn flag_candidates(cmd: &clap::Command, line: &Line, prefix: &str) -> Vec<Suggestion> {
    let mut out = Vec::new();
    for arg in cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_positional())
    {
        let repeatable = matches!(arg.get_action(), ArgAction::Append | ArgAction::Count);
        if line.given.contains(arg.get_id().as_str()) && !repeatable {
            continue;
        }
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        if let Some(long) = arg.get_long() {
            let name = format!("--{long}");
            if name.starts_with(prefix) {
                out.push(Suggestion::new(name, help.clone()));
            }
        }
        if let Some(short) = arg.get_short() {
            let name = format!("-{short}");
            if name == prefix {
                out.push(Suggestion::new(name, help));
            }
        }
    }
    out.sort_by(|a, b| a.value.cmp(&b.value));
    out
}

/// How the value of flag `id` is completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValueSource {
    Fixed(Vec<Suggestion>),
    Live(Live),
    Files,
    Free,
}

pub(crate) fn value_source(cmd: &clap::Command, id: &str) -> ValueSource {
    match id {
        "namespace" => return ValueSource::Live(Live::Namespaces),
        "context" => return ValueSource::Live(Live::Contexts),
        "test_id" => return ValueSource::Live(Live::LabelValues(TEST_ID)),
        "eval_id" => return ValueSource::Live(Live::LabelValues(EVAL_ID)),
        _ => {}
    }
    let Some(arg) = cmd.get_arguments().find(|a| a.get_id().as_str() == id) else {
        return ValueSource::Free;
    };
    // Paths (`--kubeconfig`, a policy file): clap infers the hint from PathBuf.
    if matches!(
        arg.get_value_hint(),
        ValueHint::AnyPath | ValueHint::FilePath | ValueHint::DirPath
    ) {
        return ValueSource::Files;
    }
    let values: Vec<Suggestion> = arg
        .get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| {
            Suggestion::new(
                v.get_name(),
                v.get_help().map(|h| h.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    if values.is_empty() {
        ValueSource::Free
    } else {
        ValueSource::Fixed(values)
    }
}

/// Answers one completion request; `words` are kubectl's arguments after the
/// plugin name, the last one being the word under the cursor (maybe empty).
pub(crate) async fn answer(words: &[String]) -> Answer {
    let cmd = command();
    let (line, want) = analyze(&cmd, words);
    match want {
        Want::Nothing => Answer::none(),
        Want::Flag(prefix) => Answer {
            candidates: flag_candidates(&cmd, &line, &prefix),
            directive: directive::NO_FILE_COMP,
        },
        Want::Value { arg, prefix } => {
            let keep = |c: &Suggestion| c.value.starts_with(prefix.as_str());
            match value_source(&cmd, &arg) {
                ValueSource::Fixed(values) => Answer {
                    candidates: values.into_iter().filter(keep).collect(),
                    directive: directive::NO_FILE_COMP,
                },
                ValueSource::Live(live) => {
                    let values = live_values(live, &line).await;
                    Answer {
                        candidates: values.into_iter().filter(keep).collect(),
                        directive: directive::NO_FILE_COMP,
                    }
                }
                ValueSource::Files => Answer {
                    candidates: vec![],
                    directive: directive::DEFAULT,
                },
                ValueSource::Free => Answer::none(),
            }
        }
    }
}

/// The entry point for `kubectl_complete-crucible_clean WORDS…`: prints the
/// answer and returns the exit code (always 0: kubectl ignores the output of
/// a failed completion program).
pub fn run_kubectl_complete(words: Vec<String>) -> i32 {
    let answer = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => {
            let a = rt.block_on(answer(&words));
            // Do not wait for a DNS lookup still running on a blocking thread.
            rt.shutdown_background();
            a
        }
        Err(_) => Answer::none(),
    };
    print!("{}", answer.render());
    0
}

#[cfg(test)]
mod tests;
