//! What the replica engine needs from the object it runs: a ReplicaSet, or anything that can be seen as
//! one. Like upstream, where the ReplicationController manager is the ReplicaSet manager behind a
//! conversion, the engine works on a ReplicaSet-shaped view and writes the status back in the owner's
//! own shape; only the owner's identity (kind, apiVersion, event source) stays its own.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use kube::core::Selector;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ownership;

/// A replica-set-like owner of pods.
pub trait ReplicaOwner:
    ownership::SelectsPods + Resource<Scope = NamespaceResourceScope> + Serialize + DeserializeOwned + Debug + Send + Sync
{
    /// Upstream's controller name, used as the event source.
    const CONTROLLER: &'static str;

    /// The owner as a ReplicaSet: metadata as is, spec and status converted.
    fn to_replica_set(&self) -> ReplicaSet;

    /// A copy of the owner carrying `status`, converted to the owner's own status type.
    fn with_status(&self, status: ReplicaSetStatus) -> Self;
}

impl ownership::SelectsPods for ReplicaSet {
    fn pod_selector(&self) -> Option<Selector> {
        self.spec.as_ref().and_then(|s| ownership::selector(&s.selector))
    }
}

impl ReplicaOwner for ReplicaSet {
    const CONTROLLER: &'static str = "replicaset-controller";

    fn to_replica_set(&self) -> ReplicaSet {
        self.clone()
    }

    fn with_status(&self, status: ReplicaSetStatus) -> Self {
        ReplicaSet { status: Some(status), ..self.clone() }
    }
}

/// The owner reference a pod created or adopted by `owner` carries: controller, blocking the
/// owner's foreground deletion, naming the owner's own kind and apiVersion.
pub fn controller_reference<K: ReplicaOwner>(owner: &K) -> Option<OwnerReference> {
    ownership::controller_reference(&K::api_version(&()), &K::kind(&()), owner.meta())
}

pub use ownership::refers_to;

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

    use super::*;
    use crate::ownership::SelectsPods;

    #[test]
    fn replica_set_reference_and_kind_check() {
        let rs = ReplicaSet {
            metadata: ObjectMeta { name: Some("web".into()), uid: Some("u1".into()), ..Default::default() },
            ..Default::default()
        };
        let reference = controller_reference(&rs);
        assert_eq!(reference.as_ref().map(|r| (r.api_version.as_str(), r.kind.as_str())), Some(("apps/v1", "ReplicaSet")));
        assert_eq!(reference.as_ref().and_then(|r| r.block_owner_deletion), Some(true));
        let cases = [
            ("same kind and group", "apps/v1", "ReplicaSet", true),
            ("other group", "example.com/v1", "ReplicaSet", false),
            ("core group", "v1", "ReplicaSet", false),
            ("other kind", "apps/v1", "Deployment", false),
        ];
        for (name, api_version, kind, want) in cases {
            let r = OwnerReference { api_version: api_version.into(), kind: kind.into(), ..Default::default() };
            assert_eq!(refers_to::<ReplicaSet>(&r), want, "{name}");
        }
    }

    #[test]
    fn replica_set_status_round_trip_is_identity() {
        let rs = ReplicaSet {
            spec: Some(ReplicaSetSpec {
                selector: LabelSelector { match_labels: Some([("app".to_string(), "web".to_string())].into()), ..Default::default() },
                ..Default::default()
            }),
            ..Default::default()
        };
        let status = ReplicaSetStatus { replicas: 2, terminating_replicas: Some(1), ..Default::default() };
        assert_eq!(rs.with_status(status.clone()).to_replica_set().status, Some(status));
        assert!(rs.pod_selector().is_some());
    }
}
