//! Builds the API client from kubectl-style connection flags: `--kubeconfig`,
//! `KUBECONFIG` (several paths, merged as kubectl merges them), `--context`,
//! `--request-timeout`; in a pod without a kubeconfig, the in-cluster config.
//! A kubeconfig or context that cannot be used is exit 4, as an unreachable
//! cluster is: the command line was fine, the connection is not.

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};

use crate::error::{Error, Result};
use crate::request::Connection;

pub(crate) const USER_AGENT: &str = concat!("kubectl-crucible-clean/", env!("CARGO_PKG_VERSION"));

/// What the report and the prompt say about where we are connected.
#[derive(Debug, Clone, Default)]
pub(crate) struct Endpoint {
    pub(crate) context: String,
    pub(crate) server: String,
    /// The kube-system namespace's uid, once read (see `inventory::cluster_uid`).
    pub(crate) cluster_uid: Option<String>,
}

/// The kubeconfig kubectl would use: `--kubeconfig`, else `KUBECONFIG` (its
/// files merged), else `~/.kube/config`; `None` when there is none.
pub(crate) fn kubeconfig(conn: &Connection) -> Result<Option<Kubeconfig>> {
    let read =
        |path: &std::path::Path| Kubeconfig::read_from(path).map_err(|e| kubeconfig_error(e, conn));
    if let Some(path) = &conn.kubeconfig {
        return read(path).map(Some);
    }
    if let Some(k) = Kubeconfig::from_env().map_err(|e| kubeconfig_error(e, conn))? {
        return Ok(Some(k));
    }
    match home_kubeconfig() {
        Some(path) if path.exists() => read(&path).map(Some),
        _ => Ok(None),
    }
}

/// Resolves the configuration without contacting the cluster.
pub(crate) async fn config(conn: &Connection) -> Result<(Config, Endpoint)> {
    let kubeconfig = kubeconfig(conn)?;

    let (mut config, context) = match kubeconfig {
        Some(kc) => {
            let context = conn
                .context
                .clone()
                .or_else(|| kc.current_context.clone())
                .unwrap_or_default();
            check_context(&kc, &context)?;
            check_user_of_context(&kc, &context)?;
            let opts = KubeConfigOptions {
                context: conn.context.clone(),
                ..Default::default()
            };
            let config = Config::from_custom_kubeconfig(kc, &opts)
                .await
                .map_err(|e| kubeconfig_error(e, conn))?;
            (config, context)
        }
        None => {
            if conn.context.is_some() {
                return Err(Error::Cluster(
                    "--context given, but no kubeconfig found (use --kubeconfig or KUBECONFIG)"
                        .into(),
                ));
            }
            let config = Config::incluster().map_err(|_| {
                Error::Cluster(
                    "no kubeconfig found: pass --kubeconfig PATH or set KUBECONFIG (or run inside a pod)"
                        .into(),
                )
            })?;
            (config, "in-cluster".to_string())
        }
    };

    // A CLI must answer, not retry for minutes: kube's default policy retries
    // 429/503/504 up to 15 times. Our own short retry lives in `retry`.
    config.default_retry = false;
    if let Some(t) = conn.request_timeout {
        config.connect_timeout = Some(t);
        config.read_timeout = Some(t);
        config.write_timeout = Some(t);
    } else {
        config.connect_timeout = Some(Duration::from_secs(10));
    }
    if let Ok(v) = http::HeaderValue::from_str(USER_AGENT) {
        config.headers.push((http::header::USER_AGENT, v));
    }
    let target = Endpoint {
        context,
        server: without_userinfo(&config.cluster_url.to_string()),
        cluster_uid: None,
    };
    crate::error::set_endpoint(&target.server, &target.context);
    Ok((config, target))
}

/// `url` without the `user:password@` a kubeconfig's server may carry: the
/// server as the report, the logs, plan files and errors show it.
pub(crate) fn without_userinfo(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match scheme {
        Some(s) => format!("{s}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}

pub(crate) async fn connect(conn: &Connection) -> Result<(Client, Endpoint)> {
    let (config, target) = config(conn).await?;
    let client = Client::try_from(config)
        .map_err(|e| Error::Cluster(format!("cannot set up the client: {e}")))?;
    Ok((client, target))
}

/// How many of the kubeconfig's contexts an unknown `--context` lists.
const CONTEXTS_LISTED: usize = 5;

/// A context the kubeconfig lacks is refused naming a few it has, as a
/// person then knows what to type.
fn check_context(kc: &Kubeconfig, context: &str) -> Result<()> {
    if context.is_empty() || kc.contexts.iter().any(|c| c.name == context) {
        return Ok(());
    }
    let mut names: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let known = match names.len() {
        0 => "it has no contexts".to_string(),
        n if n <= CONTEXTS_LISTED => format!("it has {}", names.join(", ")),
        n => format!(
            "it has {} and {} more",
            names[..CONTEXTS_LISTED].join(", "),
            n - CONTEXTS_LISTED
        ),
    };
    Err(Error::Cluster(format!(
        "context {context:?} not found in the kubeconfig; {known}"
    )))
}

/// A client for `--watch`'s watches: the same connection, without
/// `--request-timeout`'s read timeout (a watch may rightly be silent for
/// minutes; kube-runtime's watcher notices a dead stream by itself).
pub(crate) async fn connect_watch(conn: &Connection) -> Result<Client> {
    let (mut config, _) = config(conn).await?;
    config.read_timeout = None;
    Client::try_from(config).map_err(|e| Error::Cluster(format!("cannot set up the client: {e}")))
}

/// kube falls back to anonymous requests when the context names a user the
/// kubeconfig lacks; kubectl refuses. So do we, naming the user.
fn check_user_of_context(kc: &Kubeconfig, context: &str) -> Result<()> {
    let Some(user) = kc
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.user.clone())
        .filter(|u| !u.is_empty())
    else {
        return Ok(());
    };
    if kc.auth_infos.iter().any(|a| a.name == user) {
        Ok(())
    } else {
        Err(Error::Cluster(format!(
            "user {user:?} of context {context:?} is not in the kubeconfig"
        )))
    }
}

#[cfg(test)]
#[test]
fn userinfo_never_shows() {
    for (url, shown) in [
        (
            "https://alice:s3cr3tpass@10.0.0.1:6443",
            "https://10.0.0.1:6443",
        ),
        ("https://alice:p@ss@h:6443/", "https://h:6443/"),
        ("https://token@h/k8s?x=a@b", "https://h/k8s?x=a@b"),
        ("https://h:6443", "https://h:6443"),
        ("http://[::1]:8080/", "http://[::1]:8080/"),
        ("u:p@h:1", "h:1"),
    ] {
        assert_eq!(without_userinfo(url), shown, "{url}");
    }
}

fn home_kubeconfig() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".kube").join("config"))
}

fn kubeconfig_error(e: KubeconfigError, conn: &Connection) -> Error {
    match e {
        KubeconfigError::ReadConfig(io, path) => {
            Error::Cluster(format!("cannot read kubeconfig {}: {io}", path.display()))
        }
        KubeconfigError::LoadContext(ctx) => {
            Error::Cluster(format!("context {ctx:?} not found in the kubeconfig"))
        }
        KubeconfigError::CurrentContextNotSet => {
            Error::Cluster("the kubeconfig has no current context: pass --context NAME".into())
        }
        KubeconfigError::LoadClusterOfContext(c) => Error::Cluster(format!(
            "cluster {c:?} of the context is not in the kubeconfig"
        )),
        other => {
            let ctx = conn
                .context
                .as_deref()
                .map(|c| format!(" (context {c:?})"))
                .unwrap_or_default();
            // Parsers add a source excerpt on further lines: one line is enough.
            let chain = crate::error::source_chain(&other);
            Error::Cluster(format!(
                "invalid kubeconfig{ctx}: {}",
                chain.lines().next().unwrap_or_default().trim_end()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_contexts(names: &[&str]) -> Kubeconfig {
        let contexts: Vec<String> = names
            .iter()
            .map(|n| format!("- name: {n}\n  context: {{cluster: c, user: u}}\n"))
            .collect();
        Kubeconfig::from_yaml(&format!(
            "apiVersion: v1\nkind: Config\ncontexts:\n{}",
            contexts.concat()
        ))
        .unwrap()
    }

    #[test]
    fn an_unknown_context_names_some_that_exist() {
        let kc = with_contexts(&["viewer", "admin", "ci-runner"]);
        assert!(check_context(&kc, "admin").is_ok());
        assert_eq!(
            check_context(&kc, "nosuch").unwrap_err().to_string(),
            "context \"nosuch\" not found in the kubeconfig; it has admin, ci-runner, viewer"
        );
        let many = with_contexts(&["a", "b", "c", "d", "e", "f", "g"]);
        assert_eq!(
            check_context(&many, "x").unwrap_err().to_string(),
            "context \"x\" not found in the kubeconfig; it has a, b, c, d, e and 2 more"
        );
        let e = check_context(&with_contexts(&[]), "x").unwrap_err();
        assert_eq!(e.exit_code(), 4);
        assert!(e.to_string().ends_with("it has no contexts"), "{e}");
    }
}
