//! SchedulingGates: a pod with `spec.schedulingGates` stays out of the active queue until every gate is
//! removed (the apiserver only lets gates be removed, never added, after creation).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::registry::{Handle, Result};
use crate::framework::{Plugin, PreEnqueuePlugin, Status};

pub const NAME: &str = "SchedulingGates";

pub struct SchedulingGates;

pub fn new(_: &Handle) -> Result<Arc<dyn Plugin>> {
    Ok(Arc::new(SchedulingGates))
}

impl Plugin for SchedulingGates {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_pre_enqueue(&self) -> Option<&dyn PreEnqueuePlugin> {
        Some(self)
    }
}

impl PreEnqueuePlugin for SchedulingGates {
    fn pre_enqueue(&self, pod: &Pod) -> Status {
        let gates = pod.spec.as_ref().and_then(|s| s.scheduling_gates.as_deref()).unwrap_or_default();
        if gates.is_empty() {
            return Status::success();
        }
        let names: Vec<&str> = gates.iter().map(|g| g.name.as_str()).collect();
        Status::unresolvable(format!("waiting for scheduling gates: [{}]", names.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::PodSchedulingGate;

    use super::*;
    use crate::framework::Code;
    use crate::testing::pod;

    #[test]
    fn gated_pods_wait() {
        let gated = |names: &[&str]| {
            let mut p = pod("p");
            if let Some(s) = p.spec.as_mut() {
                s.scheduling_gates = Some(names.iter().map(|n| PodSchedulingGate { name: n.to_string() }).collect());
            }
            p
        };
        let cases = [
            ("no gates field", pod("p"), Code::Success, ""),
            ("empty gates", gated(&[]), Code::Success, ""),
            ("one gate", gated(&["example.com/quota"]), Code::UnschedulableAndUnresolvable, "waiting for scheduling gates: [example.com/quota]"),
            ("two gates", gated(&["a", "b"]), Code::UnschedulableAndUnresolvable, "waiting for scheduling gates: [a b]"),
        ];
        for (name, p, code, message) in cases {
            let s = SchedulingGates.pre_enqueue(&p);
            assert_eq!((s.code(), s.message().as_str()), (code, message), "case {name}");
        }
    }
}
