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
    /// Stopped before any deletion: `--yes` needed, `--max-delete` exceeded.
    #[error("{0}")]
    Aborted(String),
    /// A person said no (at the prompt, or at `-i`'s list): an answer, not
    /// an error, so it is printed as it is (`aborted: nothing deleted`).
    #[error("{0}")]
    Declined(String),
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
    /// Ctrl-C or SIGTERM. `stop` has said so when the signal came (and how
    /// far the run got); nothing more is printed at the end.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Aborted(_) | Error::Declined(_) => exit::ABORTED,
            Error::Cluster(_) | Error::Forbidden { .. } => exit::CLUSTER,
            Error::Runtime(_) => exit::FAILED,
            Error::Interrupted => exit::INTERRUPTED,
        }
    }

    /// The line `main` prints on stderr, if any: `error: …` for errors, the
    /// answer itself for a "no", nothing after a signal (already said).
    pub fn line(&self) -> Option<String> {
        match self {
            Error::Interrupted => None,
            Error::Declined(answer) => Some(answer.clone()),
            other => Some(format!("error: {other}")),
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
                Error::Cluster(format!("{context}: {}", unreachable(&err)))
            }
            _ => Error::Runtime(format!("{context}: {}", source_chain(&err))),
        }
    }
}

/// The API server and the kubeconfig context of this process's client, as
/// messages name them (set once the configuration is resolved).
static ENDPOINT: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();

/// Records where this process connects: `server` is the API server's URL.
pub(crate) fn set_endpoint(server: &str, context: &str) {
    let _ = ENDPOINT.set((host_port(server), context.to_string()));
}

/// `127.0.0.1:6443` of `https://127.0.0.1:6443/`, as kubectl names a server.
fn host_port(server: &str) -> String {
    match server.parse::<http::Uri>() {
        Ok(uri) => uri
            .authority()
            .map_or_else(|| server.to_string(), |a| a.as_str().to_string()),
        Err(_) => server.to_string(),
    }
}

/// Why the API server could not be reached, naming the server and the
/// context as kubectl does: "the connection to the server 127.0.0.1:1 was
/// refused (context admin) - did you specify the right host or port?".
fn unreachable(err: &(dyn std::error::Error + 'static)) -> String {
    let (server, context) = ENDPOINT.get().cloned().unwrap_or_default();
    let server = if server.is_empty() {
        "the API server".to_string()
    } else {
        format!("the server {server}")
    };
    let context = if context.is_empty() {
        String::new()
    } else {
        format!(" (context {context})")
    };
    let io = io_cause(err);
    let chain = source_chain(err).to_lowercase();
    match io.map(std::io::Error::kind) {
        Some(std::io::ErrorKind::ConnectionRefused) => format!(
            "the connection to {server} was refused{context} - did you specify the right host or port?"
        ),
        Some(std::io::ErrorKind::TimedOut) => {
            format!("{server}{context} did not answer in time (--request-timeout sets how long to wait)")
        }
        _ if is_timeout_text(&chain) => {
            format!("{server}{context} did not answer in time (--request-timeout sets how long to wait)")
        }
        _ if chain.contains("dns error") => format!(
            "cannot resolve the host of {server}{context}: {}",
            io.map_or_else(|| innermost(err), ToString::to_string)
        ),
        _ => format!("cannot reach {server}{context}: {}", innermost(err)),
    }
}

/// Whether an error's text says that time ran out.
pub(crate) fn is_timeout_text(lowercase: &str) -> bool {
    lowercase.contains("timed out")
        || lowercase.contains("timeout")
        || lowercase.contains("deadline has elapsed")
}

/// The I/O error at the root of `err`, if there is one.
fn io_cause<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut found = None;
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            found = Some(io);
        }
        cur = e.source();
    }
    found
}

/// The last links of the chain that say something of their own (the
/// outer ones only wrap them): "invalid peer certificate: UnknownIssuer".
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut messages = vec![];
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        messages.push(plain(&e.to_string()));
        cur = e.source();
    }
    // From the innermost outwards, while an outer message does not already
    // contain the inner one.
    let mut out: Vec<String> = vec![];
    for m in messages.into_iter().rev() {
        if out.iter().any(|o| m.contains(o.as_str())) {
            break;
        }
        out.insert(0, m);
        if out.len() == 2 {
            break;
        }
    }
    out.join(": ")
}

/// An error message without the client library's variant name in front
/// (`ServiceError: `, `HyperError: `…): those name Rust types, not causes.
fn plain(message: &str) -> String {
    const WRAPPERS: [&str; 4] = [
        "ServiceError: ",
        "HyperError: ",
        "HttpError: ",
        "ApiError: ",
    ];
    let mut m = message;
    while let Some(rest) = WRAPPERS.iter().find_map(|w| m.strip_prefix(w)) {
        m = rest;
    }
    m.to_string()
}

/// "outer: inner: innermost" — hyper and rustls errors hide the useful part
/// (connection refused, unknown issuer) in their sources. The client
/// library's variant names are left out.
pub fn source_chain(err: &dyn std::error::Error) -> String {
    let mut out = plain(&err.to_string());
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = plain(&e.to_string());
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn service(kind: std::io::ErrorKind, text: &str) -> kube::Error {
        kube::Error::Service(Box::new(std::io::Error::new(kind, text.to_string())))
    }

    #[test]
    fn an_unreachable_server_is_named_with_its_context_and_no_type_names() {
        set_endpoint("https://127.0.0.1:1/", "admin");
        let refused = Error::from_kube(
            "cannot list pods",
            service(
                std::io::ErrorKind::ConnectionRefused,
                "Connection refused (os error 111)",
            ),
        );
        assert_eq!(refused.exit_code(), 4);
        assert_eq!(
            refused.line().unwrap(),
            "error: cannot list pods: the connection to the server 127.0.0.1:1 was refused (context admin) - did you specify the right host or port?"
        );
        let slow = Error::from_kube(
            "cannot list pods",
            service(std::io::ErrorKind::Other, "deadline has elapsed"),
        );
        assert_eq!(
            slow.to_string(),
            "cannot list pods: the server 127.0.0.1:1 (context admin) did not answer in time (--request-timeout sets how long to wait)"
        );
        let tls = Error::from_kube(
            "cannot list pods",
            service(
                std::io::ErrorKind::InvalidData,
                "invalid peer certificate: UnknownIssuer",
            ),
        );
        assert_eq!(
            tls.to_string(),
            "cannot list pods: cannot reach the server 127.0.0.1:1 (context admin): invalid peer certificate: UnknownIssuer"
        );
        for e in [refused, slow, tls] {
            assert!(!e.to_string().contains("Error:"), "{e}");
        }
    }

    #[test]
    fn a_no_is_printed_as_an_answer_and_a_signal_not_at_all() {
        let no = Error::Declined("aborted: nothing deleted".into());
        assert_eq!(no.line().unwrap(), "aborted: nothing deleted");
        assert_eq!(no.exit_code(), 3);
        assert_eq!(Error::Interrupted.line(), None);
        assert_eq!(Error::Interrupted.exit_code(), 130);
        assert_eq!(
            Error::usage("bad").line().unwrap(),
            "error: bad",
            "errors keep their prefix"
        );
    }

    #[test]
    fn the_chain_leaves_out_the_client_librarys_variant_names() {
        let e = service(std::io::ErrorKind::Other, "client error (Connect)");
        assert_eq!(source_chain(&e), "client error (Connect)");
    }
}
