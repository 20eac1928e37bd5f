//! One error type for the whole pipeline. Each variant knows its exit code;
//! `main` prints the message on one line (and, after an RBAC refusal, the
//! Role that would allow the run) and exits with that code.

use thiserror::Error;

/// Exit codes, as documented in the README.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const ABORTED: i32 = 3;
    pub const CLUSTER: i32 = 4;
    pub const INTERRUPTED: i32 = 130;
}

#[derive(Debug, Error)]
pub enum Error {
    /// Bad flags, durations, selectors, watermarks, policy file, namespace guard.
    #[error("{0}")]
    Usage(String),
    /// Stopped before any deletion: declined, `--yes` needed, `--max-delete` exceeded.
    #[error("{0}")]
    Aborted(String),
    /// Cluster unreachable, authentication failed, or a broken kubeconfig.
    #[error("{0}")]
    Cluster(String),
    /// Forbidden by RBAC; `hint` (printed after the message) says what would allow it.
    #[error("{message}")]
    Forbidden {
        message: String,
        hint: Option<String>,
    },
    /// Anything else that went wrong at run time.
    #[error("{0}")]
    Runtime(String),
    /// Ctrl-C or SIGTERM.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Aborted(_) => exit::ABORTED,
            Error::Cluster(_) | Error::Forbidden { .. } => exit::CLUSTER,
            Error::Runtime(_) => exit::FAILED,
            Error::Interrupted => exit::INTERRUPTED,
        }
    }

    /// Lines to print after the one-line message (the Role a refusal needs).
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Forbidden { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }

    /// Adds a hint to an RBAC refusal that has none yet.
    pub fn with_forbidden_hint(self, hint: impl FnOnce() -> String) -> Self {
        match self {
            Error::Forbidden {
                message,
                hint: None,
            } => Error::Forbidden {
                message,
                hint: Some(hint()),
            },
            other => other,
        }
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        Error::Forbidden {
            message: msg.into(),
            hint: None,
        }
    }

    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    /// Classifies an API error met while reading: what the user must fix
    /// (RBAC, credentials, reachability) is exit 4, the rest is exit 1.
    pub fn from_kube(context: &str, err: kube::Error) -> Self {
        match &err {
            kube::Error::Api(status) => match status.code {
                401 => Error::Cluster(format!(
                    "{context}: authentication failed: {}",
                    status.message
                )),
                403 => Error::forbidden(format!("{context}: forbidden: {}", status.message)),
                _ => Error::Runtime(format!("{context}: {} ({})", status.message, status.code)),
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::HttpError(_) => {
                Error::Cluster(format!(
                    "{context}: cluster unreachable: {}",
                    source_chain(&err)
                ))
            }
            _ => Error::Runtime(format!("{context}: {}", source_chain(&err))),
        }
    }
}

/// "outer: inner: innermost" — hyper and rustls errors hide the useful part
/// (connection refused, unknown issuer) in their sources.
pub fn source_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
