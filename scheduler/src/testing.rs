//! Fixture builders for unit tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, Node, NodeCondition, NodeSpec, NodeStatus, Pod, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::framework::{NodeInfo, PodInfo};

fn list(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect()
}

/// A Ready node with this allocatable cpu and memory and room for 110 pods.
pub fn node(name: &str, cpu: &str, memory: &str) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([("kubernetes.io/hostname".to_string(), name.to_string())].into()),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            allocatable: Some(list(&[("cpu", cpu), ("memory", memory), ("pods", "110")])),
            capacity: Some(list(&[("cpu", cpu), ("memory", memory), ("pods", "110")])),
            conditions: Some(vec![NodeCondition { type_: "Ready".into(), status: "True".into(), ..Default::default() }]),
            ..Default::default()
        }),
    }
}

/// A pending pod in `default` with one container and no requests.
pub fn pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container { name: "c".into(), ..Default::default() }],
            scheduler_name: Some("default-scheduler".into()),
            ..Default::default()
        }),
        status: None,
    }
}

/// A pod whose one container requests these resources.
pub fn pod_with_requests(name: &str, requests: &[(&str, &str)]) -> Pod {
    let mut p = pod(name);
    if let Some(spec) = p.spec.as_mut() {
        spec.containers[0].resources = Some(ResourceRequirements { requests: Some(list(requests)), ..Default::default() });
    }
    p
}

pub fn pod_with_cpu(name: &str, cpu: &str) -> Pod {
    pod_with_requests(name, &[("cpu", cpu)])
}

/// Marks the pod as controlled by a ReplicaSet with this uid.
pub fn owned_by(mut p: Pod, owner_uid: &str) -> Pod {
    p.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: "rs".into(),
        uid: owner_uid.into(),
        controller: Some(true),
        ..Default::default()
    }]);
    p
}

/// A NodeInfo holding these pods.
pub fn node_info(n: Node, pods: Vec<Pod>) -> NodeInfo {
    let mut ni = NodeInfo::new(Arc::new(n));
    for p in pods {
        ni.add_pod(PodInfo::new(Arc::new(p)));
    }
    ni
}
