//! One budget's sync: find its pods, work out expected and desired healthy counts, prune recorded
//! disruptions, and write the status if it changed — or, when any step fails, the fail-safe status
//! that allows no disruptions.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::core::SelectorExt;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::budget::{Requirement, disruptions_allowed};
use super::status::{self, Counts};
use super::{Context, Error, budget_selector, health, scale};

/// A budget is synced again this often even if nothing it watches changes (scale changes of its
/// pods' controllers are not watched).
const RESYNC: Duration = Duration::from_secs(30);

pub async fn reconcile(budget: Arc<PodDisruptionBudget>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = budget.metadata.namespace.clone().ok_or(Error::MissingField("namespace"))?;
    let name = budget.metadata.name.clone().ok_or(Error::MissingField("name"))?;
    let key = format!("{ns}/{name}");
    let now = Timestamp::now();
    let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), &ns);
    match compute(&budget, &ctx, &ns, &key, now).await {
        Ok((next, recheck_at)) => {
            if let Some(next) = next {
                write(&api, &budget, &key, next).await?;
            }
            let until_recheck = recheck_at.and_then(|t| Duration::try_from(t.duration_since(now)).ok()).map(|d| d + Duration::from_secs(1));
            Ok(Action::requeue(until_recheck.map_or(RESYNC, |d| d.min(RESYNC))))
        }
        Err(error) => {
            // Upstream's fail-safe: a budget whose state is unknown allows nothing.
            let failed = status::failed(&budget, error.condition_message(), now);
            if budget.status.as_ref() != Some(&failed) {
                write(&api, &budget, &key, failed).await?;
            }
            Err(error)
        }
    }
}

/// The status to write (None: unchanged) and when a recorded disruption expires.
async fn compute(budget: &PodDisruptionBudget, ctx: &Context, ns: &str, key: &str, now: Timestamp) -> Result<(Option<PodDisruptionBudgetStatus>, Option<Timestamp>), Error> {
    let regarding = budget.object_ref(&());
    let spec = budget.spec.clone().unwrap_or_default();
    let selector = match budget_selector(spec.selector.as_ref()) {
        Ok(selector) => selector,
        Err(reason) => {
            ctx.events.warning(&regarding, None, "NoSelector", "Sync", format!("Selector is invalid: {reason}")).await;
            return Err(Error::Selector { budget: key.to_string(), reason });
        }
    };
    let all = ctx.pods.state();
    let empty = Default::default();
    let pods: Vec<&Pod> = all
        .iter()
        .map(AsRef::as_ref)
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
        .filter(|p| selector.as_ref().is_some_and(|s| s.matches(p.metadata.labels.as_ref().unwrap_or(&empty))))
        .collect();
    if pods.is_empty() {
        ctx.events.normal(&regarding, None, "NoPods", "Sync", "No matching pods found".to_string()).await;
    }

    let requirement = Requirement::of(spec.min_available.as_ref(), spec.max_unavailable.as_ref());
    let pod_count = i32::try_from(pods.len()).unwrap_or(i32::MAX);
    let scale = if requirement.needs_scale() {
        let expected = scale::expected(&ctx.client, &ctx.controllers, &pods).await.map_err(|e| expected_failed(ctx, budget, e.to_string()));
        let expected = match expected {
            Ok(expected) => expected,
            Err(pending) => return Err(pending.await),
        };
        if !expected.unmanaged.is_empty() {
            tracing::debug!(budget = key, pods = ?expected.unmanaged, "pods without a controller");
            let note = format!(
                "Pods selected by this PodDisruptionBudget (selector: {}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.",
                selector.as_ref().map(ToString::to_string).unwrap_or_default()
            );
            ctx.events.warning(&regarding, None, "UnmanagedPods", "Sync", note).await;
        }
        expected.count
    } else {
        0
    };
    let (expected_pods, desired_healthy) = match requirement.expected_and_desired(pod_count, scale) {
        Ok(counts) => counts,
        Err(e) => return Err(expected_failed(ctx, budget, e.to_string()).await),
    };

    let disrupted = health::still_disrupted(budget.status.as_ref().and_then(|s| s.disrupted_pods.as_ref()), &pods, now);
    for pod in pods.iter().filter(|p| p.metadata.name.as_ref().is_some_and(|n| disrupted.not_deleted.contains(n))) {
        let note = format!("Pod was expected by PDB {ns}/{} to be deleted but it wasn't", budget.name_any());
        ctx.events.warning(&pod.object_ref(&()), None, "NotDeleted", "Sync", note).await;
    }
    let current_healthy = health::current_healthy(&pods, &disrupted.pods);
    let counts = Counts {
        current_healthy,
        desired_healthy,
        expected_pods,
        disruptions_allowed: disruptions_allowed(current_healthy, desired_healthy, expected_pods),
        disrupted_pods: disrupted.pods,
    };
    Ok((status::next(budget, counts, now), disrupted.recheck_at))
}

/// Records why the expected count is unknown and returns the error.
async fn expected_failed(ctx: &Context, budget: &PodDisruptionBudget, message: String) -> Error {
    let note = format!("Failed to calculate the number of expected pods: {message}");
    ctx.events.warning(&budget.object_ref(&()), None, "CalculateExpectedPodCountFailed", "Sync", note).await;
    Error::Expected(message)
}

/// Writes `status` with a full update guarded by the resource version the sync read (like
/// upstream's UpdateStatus): a status the eviction API just changed — a newly disrupted pod — is
/// never overwritten from an older view, and dropped `disruptedPods` entries really go.
async fn write(api: &Api<PodDisruptionBudget>, budget: &PodDisruptionBudget, key: &str, status: PodDisruptionBudgetStatus) -> Result<(), Error> {
    let updated = PodDisruptionBudget { status: Some(status), ..budget.clone() };
    match api.replace_status(&budget.name_any(), &PostParams::default(), &updated).await {
        Ok(_) => Ok(()),
        Err(e) if crate::api_errors::is_not_found(&e) => Ok(()),
        Err(source) => Err(Error::Api { budget: key.to_string(), source }),
    }
}
