//! The API server's audit log (`DIR/audit.log`): which requests were made, by whom.

// rustc judges dead code per test binary, and every test binary compiles this whole
// module while using only part of it (see mod.rs).
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use serde::Deserialize;

use super::cluster::{admin_client, cluster, SUPPORT_USER_AGENT};
use super::objects::random_suffix;
use super::wait::poll_until;

/// The plugin's user agent (followed by `/VERSION`).
pub const PLUGIN_USER_AGENT: &str = "kubectl-crucible-clean";

/// One audit event (stage ResponseComplete) of `DIR/audit.log`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    #[serde(rename = "auditID", default)]
    pub audit_id: String,
    #[serde(default)]
    pub stage: String,
    pub verb: String,
    #[serde(rename = "requestURI", default)]
    pub request_uri: String,
    pub user: AuditUser,
    #[serde(default)]
    pub user_agent: String,
    #[serde(default)]
    pub object_ref: Option<AuditObjectRef>,
    #[serde(default)]
    pub response_status: Option<AuditResponseStatus>,
    #[serde(default)]
    pub request_received_timestamp: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct AuditUser {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditObjectRef {
    pub resource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub api_group: Option<String>,
    pub api_version: Option<String>,
    pub subresource: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct AuditResponseStatus {
    #[serde(default)]
    pub code: i32,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
}

impl AuditEvent {
    pub fn code(&self) -> i32 {
        self.response_status.as_ref().map(|s| s.code).unwrap_or(0)
    }
    pub fn resource(&self) -> &str {
        self.object_ref
            .as_ref()
            .and_then(|o| o.resource.as_deref())
            .unwrap_or("")
    }
    pub fn subresource(&self) -> &str {
        self.object_ref
            .as_ref()
            .and_then(|o| o.subresource.as_deref())
            .unwrap_or("")
    }
    pub fn namespace(&self) -> &str {
        self.object_ref
            .as_ref()
            .and_then(|o| o.namespace.as_deref())
            .unwrap_or("")
    }
    pub fn name(&self) -> &str {
        self.object_ref
            .as_ref()
            .and_then(|o| o.name.as_deref())
            .unwrap_or("")
    }
    pub fn is_mutating(&self) -> bool {
        MUTATING_VERBS.contains(&self.verb.as_str())
    }
}

pub const MUTATING_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// Which requests [`mutating_requests`] returns.
///
/// By default: everyone's except this module's own clients (user agent
/// [`SUPPORT_USER_AGENT`]), i.e. the plugin's, the controllers' and kwok's. Narrow it
/// with a user-agent prefix and/or a user name.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub user_agent_prefix: Option<String>,
    pub username: Option<String>,
    pub include_support: bool,
}

impl AuditFilter {
    /// Everything except this module's own requests.
    pub fn all() -> Self {
        Self::default()
    }
    /// Requests whose user agent starts with `prefix`.
    pub fn user_agent(prefix: &str) -> Self {
        Self::default().and_user_agent(prefix)
    }
    /// Requests made by the plugin (user agent [`PLUGIN_USER_AGENT`]).
    pub fn plugin() -> Self {
        Self::user_agent(PLUGIN_USER_AGENT)
    }
    /// Requests made by user `name` (e.g. `ADMIN_USER`, `CI_RUNNER_USER`).
    pub fn username(name: &str) -> Self {
        Self::default().and_username(name)
    }
    pub fn and_user_agent(mut self, prefix: &str) -> Self {
        self.user_agent_prefix = Some(prefix.to_string());
        self
    }
    pub fn and_username(mut self, name: &str) -> Self {
        self.username = Some(name.to_string());
        self
    }
    /// Also return requests made by this module's clients.
    pub fn including_support(mut self) -> Self {
        self.include_support = true;
        self
    }
    pub fn matches(&self, e: &AuditEvent) -> bool {
        if !self.include_support && e.user_agent.starts_with(SUPPORT_USER_AGENT) {
            return false;
        }
        if let Some(p) = &self.user_agent_prefix {
            if !e.user_agent.starts_with(p.as_str()) {
                return false;
            }
        }
        if let Some(u) = &self.username {
            if &e.user.username != u {
                return false;
            }
        }
        true
    }
}

/// All ResponseComplete events of the shared cluster's audit log whose raw line
/// contains `needle` (a cheap pre-filter; pass "" for all).
pub fn read_audit_events(needle: &str) -> Vec<AuditEvent> {
    read_audit_log(&cluster().audit_log(), 0, needle)
}

/// The ResponseComplete events of the audit log at `path` from byte `offset` on
/// (see [`audit_log_len`]) whose raw line contains `needle`.
pub fn read_audit_log(path: &Path, offset: u64, needle: &str) -> Vec<AuditEvent> {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(offset))?;
            f.read_to_string(&mut text)
        })
        .unwrap_or_else(|e| panic!("cannot read audit log {}: {e}", path.display()));
    text.lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| serde_json::from_str::<AuditEvent>(l).ok())
        .filter(|e| e.stage == "ResponseComplete" || e.stage == "Panic")
        .collect()
}

/// The length of the audit log at `path`: an offset for [`read_audit_log`] that
/// leaves out everything logged so far.
pub fn audit_log_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// [`audit_log_len`] of the shared cluster's audit log.
pub fn audit_offset() -> u64 {
    audit_log_len(&cluster().audit_log())
}

/// How many deletes by the plugin the audit log at `path` has answered since byte
/// `offset`. Only looks for substrings, without parsing: cheap enough to poll often.
pub fn plugin_deletes_since(path: &Path, offset: u64) -> usize {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.seek(SeekFrom::Start(offset));
        let _ = f.read_to_string(&mut text);
    }
    let agent = format!("\"userAgent\":\"{PLUGIN_USER_AGENT}");
    text.lines()
        .filter(|l| {
            l.contains("\"verb\":\"delete\"")
                && l.contains(&agent)
                && l.contains("\"stage\":\"ResponseComplete\"")
        })
        .count()
}

/// Makes a marker request and waits until the audit log has it. Requests that
/// completed before the call are then in the log too (the API server writes the
/// entry at the end of each request, in blocking mode).
pub async fn audit_barrier() {
    let client = admin_client().await;
    let marker = format!("audit-barrier-{}", random_suffix(10));
    let path = cluster().audit_log();
    let offset = audit_log_len(&path);
    let api: Api<Namespace> = Api::all(client);
    let _ = api.get_opt(&marker).await;
    let needle = format!("\"name\":\"{marker}\"");
    poll_until(
        "the audit barrier request in the audit log",
        Duration::from_secs(15),
        || async {
            if read_audit_log(&path, offset, &needle).is_empty() {
                Err("not logged yet".into())
            } else {
                Ok(())
            }
        },
    )
    .await
}

/// The mutating requests (create, update, patch, delete, deletecollection) recorded
/// for objects in `namespace`, in log order, that match `filter`. Waits for the audit
/// log to catch up with requests already answered (see [`audit_barrier`]).
pub async fn mutating_requests(namespace: &str, filter: &AuditFilter) -> Vec<AuditEvent> {
    audit_barrier().await;
    let needle = format!("\"namespace\":\"{namespace}\"");
    read_audit_events(&needle)
        .into_iter()
        .filter(|e| e.is_mutating() && e.namespace() == namespace && filter.matches(e))
        .collect()
}

/// As [`mutating_requests`], for objects in any of `namespaces`, logged since byte
/// `offset` (see [`audit_offset`]).
pub async fn mutating_requests_since(
    offset: u64,
    namespaces: &[String],
    filter: &AuditFilter,
) -> Vec<AuditEvent> {
    audit_barrier().await;
    read_audit_log(&cluster().audit_log(), offset, "")
        .into_iter()
        .filter(|e| {
            e.is_mutating() && namespaces.iter().any(|n| n == e.namespace()) && filter.matches(e)
        })
        .collect()
}
