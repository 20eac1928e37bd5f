//! What the inventory decodes of each listed pod: only the fields its
//! records are built from. Everything else in a list page (managedFields,
//! annotations other than the keep marker, the spec beyond its resources,
//! status beyond the containers' finish times) is skipped by the parser
//! instead of being decoded into objects and dropped; a page of pods then
//! costs a fraction of the memory and time.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodSpec, PodStatus,
    ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::model::keep;

/// A listed pod: `into_pod` gives the API's type with only these fields set.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ListedPod {
    #[serde(default, deserialize_with = "meta")]
    metadata: ObjectMeta,
    #[serde(default, deserialize_with = "spec")]
    spec: Option<PodSpec>,
    #[serde(default, deserialize_with = "status")]
    status: Option<PodStatus>,
}

impl ListedPod {
    pub(crate) fn into_pod(self) -> Pod {
        Pod {
            metadata: self.metadata,
            spec: self.spec,
            status: self.status,
        }
    }
}

/// A pod's metadata alone (a `PartialObjectMetadata` list).
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ListedMeta {
    #[serde(default, deserialize_with = "meta")]
    pub(crate) metadata: ObjectMeta,
}

macro_rules! pod_resource {
    ($t:ty, $metadata:expr) => {
        impl kube::Resource for $t {
            type DynamicType = ();
            type Scope = k8s_openapi::NamespaceResourceScope;
            fn kind(_: &()) -> Cow<'_, str> {
                "Pod".into()
            }
            fn group(_: &()) -> Cow<'_, str> {
                "".into()
            }
            fn version(_: &()) -> Cow<'_, str> {
                "v1".into()
            }
            fn plural(_: &()) -> Cow<'_, str> {
                "pods".into()
            }
            fn metadata_api() -> bool {
                $metadata
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}
pod_resource!(ListedPod, false);
// An `Api<ListedMeta>` asks for metadata only (`PartialObjectMetadata`).
pod_resource!(ListedMeta, true);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "keep_marker")]
    annotations: Option<BTreeMap<String, String>>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
    owner_references: Option<Vec<OwnerReference>>,
}

fn meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = Meta::deserialize(d)?;
    Ok(ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        labels: m.labels,
        annotations: m.annotations,
        creation_timestamp: m.creation_timestamp,
        deletion_timestamp: m.deletion_timestamp,
        owner_references: m.owner_references,
        ..Default::default()
    })
}

/// Of the annotations, only those the keep rule reads (others can be large,
/// such as kubectl's last-applied-configuration).
fn keep_marker<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    struct Annotations;
    impl<'de> Visitor<'de> for Annotations {
        type Value = Option<BTreeMap<String, String>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of annotations")
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(Annotations)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut kept = BTreeMap::new();
            while let Some(key) = m.next_key::<String>()? {
                if keep::ANNOTATIONS.contains(&key.as_str()) {
                    kept.insert(key, m.next_value::<String>()?);
                } else {
                    m.next_value::<IgnoredAny>()?;
                }
            }
            Ok(Some(kept))
        }
    }
    d.deserialize_option(Annotations)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    containers: Vec<Resources>,
    init_containers: Option<Vec<Resources>>,
    overhead: Option<BTreeMap<String, Quantity>>,
}

#[derive(Deserialize)]
struct Resources {
    #[serde(default)]
    name: String,
    resources: Option<ResourceRequirements>,
}

impl Resources {
    fn container(self) -> Container {
        Container {
            name: self.name,
            resources: self.resources,
            ..Default::default()
        }
    }
}

/// The spec's resources: what quota charges a pod.
fn spec<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PodSpec>, D::Error> {
    Ok(Option::<Spec>::deserialize(d)?.map(|s| PodSpec {
        containers: s.containers.into_iter().map(Resources::container).collect(),
        init_containers: s
            .init_containers
            .map(|cs| cs.into_iter().map(Resources::container).collect()),
        overhead: s.overhead,
        ..Default::default()
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    phase: Option<String>,
    container_statuses: Option<Vec<Finished>>,
}

#[derive(Deserialize)]
struct Finished {
    #[serde(default)]
    name: String,
    state: Option<State>,
}

#[derive(Deserialize)]
struct State {
    terminated: Option<Terminated>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Terminated {
    finished_at: Option<Time>,
}

/// The phase and each container's finish time.
fn status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PodStatus>, D::Error> {
    Ok(Option::<Status>::deserialize(d)?.map(|s| PodStatus {
        phase: s.phase,
        container_statuses: s.container_statuses.map(|cs| {
            cs.into_iter()
                .map(|c| ContainerStatus {
                    name: c.name,
                    state: c.state.map(|st| ContainerState {
                        terminated: st.terminated.map(|t| ContainerStateTerminated {
                            finished_at: t.finished_at,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::convert::{keep_of, pod_finished_at};
    use crate::model::{Keep, Kind};

    fn marked_keep(m: &ObjectMeta) -> bool {
        keep_of(Kind::Pod, m) == Keep::MARKED
    }

    const POD: &str = r#"{
      "metadata": {
        "name": "p", "namespace": "ns", "uid": "u1", "resourceVersion": "42",
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "deletionTimestamp": "2026-01-01T01:00:00Z",
        "labels": {"app": "evaluation", "test-id": "t"},
        "annotations": {"crucible-clean/keep": "true", "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": [1,2,3]}"},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "ju", "controller": true}],
        "managedFields": [{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}}]
      },
      "spec": {
        "containers": [{"name": "c", "image": "i", "env": [{"name": "A", "value": "1"}],
                        "resources": {"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}}}],
        "initContainers": [{"name": "init", "image": "i", "resources": {"requests": {"cpu": "1"}}}],
        "overhead": {"cpu": "100m"},
        "volumes": [{"name": "v", "emptyDir": {}}]
      },
      "status": {
        "phase": "Failed",
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
          {"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
           "state": {"terminated": {"exitCode": 1, "finishedAt": "2026-01-01T00:30:00Z"}}}
        ]
      }
    }"#;

    #[test]
    fn keeps_what_the_records_read_and_gives_the_same_answers_as_a_full_pod() {
        let full: Pod = serde_json::from_str(POD).unwrap();
        let listed: ListedPod = serde_json::from_str(POD).unwrap();
        let pod = listed.into_pod();
        let (m, f) = (&pod.metadata, &full.metadata);
        assert_eq!(
            (&m.name, &m.namespace, &m.uid, &m.resource_version),
            (&f.name, &f.namespace, &f.uid, &f.resource_version)
        );
        assert_eq!(m.labels, f.labels);
        assert_eq!(m.creation_timestamp, f.creation_timestamp);
        assert_eq!(m.deletion_timestamp, f.deletion_timestamp);
        assert_eq!(m.owner_references, f.owner_references);
        assert!(marked_keep(m));
        assert_eq!(m.annotations.as_ref().map(BTreeMap::len), Some(1));
        assert!(m.managed_fields.is_none());
        assert_eq!(pod_finished_at(&pod), pod_finished_at(&full));
        assert!(pod_finished_at(&pod).is_some());
        assert_eq!(
            crate::quota::pod_charges(&pod),
            crate::quota::pod_charges(&full)
        );
        assert_eq!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Failed")
        );
    }

    #[test]
    fn absent_or_null_parts_decode_as_absent() {
        let bare: ListedPod = serde_json::from_str(r#"{"metadata": {"name": "p"}}"#).unwrap();
        assert!(bare.spec.is_none() && bare.status.is_none());
        let nulls: ListedPod = serde_json::from_str(
            r#"{"metadata": {"name": "p", "annotations": null, "labels": null}, "spec": null, "status": null}"#,
        )
        .unwrap();
        assert!(!marked_keep(&nulls.metadata));
        let meta: ListedMeta = serde_json::from_str(
            r#"{"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {"name": "p", "annotations": {"crucible-clean/keep": "TRUE"}}}"#,
        )
        .unwrap();
        assert!(marked_keep(&meta.metadata));
    }
}
