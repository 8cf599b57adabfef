//! DefaultPreemption, the PostFilter that makes room for a pod that fits nowhere by evicting pods of
//! lower priority, as upstream: only nodes whose filter failure was `Unschedulable` (not unresolvable)
//! are tried; on each the fewest, least important victims are chosen ([`victims`]), sparing pods whose
//! PodDisruptionBudget has no disruption left when possible ([`pdb`]); the best node is picked by
//! upstream's ordered criteria ([`candidates`]); the pod is nominated to it and the victims are evicted
//! in the background ([`execute`]). The pod then waits in the queue; deleting the victims brings it
//! back, and its nominated node is tried first.

pub mod candidates;
pub mod execute;
pub mod pdb;
pub mod victims;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};

use crate::framework::node_info::pod_priority;
use crate::framework::nominated::{self, NominatedPods};
use crate::framework::registry::{Handle, Result};
use crate::framework::runtime::nominated_node_of;
use crate::framework::{
    Code, CycleState, FilterRunner, FitError, NodeToStatus, Plugin, PostFilterPlugin, PostFilterResult, Snapshot, Status,
};
use candidates::{Candidate, pick_one};
use execute::{CONDITION_DISRUPTION_TARGET, Preemption, REASON_PREEMPTION_BY_SCHEDULER};

pub use victims::ERR_REASON_NO_VICTIMS;

pub const NAME: &str = "DefaultPreemption";
pub const MSG_PREFIX: &str = "preemption: ";
pub const ERR_REASON_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const ERR_REASON_POLICY_NEVER: &str = "not eligible due to preemptionPolicy=Never.";
pub const ERR_REASON_TERMINATING_ON_NOMINATED: &str = "not eligible due to a terminating pod on the nominated node.";

pub struct DefaultPreemption {
    /// `None` in unit tests: the decision is made, nothing is evicted.
    client: Option<kube::Client>,
    /// Every PodDisruptionBudget (`None` in unit tests: no budgets).
    budgets: Option<Store<PodDisruptionBudget>>,
}

/// Watches PodDisruptionBudgets into a store for as long as the process runs.
fn watch_budgets(client: kube::Client) -> Option<Store<PodDisruptionBudget>> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let (store, writer) = reflector::store();
    let api: Api<PodDisruptionBudget> = Api::all(client);
    let stream = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()).default_backoff());
    runtime.spawn(crate::informers::drive(stream, "PodDisruptionBudget", |_| {}));
    Some(store)
}

pub fn new(handle: &Handle) -> Result<Arc<dyn Plugin>> {
    let budgets = handle.client.clone().and_then(watch_budgets);
    Ok(Arc::new(DefaultPreemption { client: handle.client.clone(), budgets }))
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        Some(self)
    }
}

/// A victim of an earlier preemption, still terminating.
fn terminating_by_preemption(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
        && pod.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_ == CONDITION_DISRUPTION_TARGET && c.reason.as_deref() == Some(REASON_PREEMPTION_BY_SCHEDULER)
            })
        })
}

/// Whether `pod` may preempt now (upstream's `PodEligibleToPreemptOthers`): not with policy Never, and
/// not while victims of its own earlier preemption are still terminating on its nominated node (it waits
/// for them instead), unless that node has become unresolvable for it.
pub fn eligible(pod: &Pod, snapshot: &Snapshot, statuses: &NodeToStatus) -> std::result::Result<(), &'static str> {
    if pod.spec.as_ref().and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return Err(ERR_REASON_POLICY_NEVER);
    }
    let Some(nominated) = nominated_node_of(pod) else { return Ok(()) };
    if statuses.get(nominated).code() == Code::UnschedulableAndUnresolvable {
        return Ok(());
    }
    let priority = pod_priority(pod);
    let waiting = snapshot
        .get(nominated)
        .is_some_and(|n| n.pods().iter().any(|p| p.priority() < priority && terminating_by_preemption(&p.pod)));
    if waiting { Err(ERR_REASON_TERMINATING_ON_NOMINATED) } else { Ok(()) }
}

impl DefaultPreemption {
    /// The nodes where preemption would let the pod fit, with their victims, and why the others would not.
    fn dry_run(
        &self,
        state: &CycleState,
        pod: &Pod,
        snapshot: &Snapshot,
        statuses: &NodeToStatus,
        filters: &dyn FilterRunner,
        now: Timestamp,
    ) -> (Vec<Candidate>, NodeToStatus) {
        let budgets = self.budgets.as_ref().map(|s| pdb::compile(&s.state())).unwrap_or_default();
        let mut candidates = Vec::new();
        let mut rejected = NodeToStatus::new(Status::unresolvable(ERR_REASON_NOT_HELPFUL));
        for node in snapshot.nodes() {
            if statuses.get(node.name()).code() != Code::Unschedulable {
                continue;
            }
            match victims::select_victims(state, pod, node, filters, &budgets, now) {
                Ok(v) => candidates.push(Candidate { node: node.name().to_string(), victims: v.pods, pdb_violations: v.pdb_violations }),
                Err(s) => rejected.set(node.name(), s),
            }
        }
        (candidates, rejected)
    }
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &Pod,
        snapshot: &Snapshot,
        statuses: &NodeToStatus,
        filters: &dyn FilterRunner,
    ) -> PostFilterResult {
        if let Err(reason) = eligible(pod, snapshot, statuses) {
            return Status::unschedulable(format!("{MSG_PREFIX}{reason}")).into();
        }
        let now = Timestamp::now();
        let (candidates, rejected) = self.dry_run(state, pod, snapshot, statuses, filters, now);
        let Some(best) = pick_one(&candidates, now).and_then(|i| candidates.get(i)) else {
            let fit = FitError { num_all_nodes: snapshot.len(), pre_filter_msg: None, node_to_status: rejected, post_filter_msg: None };
            return Status::unschedulable(format!("{MSG_PREFIX}{}", fit.message())).into();
        };
        let priority = pod_priority(pod);
        let lower_nominated = state
            .read::<Arc<NominatedPods>>(nominated::STATE_KEY)
            .map(|n| n.on_node(&best.node).iter().filter(|p| p.priority() < priority).map(|p| p.pod.clone()).collect())
            .unwrap_or_default();
        let preemption = Preemption {
            preemptor: Arc::new(pod.clone()),
            node: best.node.clone(),
            victims: best.victims.iter().map(|v| v.pod.clone()).collect(),
            lower_nominated,
        };
        tracing::info!(
            pod = %crate::framework::node_info::pod_key(pod),
            node = %best.node,
            victims = preemption.victims.len(),
            "preempting lower-priority pods"
        );
        if let Some(client) = &self.client
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(execute::run(client.clone(), preemption));
        }
        PostFilterResult { status: Status::success(), nominated_node: Some(best.node.clone()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::NodeInfo;
    use crate::testing::{node, node_info, pod_with_cpu};
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use victims::tests::FitOnly;

    fn prioritized(mut p: Pod, priority: i32) -> Pod {
        if let Some(s) = p.spec.as_mut() {
            s.priority = Some(priority);
        }
        p
    }

    fn run(p: &Pod, nodes: Vec<NodeInfo>) -> (String, Option<String>) {
        let snapshot = Snapshot::new(nodes);
        let state = CycleState::new();
        let mut statuses = NodeToStatus::default();
        for n in snapshot.nodes() {
            statuses.set(n.name(), FitOnly.run_filters(&state, p, n));
        }
        let r = DefaultPreemption { client: None, budgets: None }.post_filter(&state, p, &snapshot, &statuses, &FitOnly);
        (r.status.message(), r.nominated_node)
    }

    fn terminating_victim(name: &str, priority: i32) -> Pod {
        let mut v = prioritized(pod_with_cpu(name, "2"), priority);
        v.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        v.status = Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: CONDITION_DISRUPTION_TARGET.into(),
                status: "True".into(),
                reason: Some(REASON_PREEMPTION_BY_SCHEDULER.into()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        v
    }

    fn nominated_to(mut p: Pod, node: &str) -> Pod {
        p.status = Some(PodStatus { nominated_node_name: Some(node.into()), ..Default::default() });
        p
    }

    #[test]
    fn outcomes() {
        let busy = |name: &str, prio: i32| node_info(node(name, "2", "4Gi"), vec![prioritized(pod_with_cpu(&format!("{name}-x"), "2"), prio)]);
        let mut never = prioritized(pod_with_cpu("p", "1"), 10);
        if let Some(s) = never.spec.as_mut() {
            s.preemption_policy = Some("Never".into());
        }
        let cases = [
            (
                "equal priorities leave no victims",
                pod_with_cpu("p", "1"),
                vec![busy("a", 0), busy("b", 0), busy("c", 0)],
                ("preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.", None),
            ),
            (
                "too big for any node is not helped",
                pod_with_cpu("p", "100"),
                vec![busy("a", 0), busy("b", 0), busy("c", 0)],
                ("preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.", None),
            ),
            ("lower-priority victims make room: nominated", prioritized(pod_with_cpu("p", "1"), 10), vec![busy("a", 100), busy("b", 0)], ("", Some("b"))),
            (
                "the node with the least important victim is chosen",
                prioritized(pod_with_cpu("p", "1"), 10),
                vec![busy("a", 5), busy("b", 1), busy("c", 3)],
                ("", Some("b")),
            ),
            ("policy Never", never, vec![busy("a", 0)], ("preemption: not eligible due to preemptionPolicy=Never.", None)),
            (
                "waits for its victims terminating on the nominated node",
                nominated_to(prioritized(pod_with_cpu("p", "1"), 10), "a"),
                vec![node_info(node("a", "2", "4Gi"), vec![terminating_victim("v", 0)]), busy("b", 0)],
                ("preemption: not eligible due to a terminating pod on the nominated node.", None),
            ),
            (
                "nominated node without terminating victims: preempts again",
                nominated_to(prioritized(pod_with_cpu("p", "1"), 10), "a"),
                vec![busy("a", 0)],
                ("", Some("a")),
            ),
        ];
        for (name, p, nodes, (msg, nominated)) in cases {
            let got = run(&p, nodes);
            assert_eq!(got, (msg.to_string(), nominated.map(String::from)), "case {name}");
        }
    }
}
