use std::sync::Mutex;

use futures::future::BoxFuture;

use super::*;
use crate::framework::interface::{PermitPlugin, PostBindPlugin, PreBindPlugin, ReservePlugin};
use crate::framework::{Code, Enabled};
use crate::testing::pod;

/// A plugin at Reserve, Permit, PreBind and PostBind that answers with fixed codes and records calls.
struct Recorder {
    name: &'static str,
    reserve: Code,
    permit: Code,
    pre_bind: Code,
    calls: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn log(&self, what: &str) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{}:{what}", self.name));
    }
}

fn status(code: Code) -> Status {
    Status::new(code, ["said so"])
}

impl Plugin for Recorder {
    fn name(&self) -> &'static str {
        self.name
    }
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        Some(self)
    }
    fn as_permit(&self) -> Option<&dyn PermitPlugin> {
        Some(self)
    }
    fn as_pre_bind(&self) -> Option<&dyn PreBindPlugin> {
        Some(self)
    }
    fn as_post_bind(&self) -> Option<&dyn PostBindPlugin> {
        Some(self)
    }
}

impl ReservePlugin for Recorder {
    fn reserve(&self, _: &mut CycleState, _: &Pod, _: &str) -> Status {
        self.log("reserve");
        status(self.reserve)
    }
    fn unreserve(&self, _: &mut CycleState, _: &Pod, _: &str) {
        self.log("unreserve");
    }
}

impl PermitPlugin for Recorder {
    fn permit(&self, _: &CycleState, _: &Pod, _: &str) -> (Status, Duration) {
        (status(self.permit), Duration::from_secs(3600))
    }
}

impl PreBindPlugin for Recorder {
    fn pre_bind<'a>(&'a self, _: &'a CycleState, _: &'a Pod, _: &'a str) -> BoxFuture<'a, Status> {
        self.log("preBind");
        Box::pin(async move { status(self.pre_bind) })
    }
}

impl PostBindPlugin for Recorder {
    fn post_bind(&self, _: &CycleState, _: &Pod, _: &str) {
        self.log("postBind");
    }
}

fn framework(codes: &[(&'static str, Code, Code, Code)]) -> (Framework, Arc<Mutex<Vec<String>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let plugins = codes
        .iter()
        .map(|(name, reserve, permit, pre_bind)| {
            let p: Arc<dyn Plugin> = Arc::new(Recorder { name, reserve: *reserve, permit: *permit, pre_bind: *pre_bind, calls: calls.clone() });
            Enabled::everywhere(p, 0)
        })
        .collect();
    (Framework::from_enabled("p".into(), plugins, None), calls)
}

fn calls(c: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    std::mem::take(&mut *c.lock().unwrap_or_else(|p| p.into_inner()))
}

#[test]
fn a_failed_reserve_unreserves_every_plugin_in_reverse() {
    let ok = Code::Success;
    let cases = [
        ("all reserve", Code::Success, Code::Success, vec!["A:reserve", "B:reserve"]),
        ("second rejects", Code::Success, Code::Unschedulable, vec!["A:reserve", "B:reserve", "B:unreserve", "A:unreserve"]),
        ("first fails", Code::Error, Code::Success, vec!["A:reserve", "B:unreserve", "A:unreserve"]),
    ];
    for (name, a, b, want) in cases {
        let (f, log) = framework(&[("A", a, ok, ok), ("B", b, ok, ok)]);
        let s = f.run_reserve(&mut CycleState::new(), &pod("p"), "n");
        assert_eq!(calls(&log), want, "case {name}");
        let want_code = if a == Code::Error { Code::Error } else { b };
        assert_eq!(s.code(), want_code, "case {name}");
    }
}

#[test]
fn permit_collects_waits_and_stops_at_a_denial() {
    let ok = Code::Success;
    let (f, _) = framework(&[("A", ok, Code::Wait, ok), ("B", ok, Code::Success, ok)]);
    assert_eq!(f.run_permit(&CycleState::new(), &pod("p"), "n"), PermitOutcome::Wait(vec![("A", MAX_PERMIT_TIMEOUT)]));
    let (f, _) = framework(&[("A", ok, Code::Wait, ok), ("B", ok, Code::Unschedulable, ok)]);
    match f.run_permit(&CycleState::new(), &pod("p"), "n") {
        PermitOutcome::Denied(s) => assert_eq!((s.code(), s.plugin()), (Code::Unschedulable, Some("B"))),
        other => panic!("expected a denial, got {other:?}"),
    }
    let (f, _) = framework(&[("A", ok, ok, ok)]);
    assert_eq!(f.run_permit(&CycleState::new(), &pod("p"), "n"), PermitOutcome::Allowed);
}

#[tokio::test]
async fn pre_bind_stops_at_the_first_failure_and_post_bind_tells_everyone() {
    let ok = Code::Success;
    let (f, log) = framework(&[("A", ok, ok, Code::Error), ("B", ok, ok, ok)]);
    let s = f.run_pre_bind(&CycleState::new(), &pod("p"), "n").await;
    assert_eq!((s.code(), s.message()), (Code::Error, "running PreBind plugin \"A\": said so".to_string()));
    assert_eq!(calls(&log), vec!["A:preBind"]);
    f.run_post_bind(&CycleState::new(), &pod("p"), "n");
    assert_eq!(calls(&log), vec!["A:postBind", "B:postBind"]);
}
