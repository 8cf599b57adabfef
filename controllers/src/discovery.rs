//! The resource kinds the apiserver serves, found by discovery rather than a fixed list, so
//! custom resources are garbage collected and emptied out of namespaces too.

use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope, verbs};

/// Failures discovering resources.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The discovery endpoints could not be read.
    #[error("failed to discover API resources: {0}")]
    Discover(#[source] kube::Error),
}

/// One discovered resource kind.
#[derive(Debug, Clone)]
pub struct Resource {
    pub api: ApiResource,
    pub namespaced: bool,
    pub verbs: Vec<String>,
}

impl Resource {
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

/// Every top-level resource (at each group's preferred version) that can be listed and deleted.
pub async fn deletable(client: &kube::Client) -> Result<Vec<Resource>, Error> {
    let discovery = Discovery::new(client.clone()).run().await.map_err(Error::Discover)?;
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (api, caps) in group.recommended_resources() {
            if usable(&caps) {
                out.push(Resource { namespaced: caps.scope == Scope::Namespaced, verbs: caps.operations.clone(), api });
            }
        }
    }
    Ok(out)
}

fn usable(caps: &ApiCapabilities) -> bool {
    caps.supports_operation(verbs::LIST) && caps.supports_operation(verbs::DELETE)
}
