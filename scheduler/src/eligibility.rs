//! Which pods this scheduler is responsible for.

use k8s_openapi::api::core::v1::Pod;

/// The scheduler name the API server defaults `spec.schedulerName` to.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// The profile the pod asks for (`spec.schedulerName`, defaulted).
pub fn scheduler_name(pod: &Pod) -> &str {
    pod.spec.as_ref().and_then(|s| s.scheduler_name.as_deref()).filter(|n| !n.is_empty()).unwrap_or(DEFAULT_SCHEDULER_NAME)
}

/// Pending pods addressed to `scheduler_name`: no node yet, not being deleted, not finished.
/// (Scheduling gates are handled by the queue, which holds gated pods without trying them.)
pub fn responsible_for(pod: &Pod, scheduler_name: &str) -> bool {
    responsible_for_any(pod, &[scheduler_name])
}

/// Pending pods addressed to any of `names` (one per profile this scheduler serves).
pub fn responsible_for_any(pod: &Pod, names: &[impl AsRef<str>]) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return false };
    let name = scheduler_name(pod);
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    names.iter().any(|n| n.as_ref() == name)
        && spec.node_name.as_deref().is_none_or(str::is_empty)
        && pod.metadata.deletion_timestamp.is_none()
        && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// Whether the pod is bound to a node.
pub fn is_assigned(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    #[test]
    fn cases() {
        let edit = |f: &dyn Fn(&mut Pod)| {
            let mut p = pod("p");
            f(&mut p);
            p
        };
        let cases = [
            ("pending pod for us", pod("p"), true),
            ("scheduler name unset means default", edit(&|p| p.spec.as_mut().into_iter().for_each(|s| s.scheduler_name = None)), true),
            ("another scheduler", edit(&|p| p.spec.as_mut().into_iter().for_each(|s| s.scheduler_name = Some("other".into()))), false),
            ("already bound", edit(&|p| p.spec.as_mut().into_iter().for_each(|s| s.node_name = Some("n".into()))), false),
            ("terminating", edit(&|p| p.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH))), false),
            ("finished", edit(&|p| p.status = Some(PodStatus { phase: Some("Succeeded".into()), ..Default::default() })), false),
        ];
        for (name, p, want) in cases {
            assert_eq!(responsible_for(&p, DEFAULT_SCHEDULER_NAME), want, "case {name}");
        }
    }
}
