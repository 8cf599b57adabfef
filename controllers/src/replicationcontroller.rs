//! The ReplicationController controller: the ReplicaSet engine run on ReplicationControllers, which
//! it sees as ReplicaSets through a conversion (as upstream does). The differences are the plain-map
//! selector, the core `v1` apiVersion and kind in owner references, the event source, and a status
//! without `terminatingReplicas`.

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetSpec, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{
    Pod, ReplicationController, ReplicationControllerCondition, ReplicationControllerSpec, ReplicationControllerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::Selector;

use crate::informer::Informer;
use crate::ownership;
use crate::replicaset::{self, ReplicaOwner};

/// The event source name, as upstream.
pub const NAME: &str = "replication-controller";

/// The controller, running until `shutdown` resolves; it subscribes to the informers at once.
pub fn run(
    client: kube::Client,
    controllers: &Informer<ReplicationController>,
    pods: &Informer<Pod>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    replicaset::run(client, controllers, pods, concurrency, shutdown)
}

impl ownership::SelectsPods for ReplicationController {
    fn pod_selector(&self) -> Option<Selector> {
        self.spec.as_ref().and_then(|s| ownership::selector(&label_selector(s)))
    }
}

impl ReplicaOwner for ReplicationController {
    const CONTROLLER: &'static str = NAME;

    fn to_replica_set(&self) -> ReplicaSet {
        ReplicaSet {
            metadata: self.metadata.clone(),
            spec: self.spec.as_ref().map(spec_to_replica_set),
            status: self.status.as_ref().map(status_to_replica_set),
        }
    }

    fn with_status(&self, status: ReplicaSetStatus) -> Self {
        ReplicationController { status: Some(status_from_replica_set(status)), ..self.clone() }
    }
}

/// The selector as a LabelSelector. The apiserver defaults an unset selector to the template's
/// labels; an object that somehow lacks one gets the same default here rather than selecting nothing.
fn label_selector(spec: &ReplicationControllerSpec) -> LabelSelector {
    let template_labels = || spec.template.as_ref().and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.clone());
    let match_labels = spec.selector.clone().filter(|s| !s.is_empty()).or_else(template_labels);
    LabelSelector { match_labels, match_expressions: None }
}

fn spec_to_replica_set(spec: &ReplicationControllerSpec) -> ReplicaSetSpec {
    ReplicaSetSpec {
        min_ready_seconds: spec.min_ready_seconds,
        replicas: spec.replicas,
        selector: label_selector(spec),
        template: spec.template.clone(),
    }
}

fn status_to_replica_set(status: &ReplicationControllerStatus) -> ReplicaSetStatus {
    let conditions = status.conditions.as_ref().map(|cs| {
        cs.iter()
            .map(|c| ReplicaSetCondition {
                last_transition_time: c.last_transition_time.clone(),
                message: c.message.clone(),
                reason: c.reason.clone(),
                status: c.status.clone(),
                type_: c.type_.clone(),
            })
            .collect()
    });
    ReplicaSetStatus {
        available_replicas: status.available_replicas,
        conditions,
        fully_labeled_replicas: status.fully_labeled_replicas,
        observed_generation: status.observed_generation,
        ready_replicas: status.ready_replicas,
        replicas: status.replicas,
        // A ReplicationController's status has no such field.
        terminating_replicas: None,
    }
}

fn status_from_replica_set(status: ReplicaSetStatus) -> ReplicationControllerStatus {
    let conditions = status.conditions.map(|cs| {
        cs.into_iter()
            .map(|c| ReplicationControllerCondition {
                last_transition_time: c.last_transition_time,
                message: c.message,
                reason: c.reason,
                status: c.status,
                type_: c.type_,
            })
            .collect()
    });
    ReplicationControllerStatus {
        available_replicas: status.available_replicas,
        conditions,
        fully_labeled_replicas: status.fully_labeled_replicas,
        observed_generation: status.observed_generation,
        ready_replicas: status.ready_replicas,
        replicas: status.replicas,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    use super::*;
    use crate::ownership::SelectsPods;
    use crate::replicaset::{controller_reference, refers_to};

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn rc(selector: Option<BTreeMap<String, String>>, template_labels: &[(&str, &str)]) -> ReplicationController {
        ReplicationController {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("rc-uid".into()),
                generation: Some(3),
                ..Default::default()
            },
            spec: Some(ReplicationControllerSpec {
                replicas: Some(3),
                min_ready_seconds: Some(5),
                selector,
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some(labels(template_labels)), ..Default::default() }),
                    spec: None,
                }),
            }),
            status: None,
        }
    }

    #[test]
    fn selector_conversion() {
        let cases = [
            ("explicit selector", Some(labels(&[("app", "web")])), vec![("app", "web"), ("tier", "x")], Some(labels(&[("app", "web")]))),
            ("unset defaults to template labels", None, vec![("app", "web")], Some(labels(&[("app", "web")]))),
            ("empty defaults to template labels", Some(BTreeMap::new()), vec![("app", "web")], Some(labels(&[("app", "web")]))),
            ("nothing at all selects nothing", None, vec![], None),
        ];
        for (name, selector, template, want) in cases {
            let rs = rc(selector, &template).to_replica_set();
            let got = rs.spec.map(|s| s.selector.match_labels.filter(|m| !m.is_empty()));
            assert_eq!(got, Some(want), "{name}");
        }
    }

    #[test]
    fn pod_selector_matches_by_map() {
        let controller = rc(Some(labels(&[("app", "web")])), &[("app", "web")]);
        let selector = controller.pod_selector();
        assert!(ownership::matches(selector.as_ref(), Some(&labels(&[("app", "web"), ("extra", "1")]))));
        assert!(!ownership::matches(selector.as_ref(), Some(&labels(&[("app", "db")]))));
        assert!(!ownership::matches(rc(None, &[]).pod_selector().as_ref(), Some(&labels(&[("app", "web")]))));
    }

    #[test]
    fn spec_and_metadata_carry_over() {
        let rs = rc(Some(labels(&[("app", "web")])), &[("app", "web")]).to_replica_set();
        assert_eq!(rs.metadata.uid.as_deref(), Some("rc-uid"));
        assert_eq!(rs.metadata.generation, Some(3));
        let spec = rs.spec.unwrap_or_default();
        assert_eq!((spec.replicas, spec.min_ready_seconds), (Some(3), Some(5)));
        assert!(spec.template.is_some());
    }

    #[test]
    fn status_round_trip_drops_terminating_only() {
        let status = ReplicaSetStatus {
            replicas: 3,
            fully_labeled_replicas: Some(3),
            ready_replicas: Some(2),
            available_replicas: Some(1),
            observed_generation: Some(3),
            terminating_replicas: Some(1),
            conditions: Some(vec![ReplicaSetCondition {
                type_: "ReplicaFailure".into(),
                status: "True".into(),
                reason: Some("FailedCreate".into()),
                message: Some("pods \"web-x\" is forbidden: exceeded quota".into()),
                last_transition_time: None,
            }]),
        };
        let controller = rc(None, &[("app", "web")]).with_status(status.clone());
        let written = controller.status.clone().unwrap_or_default();
        assert_eq!((written.replicas, written.ready_replicas, written.available_replicas), (3, Some(2), Some(1)));
        assert_eq!(written.conditions.as_ref().and_then(|c| c[0].reason.as_deref()), Some("FailedCreate"));
        let back = controller.to_replica_set().status;
        assert_eq!(back, Some(ReplicaSetStatus { terminating_replicas: None, ..status }));
    }

    #[test]
    fn owner_reference_names_the_replication_controller() {
        let reference = controller_reference(&rc(None, &[("app", "web")]));
        let want = OwnerReference {
            api_version: "v1".into(),
            kind: "ReplicationController".into(),
            name: "web".into(),
            uid: "rc-uid".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        assert_eq!(reference, Some(want.clone()));
        assert!(refers_to::<ReplicationController>(&want));
        assert!(!refers_to::<ReplicaSet>(&want), "a ReplicaSet controller ignores pods an RC controls");
        assert!(!refers_to::<ReplicationController>(&OwnerReference { api_version: "apps/v1".into(), kind: "ReplicaSet".into(), ..want }));
    }
}
