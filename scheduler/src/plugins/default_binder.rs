//! DefaultBinder: commits the decision by creating the pod's `binding` subresource.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use crate::framework::registry::{Error, Handle, Result};
use crate::framework::{BindPlugin, Plugin, Status};

pub const NAME: &str = "DefaultBinder";

pub struct DefaultBinder {
    client: kube::Client,
}

pub fn new(handle: &Handle) -> Result<Arc<dyn Plugin>> {
    let client = handle
        .client
        .clone()
        .ok_or_else(|| Error::Factory { name: NAME.into(), reason: "an API client is required".into() })?;
    Ok(Arc::new(DefaultBinder { client }))
}

impl Plugin for DefaultBinder {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        Some(self)
    }
}

/// The Binding object for `pod` → `node_name` (the uid guards against binding a recreated namesake).
pub fn binding_for(pod: &Pod, node_name: &str) -> Binding {
    Binding {
        metadata: ObjectMeta {
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        },
        target: ObjectReference { kind: Some("Node".into()), name: Some(node_name.into()), ..Default::default() },
    }
}

impl BindPlugin for DefaultBinder {
    fn bind<'a>(&'a self, pod: &'a Pod, node_name: &'a str) -> BoxFuture<'a, Status> {
        async move {
            let (Some(ns), Some(name)) = (pod.metadata.namespace.as_deref(), pod.metadata.name.as_deref()) else {
                return Status::error("pod has no namespace or name");
            };
            let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            let binding = binding_for(pod, node_name);
            match api.create_subresource::<_, serde_json::Value>("binding", name, &PostParams::default(), &binding).await {
                Ok(_) => Status::success(),
                Err(e) => Status::error(e.to_string()),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;

    #[test]
    fn binding_targets_the_node() {
        let b = binding_for(&pod("p"), "n1");
        let json = serde_json::to_value(&b).unwrap_or_default();
        assert_eq!(json["kind"], "Binding");
        assert_eq!(json["metadata"]["uid"], "uid-p");
        assert_eq!(json["target"]["kind"], "Node");
        assert_eq!(json["target"]["name"], "n1");
    }

    #[test]
    fn needs_a_client() {
        assert!(new(&Handle::default()).is_err());
    }
}
