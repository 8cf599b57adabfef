//! Which pods on one node must go for the preemptor to fit there (upstream's `SelectVictimsOnNode`):
//! remove every lower-priority pod, check the preemptor fits, then give pods back as long as it still
//! fits: first those whose eviction would violate a PodDisruptionBudget, then the rest, most important
//! first within each group. What could not be given back are the victims.

use std::cmp::Ordering;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use crate::framework::node_info::pod_priority;
use super::pdb::{self, Budget};
use crate::framework::{CycleState, FilterRunner, NodeInfo, PodInfo, Status};

/// Upstream's status when a node runs nothing the preemptor outranks.
pub const ERR_REASON_NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// When the pod started; pods not started yet count as starting `now` (upstream does the same).
pub fn start_time(pod: &Pod, now: Timestamp) -> Timestamp {
    pod.status.as_ref().and_then(|s| s.start_time.as_ref()).map_or(now, |t| t.0)
}

/// `Less` when `a` is more important than `b`: higher priority, then earlier start (upstream's
/// `MoreImportantPod`), so sorting with it puts the most important pods first.
pub fn more_important_first(a: &Pod, b: &Pod, now: Timestamp) -> Ordering {
    pod_priority(b).cmp(&pod_priority(a)).then_with(|| start_time(a, now).cmp(&start_time(b, now)))
}

/// The pods that must go from one node, most important first, and how many of them violate a budget.
#[derive(Debug, Clone, Default)]
pub struct Victims {
    pub pods: Vec<PodInfo>,
    pub pdb_violations: usize,
}

/// The victims on `node`, or the status saying why preempting there cannot help.
pub fn select_victims(
    state: &CycleState,
    pod: &Pod,
    node: &NodeInfo,
    filters: &dyn FilterRunner,
    budgets: &[Budget],
    now: Timestamp,
) -> Result<Victims, Status> {
    let priority = pod_priority(pod);
    let mut potential: Vec<PodInfo> = node.pods().iter().filter(|p| p.priority() < priority).cloned().collect();
    if potential.is_empty() {
        return Err(Status::unresolvable(ERR_REASON_NO_VICTIMS));
    }
    let mut without = node.clone();
    for p in &potential {
        without.remove_pod(&p.key());
    }
    let s = filters.run_filters(state, pod, &without);
    if !s.is_success() {
        return Err(s);
    }
    potential.sort_by(|a, b| more_important_first(&a.pod, &b.pod, now));
    let (violating, fine) = pdb::split_by_violation(potential, budgets);
    let mut victims = Victims::default();
    for (p, violates) in violating.into_iter().map(|p| (p, true)).chain(fine.into_iter().map(|p| (p, false))) {
        let key = p.key();
        without.add_pod(p.clone());
        if !filters.run_filters(state, pod, &without).is_success() {
            without.remove_pod(&key);
            victims.pdb_violations += usize::from(violates);
            victims.pods.push(p);
        }
    }
    victims.pods.sort_by(|a, b| more_important_first(&a.pod, &b.pod, now));
    Ok(victims)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::framework::FilterPlugin;
    use crate::plugins::node_resources_fit::NodeResourcesFit;
    use crate::testing::{node, node_info, pod_with_cpu};
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    pub(crate) struct FitOnly;
    impl FilterRunner for FitOnly {
        fn run_filters(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Status {
            NodeResourcesFit::default().filter(state, pod, node)
        }
    }

    pub(crate) fn prio(name: &str, cpu: &str, priority: i32, started: i64) -> Pod {
        let mut p = pod_with_cpu(name, cpu);
        if let Some(s) = p.spec.as_mut() {
            s.priority = Some(priority);
        }
        p.status = Some(PodStatus {
            start_time: Timestamp::from_second(started).ok().map(Time),
            ..Default::default()
        });
        p
    }

    fn names(v: &[PodInfo]) -> Vec<String> {
        v.iter().map(|p| p.pod.metadata.name.clone().unwrap_or_default()).collect()
    }

    /// Name, preemptor, pods on the node, victims wanted (or the rejection's message).
    type Case = (&'static str, Pod, Vec<Pod>, Result<Vec<&'static str>, &'static str>);

    #[test]
    fn victims_and_reprieve_order() {
        let now = Timestamp::from_second(10_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let cases: Vec<Case> = vec![
            (
                "only what is needed goes; the most important is reprieved first",
                prio("p", "2", 100, 0),
                vec![prio("low", "1", 1, 10), prio("mid", "1", 50, 10), prio("high", "2", 200, 10)],
                Ok(vec!["mid", "low"]),
            ),
            (
                "one slot needed: the higher-priority one stays",
                prio("p", "1", 100, 0),
                vec![prio("low", "1", 1, 10), prio("mid", "1", 50, 10), prio("high", "2", 200, 10)],
                Ok(vec!["low"]),
            ),
            (
                "equal priority: the earlier started is reprieved, the later one goes",
                prio("p", "1", 100, 0),
                vec![prio("late", "1", 5, 200), prio("early", "1", 5, 100), prio("high", "2", 200, 10)],
                Ok(vec!["late"]),
            ),
            (
                "nothing of lower priority",
                prio("p", "1", 100, 0),
                vec![prio("a", "2", 100, 10), prio("b", "2", 300, 10)],
                Err("No preemption victims found for incoming pod"),
            ),
            (
                "does not fit even with every lower-priority pod gone",
                prio("p", "3", 100, 0),
                vec![prio("low", "1", 1, 10), prio("high", "3", 200, 10)],
                Err("Insufficient cpu"),
            ),
        ];
        for (name, pod, pods, want) in cases {
            let ni = node_info(node("n", "4", "4Gi"), pods);
            let got = select_victims(&CycleState::new(), &pod, &ni, &FitOnly, &[], now);
            let got = got.as_ref().map(|v| names(&v.pods)).map_err(Status::message);
            let want = want.map(|v| v.into_iter().map(String::from).collect::<Vec<_>>()).map_err(String::from);
            assert_eq!(got, want, "case {name}");
        }
    }

    #[test]
    fn budgets_change_the_victims() {
        let now = Timestamp::from_second(10_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let web = |mut p: Pod| {
            p.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
            p
        };
        let budget = |allowed: i32| {
            let pdb: k8s_openapi::api::policy::v1::PodDisruptionBudget = serde_json::from_value(serde_json::json!({
                "metadata": { "name": "web", "namespace": "default" },
                "spec": { "selector": { "matchLabels": { "app": "web" } } },
                "status": { "disruptionsAllowed": allowed, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0 }
            }))
            .unwrap_or_default();
            Budget::new(&pdb)
        };
        let pods = || vec![web(prio("low", "1", 1, 10)), prio("mid", "1", 50, 10), prio("high", "2", 200, 10)];
        let cases = [
            ("no budget: the least important goes", prio("p", "1", 100, 0), vec![], (vec!["low"], 0)),
            ("a protected pod is reprieved before more important ones", prio("p", "1", 100, 0), vec![budget(0)], (vec!["mid"], 0)),
            ("a budget with room protects nothing", prio("p", "1", 100, 0), vec![budget(1)], (vec!["low"], 0)),
            ("needed anyway: counted as a violation", prio("p", "2", 100, 0), vec![budget(0)], (vec!["mid", "low"], 1)),
        ];
        for (name, p, budgets, (want, violations)) in cases {
            let ni = node_info(node("n", "4", "4Gi"), pods());
            let got = select_victims(&CycleState::new(), &p, &ni, &FitOnly, &budgets, now);
            let got = got.map(|v| (names(&v.pods), v.pdb_violations)).map_err(|s| s.message());
            let want = (want.into_iter().map(String::from).collect::<Vec<_>>(), violations);
            assert_eq!(got, Ok(want), "case {name}");
        }
    }
}
