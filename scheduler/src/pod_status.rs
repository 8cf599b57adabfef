//! Records a scheduling failure on the pod itself: the PodScheduled condition, False, with the reason
//! and message, and the node preemption nominated it to if any (upstream patches the status the same
//! way).

use k8s_openapi::api::core::v1::{Pod, PodCondition};
use kube::api::{Api, Patch, PatchParams};

/// Failures updating a pod's status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pod has no namespace or name.
    #[error("failed to patch pod status: the pod has no namespace or name")]
    Unnamed,
    /// The API server refused the patch.
    #[error("failed to patch status of pod {key}: {source}")]
    Patch {
        key: String,
        #[source]
        source: kube::Error,
    },
}

pub const CONDITION_POD_SCHEDULED: &str = "PodScheduled";

fn current(pod: &Pod) -> Option<&PodCondition> {
    pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == CONDITION_POD_SCHEDULED)
}

/// The status patch to apply, or `None` when the pod already says exactly this.
pub fn unschedulable_patch(
    pod: &Pod,
    reason: &str,
    message: &str,
    nominated: Option<&str>,
    now: k8s_openapi::jiff::Timestamp,
) -> Option<serde_json::Value> {
    let existing = current(pod);
    let nomination_current =
        nominated.is_none_or(|n| pod.status.as_ref().and_then(|s| s.nominated_node_name.as_deref()) == Some(n));
    if nomination_current
        && existing.is_some_and(|c| c.status == "False" && c.reason.as_deref() == Some(reason) && c.message.as_deref() == Some(message))
    {
        return None;
    }
    // The transition time moves only when the status flips.
    let transition = existing
        .filter(|c| c.status == "False")
        .and_then(|c| c.last_transition_time.as_ref())
        .map_or(now, |t| t.0);
    let mut patch = serde_json::json!({
        "status": {
            "conditions": [{
                "type": CONDITION_POD_SCHEDULED,
                "status": "False",
                "reason": reason,
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(transition),
                "observedGeneration": pod.metadata.generation,
            }]
        }
    });
    if let Some(n) = nominated {
        patch["status"]["nominatedNodeName"] = n.into();
    }
    Some(patch)
}

/// Sets PodScheduled=False (and the nomination, if any) on the pod unless it already says so.
pub async fn set_unschedulable(
    client: &kube::Client,
    pod: &Pod,
    reason: &str,
    message: &str,
    nominated: Option<&str>,
) -> Result<(), Error> {
    let (Some(ns), Some(name)) = (pod.metadata.namespace.as_deref(), pod.metadata.name.as_deref()) else {
        return Err(Error::Unnamed);
    };
    let Some(patch) = unschedulable_patch(pod, reason, message, nominated, k8s_openapi::jiff::Timestamp::now()) else {
        return Ok(());
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    match api.patch_status(name, &PatchParams::default(), &Patch::Strategic(patch)).await {
        Ok(_) => Ok(()),
        // Deleted meanwhile: nothing left to report on.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(Error::Patch { key: format!("{ns}/{name}"), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn with_condition(status: &str, reason: &str, message: &str, at: Timestamp) -> Pod {
        let mut p = pod("p");
        p.status = Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: CONDITION_POD_SCHEDULED.into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                last_transition_time: Some(Time(at)),
                ..Default::default()
            }]),
            ..Default::default()
        });
        p
    }

    #[test]
    fn patches() {
        let earlier = Timestamp::UNIX_EPOCH;
        let now = Timestamp::from_second(1_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let cases = [
            ("no condition yet", pod("p"), Some(now)),
            ("same condition: nothing to do", with_condition("False", "Unschedulable", "m", earlier), None),
            ("new message keeps the transition time", with_condition("False", "Unschedulable", "old", earlier), Some(earlier)),
            ("status flips: new transition time", with_condition("True", "", "", earlier), Some(now)),
        ];
        for (name, p, want) in cases {
            let got = unschedulable_patch(&p, "Unschedulable", "m", None, now);
            let got_time = got.as_ref().map(|v| v["status"]["conditions"][0]["lastTransitionTime"].as_str().unwrap_or("").to_string());
            let want_time = want.map(|t| serde_json::to_value(Time(t)).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default());
            assert_eq!(got_time, want_time, "case {name}");
            if let Some(v) = got {
                assert_eq!(v["status"]["conditions"][0]["reason"], "Unschedulable", "case {name}");
                assert_eq!(v["status"]["conditions"][0]["status"], "False", "case {name}");
            }
        }
    }

    #[test]
    fn nomination() {
        let now = Timestamp::from_second(1_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let same = with_condition("False", "Unschedulable", "m", now);
        let mut nominated = same.clone();
        if let Some(s) = nominated.status.as_mut() {
            s.nominated_node_name = Some("n1".into());
        }
        let cases = [
            ("new nomination is patched even when the condition is unchanged", same.clone(), Some("n1"), Some("n1")),
            ("nomination already recorded: nothing to do", nominated.clone(), Some("n1"), None),
            ("another node replaces it", nominated, Some("n2"), Some("n2")),
        ];
        for (name, p, want_node, want) in cases {
            let got = unschedulable_patch(&p, "Unschedulable", "m", want_node, now);
            let got = got.map(|v| v["status"]["nominatedNodeName"].as_str().unwrap_or_default().to_string());
            assert_eq!(got.as_deref(), want, "case {name}");
        }
        let plain = unschedulable_patch(&pod("p"), "Unschedulable", "m", None, now);
        assert!(plain.is_some_and(|v| v["status"].get("nominatedNodeName").is_none()), "no nomination, no field");
    }
}
