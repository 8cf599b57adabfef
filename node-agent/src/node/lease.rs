//! The node heartbeat: `kube-node-lease/<node>`, renewed every 10 s and owned by the Node so it goes with it.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio_util::sync::CancellationToken;

use super::{Error, Result};

const NAMESPACE: &str = "kube-node-lease";
pub const RENEW_INTERVAL: Duration = Duration::from_secs(10);

/// Renews the lease of one node.
pub struct NodeLease {
    api: Api<Lease>,
    node: String,
    node_uid: String,
    duration_seconds: i32,
}

impl NodeLease {
    pub fn new(client: kube::Client, node: &str, node_uid: &str, duration_seconds: i32) -> Self {
        Self { api: Api::namespaced(client, NAMESPACE), node: node.to_string(), node_uid: node_uid.to_string(), duration_seconds }
    }

    fn spec(&self) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.node.clone()),
            lease_duration_seconds: Some(self.duration_seconds),
            renew_time: Some(MicroTime(Timestamp::now())),
            ..Default::default()
        }
    }

    /// Creates the lease or moves its renew time to now.
    pub async fn renew(&self) -> Result<()> {
        let err = |action| move |source| Error::Lease { action, node: self.node.clone(), source };
        match self.api.get_opt(&self.node).await.map_err(err("get"))? {
            Some(mut lease) => {
                lease.spec = Some(self.spec());
                self.api.replace(&self.node, &PostParams::default(), &lease).await.map_err(err("renew"))?;
            }
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.node.clone()),
                        namespace: Some(NAMESPACE.into()),
                        owner_references: (!self.node_uid.is_empty()).then(|| {
                            vec![OwnerReference {
                                api_version: "v1".into(),
                                kind: "Node".into(),
                                name: self.node.clone(),
                                uid: self.node_uid.clone(),
                                ..Default::default()
                            }]
                        }),
                        ..Default::default()
                    },
                    spec: Some(self.spec()),
                };
                self.api.create(&PostParams::default(), &lease).await.map_err(err("create"))?;
            }
        }
        Ok(())
    }

    /// Renews every [`RENEW_INTERVAL`] until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(RENEW_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if let Err(e) = self.renew().await {
                        tracing::warn!(error = %e, "node lease renewal failed");
                    }
                }
                () = shutdown.cancelled() => break,
            }
        }
    }
}
