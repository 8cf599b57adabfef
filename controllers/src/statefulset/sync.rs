//! One sync of one set: claim its pods, settle its revisions, make the planned writes, report
//! status and prune history. Idempotent: every decision is derived from the caches and the set.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::identity::{self, PodSource};
use super::order::{self, Member, Step};
use super::revision::{self, Decision};
use super::status::{self, Revisions};
use super::update::{self, Strategy};
use super::{Context, Error, claims};
use crate::api_errors;
use crate::ownership::{self, Claim};
use crate::replicaset::api_message;

/// The set being synced, as the writes need it.
struct Target<'a> {
    set: &'a StatefulSet,
    ns: &'a str,
    name: &'a str,
    /// `namespace/name`: the pending-writes key and the error label.
    key: String,
    regarding: ObjectReference,
    owner: OwnerReference,
}

impl Target<'_> {
    fn error(&self, action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error + '_ {
        let action = action.into();
        move |source| Error::Api { action, set: self.key.clone(), source }
    }
}

pub async fn reconcile(set: Arc<StatefulSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = set.metadata.namespace.clone().ok_or(Error::MissingField("namespace"))?;
    let name = set.metadata.name.clone().ok_or(Error::MissingField("name"))?;
    let uid = set.metadata.uid.clone().ok_or(Error::MissingField("uid"))?;
    let owner = ownership::controller_reference("apps/v1", "StatefulSet", &set.metadata).ok_or(Error::MissingField("uid"))?;
    let target = Target { set: &set, ns: &ns, name: &name, key: format!("{ns}/{name}"), regarding: set.object_ref(&()), owner };
    let spec = set.spec.clone().unwrap_or_default();
    let deleting = set.metadata.deletion_timestamp.is_some();

    // Plan only on a cache that shows this set's own earlier writes.
    let settled = ctx.pending.settled(&target.key, Instant::now(), |pod| {
        let cached = ctx.pods.get(&ObjectRef::new(pod).within(&ns))?;
        Some((cached.metadata.uid.clone().unwrap_or_default(), cached.metadata.deletion_timestamp.is_some()))
    });
    let pods = claim_pods(&target, &ctx, &uid, deleting).await?;
    let (current, update, collision_count) = settle_revisions(&target, &ctx, &uid).await?;

    let now = Timestamp::now();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let start = identity::start_ordinal(&spec);
    let members: Vec<Member> = pods
        .values()
        .filter_map(|p| identity::ordinal_of(&name, p.metadata.name.as_deref()?).map(|o| Member::from_pod(p, o, min_ready, now)))
        .collect();
    let revisions = Revisions { current: current.0.as_str(), update: update.0.as_str(), collision_count };
    let new_status = status::compute(&set, &members, &revisions);

    let mut failure = None;
    if settled && !deleting {
        let strategy = Strategy::of(&spec);
        let monotonic = spec.pod_management_policy.as_deref() != Some("Parallel");
        let (slots, condemned) = order::partition(members.clone(), start, spec.replicas.unwrap_or(1));
        for step in order::plan(&slots, &condemned, monotonic, &strategy, &update.0) {
            let result = match step {
                Step::Create(ordinal) => {
                    let chosen = update::revision_for_new_pod(&strategy, ordinal - start, &current.0, &update.0);
                    let template = if chosen == current.0 { &current.1 } else { &update.1 };
                    create_member(&target, &ctx, ordinal, chosen, template).await
                }
                Step::Delete(pod_name) => match pods.get(&pod_name) {
                    Some(pod) => delete_member(&target, &ctx, pod).await,
                    None => Ok(()),
                },
            };
            if let Err(error) = result {
                failure = Some(error);
                break;
            }
        }
    }

    if status::differs(set.status.as_ref(), &new_status) {
        let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
        let updated = StatefulSet { status: Some(new_status.clone()), ..(*set).clone() };
        api.replace_status(&name, &PostParams::default(), &updated).await.map_err(target.error("update status"))?;
    }
    if let Some(error) = failure {
        return Err(error);
    }
    prune_history(&target, &ctx, &uid, &pods, [&current.0, &update.0], spec.revision_history_limit).await?;

    // A ready pod becomes available only after minReadySeconds; look again then.
    if min_ready > 0 && new_status.ready_replicas != new_status.available_replicas {
        return Ok(Action::requeue(Duration::from_secs(u64::try_from(min_ready).unwrap_or(1) + 1)));
    }
    Ok(Action::await_change())
}

/// The set's pods by name: those it controls and still selects, plus orphans it adopts; pods it
/// controls but no longer selects are released. Only `<set>-<ordinal>` pods are members.
async fn claim_pods(target: &Target<'_>, ctx: &Context, uid: &str, deleting: bool) -> Result<HashMap<String, Arc<Pod>>, Error> {
    let selector = target.set.spec.as_ref().and_then(|s| ownership::selector(&s.selector));
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), target.ns);
    let mut owned = HashMap::new();
    for pod in ctx.pods.state().into_iter().filter(|p| p.metadata.namespace.as_deref() == Some(target.ns)) {
        let pod_name = pod.name_any();
        let member = identity::ordinal_of(target.name, &pod_name).is_some();
        match ownership::claim(uid, deleting, selector.as_ref(), &pod.metadata) {
            Claim::Owned if member => {
                owned.insert(pod_name, pod);
            }
            Claim::Adopt if member => {
                let patch = ownership::adopt_patch(&pod.metadata, &target.owner);
                let adopted = api.patch(&pod_name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(target.error("adopt pod"))?;
                owned.insert(pod_name, Arc::new(adopted));
            }
            Claim::Release => {
                let patch = ownership::release_patch(&pod.metadata, uid);
                match api.patch(&pod_name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                    Ok(_) => {}
                    Err(e) if api_errors::is_not_found(&e) => {}
                    Err(source) => return Err(target.error("release pod")(source)),
                }
            }
            _ => {}
        }
    }
    Ok(owned)
}

/// A revision's name and template.
type Rev = (String, PodTemplateSpec);

/// The set's revisions, oldest first, from the cache.
fn revisions_of(ctx: &Context, ns: &str, uid: &str) -> Vec<ControllerRevision> {
    let mut revisions: Vec<ControllerRevision> = ctx
        .revisions
        .state()
        .iter()
        .filter(|r| r.metadata.namespace.as_deref() == Some(ns))
        .filter(|r| ownership::controller_of(&r.metadata).is_some_and(|o| o.uid == uid))
        .map(|r| (**r).clone())
        .collect();
    revision::sort(&mut revisions);
    revisions
}

/// Finds or makes the update revision (the set's template now) and finds the current revision
/// (`status.currentRevision`, else the update one); returns both and the collision count.
async fn settle_revisions(target: &Target<'_>, ctx: &Context, uid: &str) -> Result<(Rev, Rev, i32), Error> {
    let set = target.set;
    let spec_template = set.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let revisions = revisions_of(ctx, target.ns, uid);
    let mut collision_count = set.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0);
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), target.ns);
    let number = revision::next_number(&revisions);
    let wanted = revision::build(set, target.owner.clone(), number, collision_count);
    let update_name = match revision::decide(&revisions, &wanted) {
        Decision::Latest(name) => name,
        Decision::Renumber(name) => {
            let patch = serde_json::json!({ "revision": number });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(target.error("renumber controller revision"))?;
            name
        }
        Decision::Create => loop {
            let candidate = revision::build(set, target.owner.clone(), number, collision_count);
            match api.create(&PostParams::default(), &candidate).await {
                Ok(created) => break created.name_any(),
                Err(e) if api_errors::is_already_exists(&e) => {
                    let name = candidate.name_any();
                    let existing = api.get(&name).await.map_err(target.error("read controller revision"))?;
                    // Our own revision the cache has not shown yet; anything else is a hash collision.
                    if existing.data == candidate.data && ownership::controller_of(&existing.metadata).is_some_and(|o| o.uid == uid) {
                        break name;
                    }
                    collision_count = collision_count.saturating_add(1);
                }
                // Nothing can be created in a terminating namespace, and nothing needs to be.
                Err(e) if api_errors::is_namespace_terminating(&e) => break candidate.name_any(),
                Err(source) => return Err(target.error("create controller revision")(source)),
            }
        },
    };
    let update = (update_name, spec_template.clone());
    let status_current = set.status.as_ref().and_then(|s| s.current_revision.clone()).unwrap_or_default();
    let current = revisions
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(status_current.as_str()) && status_current != update.0)
        .and_then(|r| Some((status_current.clone(), revision::template_of(r)?)))
        .unwrap_or_else(|| update.clone());
    Ok((current, update, collision_count))
}

/// Creates the claims of the pod at `ordinal` that do not exist yet, then the pod itself.
async fn create_member(target: &Target<'_>, ctx: &Context, ordinal: i32, revision: &str, template: &PodTemplateSpec) -> Result<(), Error> {
    let spec = target.set.spec.clone().unwrap_or_default();
    let source = PodSource { set: &target.set.metadata, spec: &spec, template, revision, owner: target.owner.clone() };
    let pod = identity::new_pod(&source, ordinal);
    let pod_name = pod.name_any();
    let claims_api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), target.ns);
    for claim in claims::for_ordinal(&target.set.metadata, &spec, &target.owner, ordinal) {
        let claim_name = claim.name_any();
        match claims_api.get_opt(&claim_name).await.map_err(target.error("read claim"))? {
            Some(_) => continue,
            None => match claims_api.create(&PostParams::default(), &claim).await {
                Ok(_) => {
                    let note = format!("create Claim {claim_name} Pod {pod_name} in StatefulSet {} success", target.name);
                    ctx.events.normal(&target.regarding, None, "SuccessfulCreate", "Create", note).await;
                }
                Err(e) if api_errors::is_already_exists(&e) => {}
                Err(source) => {
                    let note = format!("create Claim {claim_name} for Pod {pod_name} in StatefulSet {} failed error: {}", target.name, api_message(&source));
                    ctx.events.warning(&target.regarding, None, "FailedCreate", "Create", note).await;
                    return Err(target.error(format!("create claim {claim_name}"))(source));
                }
            },
        }
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), target.ns);
    match api.create(&PostParams::default(), &pod).await {
        Ok(created) => {
            ctx.pending.created(&target.key, pod_name.clone(), Instant::now());
            let note = format!("create Pod {pod_name} in StatefulSet {} successful", target.name);
            ctx.events.normal(&target.regarding, Some(created.object_ref(&())), "SuccessfulCreate", "Create", note).await;
            Ok(())
        }
        // The cache has not shown it yet; the next sync will.
        Err(e) if api_errors::is_already_exists(&e) => Ok(()),
        Err(e) if api_errors::is_namespace_terminating(&e) => Ok(()),
        Err(source) => {
            let note = format!("create Pod {pod_name} in StatefulSet {} failed error: {}", target.name, api_message(&source));
            ctx.events.warning(&target.regarding, None, "FailedCreate", "Create", note).await;
            Err(target.error(format!("create pod {pod_name}"))(source))
        }
    }
}

/// Deletes one member pod (this incarnation only).
async fn delete_member(target: &Target<'_>, ctx: &Context, pod: &Pod) -> Result<(), Error> {
    let pod_name = pod.name_any();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), target.ns);
    let params = DeleteParams { preconditions: Some(Preconditions { uid: Some(uid.clone()), resource_version: None }), ..Default::default() };
    match api.delete(&pod_name, &params).await {
        Ok(_) => {
            ctx.pending.deleted(&target.key, pod_name.clone(), uid, Instant::now());
            let note = format!("delete Pod {pod_name} in StatefulSet {} successful", target.name);
            ctx.events.normal(&target.regarding, Some(pod.object_ref(&())), "SuccessfulDelete", "Delete", note).await;
            Ok(())
        }
        Err(e) if api_errors::is_not_found(&e) => Ok(()),
        Err(source) => {
            let note = format!("delete Pod {pod_name} in StatefulSet {} failed error: {}", target.name, api_message(&source));
            ctx.events.warning(&target.regarding, None, "FailedDelete", "Delete", note).await;
            Err(target.error(format!("delete pod {pod_name}"))(source))
        }
    }
}

/// Deletes the oldest revisions nothing uses beyond `revisionHistoryLimit`.
async fn prune_history(
    target: &Target<'_>,
    ctx: &Context,
    uid: &str,
    pods: &HashMap<String, Arc<Pod>>,
    in_use: [&String; 2],
    limit: Option<i32>,
) -> Result<(), Error> {
    let revisions = revisions_of(ctx, target.ns, uid);
    let mut live: HashSet<String> = in_use.into_iter().cloned().collect();
    live.extend(pods.values().map(|p| identity::revision_of(p).to_string()));
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), target.ns);
    for name in revision::to_prune(&revisions, &live, limit.unwrap_or(revision::DEFAULT_HISTORY_LIMIT)) {
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if api_errors::is_not_found(&e) => {}
            Err(source) => return Err(target.error(format!("delete controller revision {name}"))(source)),
        }
    }
    Ok(())
}
