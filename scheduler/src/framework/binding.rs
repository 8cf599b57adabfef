//! The extension points around the scheduling cycle proper: PreEnqueue and QueueSort (used by the queue),
//! and Reserve/Unreserve, Permit, PreBind and PostBind (between choosing a node and binding to it).
//! Messages follow upstream's `running <Point> plugin "<name>": …`.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use super::interface::{QueuedPodInfo, QueueSortPlugin};
use super::points::Point;
use super::runtime::Framework;
use super::{CycleState, Plugin, Status};

/// The longest a Permit plugin may make a pod wait (upstream's cap).
pub const MAX_PERMIT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// What the Permit plugins decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermitOutcome {
    Allowed,
    /// Bind only once each of these plugins allowed it, each within its timeout.
    Wait(Vec<(&'static str, Duration)>),
    /// Turned down (Unschedulable) or failed (Error).
    Denied(Status),
}

/// A profile's QueueSort plugin as the queue holds it.
pub struct QueueSort(Arc<dyn Plugin>);

impl QueueSortPlugin for QueueSort {
    fn less(&self, a: &QueuedPodInfo<'_>, b: &QueuedPodInfo<'_>) -> bool {
        self.0.as_queue_sort().is_some_and(|q| q.less(a, b))
    }
}

impl Framework {
    /// The first PreEnqueue plugin that holds the pod back, or success.
    pub fn run_pre_enqueue(&self, pod: &Pod) -> Status {
        for e in self.plugins().iter().filter(|e| e.runs_at(Point::PreEnqueue)) {
            let Some(p) = e.plugin.as_pre_enqueue() else { continue };
            let s = p.pre_enqueue(pod);
            if !s.is_success() {
                return s.with_plugin(e.name());
            }
        }
        Status::success()
    }

    /// The profile's QueueSort plugin (validation makes sure there is exactly one).
    pub fn queue_sort(&self) -> Option<QueueSort> {
        self.plugins().iter().find(|e| e.runs_at(Point::QueueSort) && e.plugin.as_queue_sort().is_some()).map(|e| QueueSort(e.plugin.clone()))
    }

    /// Runs every Reserve plugin; when one fails, all of them unreserve (as upstream) and its status is
    /// returned.
    pub fn run_reserve(&self, state: &mut CycleState, pod: &Pod, node: &str) -> Status {
        for e in self.plugins().iter().filter(|e| e.runs_at(Point::Reserve)) {
            let Some(r) = e.plugin.as_reserve() else { continue };
            let s = r.reserve(state, pod, node);
            if s.is_success() || s.is_skip() {
                continue;
            }
            self.run_unreserve(state, pod, node);
            return if s.is_rejected() {
                s.with_plugin(e.name())
            } else {
                Status::error(format!("running Reserve plugin {:?}: {}", e.name(), s.message())).with_plugin(e.name())
            };
        }
        Status::success()
    }

    /// Undoes every Reserve plugin's claim, in reverse order.
    pub fn run_unreserve(&self, state: &mut CycleState, pod: &Pod, node: &str) {
        for e in self.plugins().iter().rev().filter(|e| e.runs_at(Point::Reserve)) {
            if let Some(r) = e.plugin.as_reserve() {
                r.unreserve(state, pod, node);
            }
        }
    }

    /// Asks every Permit plugin; a rejection or error ends it, waits are collected.
    pub fn run_permit(&self, state: &CycleState, pod: &Pod, node: &str) -> PermitOutcome {
        let mut waits = Vec::new();
        for e in self.plugins().iter().filter(|e| e.runs_at(Point::Permit)) {
            let Some(p) = e.plugin.as_permit() else { continue };
            let (s, timeout) = p.permit(state, pod, node);
            match s.code() {
                super::Code::Success | super::Code::Skip => {}
                super::Code::Wait => waits.push((e.name(), timeout.min(MAX_PERMIT_TIMEOUT))),
                super::Code::Unschedulable | super::Code::UnschedulableAndUnresolvable => {
                    return PermitOutcome::Denied(s.with_plugin(e.name()));
                }
                super::Code::Error => {
                    let m = format!("running Permit plugin {:?}: {}", e.name(), s.message());
                    return PermitOutcome::Denied(Status::error(m).with_plugin(e.name()));
                }
            }
        }
        if waits.is_empty() { PermitOutcome::Allowed } else { PermitOutcome::Wait(waits) }
    }

    /// Runs the PreBind plugins in order; the first failure stops the binding.
    pub async fn run_pre_bind(&self, state: &CycleState, pod: &Pod, node: &str) -> Status {
        for e in self.plugins().iter().filter(|e| e.runs_at(Point::PreBind)) {
            let Some(p) = e.plugin.as_pre_bind() else { continue };
            let s = p.pre_bind(state, pod, node).await;
            if s.is_success() || s.is_skip() {
                continue;
            }
            return if s.is_rejected() {
                s.with_plugin(e.name())
            } else {
                Status::error(format!("running PreBind plugin {:?}: {}", e.name(), s.message())).with_plugin(e.name())
            };
        }
        Status::success()
    }

    pub fn run_post_bind(&self, state: &CycleState, pod: &Pod, node: &str) {
        for e in self.plugins().iter().filter(|e| e.runs_at(Point::PostBind)) {
            if let Some(p) = e.plugin.as_post_bind() {
                p.post_bind(state, pod, node);
            }
        }
    }
}

#[cfg(test)]
#[path = "binding_tests.rs"]
mod tests;
