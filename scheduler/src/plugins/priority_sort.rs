//! PrioritySort: the active queue serves higher `spec.priority` first and, among equals, the pod that
//! has waited longest.

use std::sync::Arc;

use crate::framework::node_info::pod_priority;
use crate::framework::registry::{Handle, Result};
use crate::framework::{Plugin, QueueSortPlugin, QueuedPodInfo};

pub const NAME: &str = "PrioritySort";

pub struct PrioritySort;

pub fn new(_: &Handle) -> Result<Arc<dyn Plugin>> {
    Ok(Arc::new(PrioritySort))
}

impl Plugin for PrioritySort {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        Some(self)
    }
}

impl QueueSortPlugin for PrioritySort {
    fn less(&self, a: &QueuedPodInfo<'_>, b: &QueuedPodInfo<'_>) -> bool {
        let (pa, pb) = (pod_priority(a.pod), pod_priority(b.pod));
        pa > pb || (pa == pb && a.timestamp < b.timestamp)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::testing::pod;

    #[test]
    fn higher_priority_then_older_first() {
        let with_priority = |name: &str, p: i32| {
            let mut pod = pod(name);
            if let Some(s) = pod.spec.as_mut() {
                s.priority = Some(p);
            }
            pod
        };
        let (low, high, high2) = (with_priority("low", 1), with_priority("high", 10), with_priority("high2", 10));
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        let at = |pod, timestamp| QueuedPodInfo { pod, timestamp };
        let cases = [
            ("higher priority first, even if newer", at(&high, t1), at(&low, t0), true),
            ("lower priority later, even if older", at(&low, t0), at(&high, t1), false),
            ("equal priority: older first", at(&high, t0), at(&high2, t1), true),
            ("equal priority: newer later", at(&high2, t1), at(&high, t0), false),
            ("same pod and time: neither first", at(&high, t0), at(&high, t0), false),
        ];
        for (name, a, b, want) in cases {
            assert_eq!(PrioritySort.less(&a, &b), want, "case {name}");
        }
    }
}
