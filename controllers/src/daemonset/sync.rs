//! One sync of one DaemonSet: claim its pods, settle its revision, create and delete pods node by
//! node (and roll old ones), report status and prune history. Idempotent: every decision is derived
//! from the caches and the set, and nothing is planned on a cache that misses our own writes.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{ObjectReference, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::eligibility::{self, Eligibility};
use super::history::{self, Decision};
use super::{Context, Error, plan, pods, rolling, status};
use crate::api_errors;
use crate::ownership::{self, Claim};
use crate::replicaset::{Seen, api_message};

/// Upstream's cap on pods created in one sync.
const BURST_REPLICAS: usize = 250;

/// The set being synced, as the writes need it.
struct Target<'a> {
    ds: &'a DaemonSet,
    ns: &'a str,
    name: &'a str,
    uid: &'a str,
    /// `namespace/name`: the expectations key and the error label.
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

pub async fn reconcile(ds: Arc<DaemonSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = ds.metadata.namespace.clone().ok_or(Error::MissingField("namespace"))?;
    let name = ds.metadata.name.clone().ok_or(Error::MissingField("name"))?;
    let uid = ds.metadata.uid.clone().ok_or(Error::MissingField("uid"))?;
    // A set being deleted is left to the garbage collector, as upstream.
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let owner = ownership::controller_reference("apps/v1", "DaemonSet", &ds.metadata).ok_or(Error::MissingField("uid"))?;
    let target = Target { ds: &ds, ns: &ns, name: &name, uid: &uid, key: format!("{ns}/{name}"), regarding: ds.object_ref(&()), owner };
    let spec = ds.spec.clone().unwrap_or_default();

    // Check expectations before reading the cache, so pods observed in between are not missed.
    let satisfied = ctx.expectations.satisfied(&target.key, Instant::now(), |pod| Seen::in_store(&ctx.pods, pod));
    let daemon_pods = claim_pods(&target, &ctx).await?;
    let (revision_name, hash, collision_count) = settle_revision(&target, &ctx).await?;
    let generation = pods::template_generation(&ds);
    let template = pods::daemon_template(&spec.template, &hash, generation);
    let template_spec = template.spec.clone().unwrap_or_default();

    let mut nodes: Vec<(String, Eligibility)> =
        ctx.nodes.state().iter().filter_map(|n| Some((n.metadata.name.clone()?, eligibility::of(&template_spec, n)))).collect();
    nodes.sort_by(|a, b| a.0.cmp(&b.0));
    let by_node = plan::by_node(&daemon_pods);
    let now = Timestamp::now();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);

    let mut retry_after: Option<Duration> = None;
    let mut failure = None;
    if satisfied {
        let mut to_create: Vec<&str> = Vec::new();
        let mut to_delete: Vec<Arc<Pod>> = Vec::new();
        let known: HashSet<&str> = nodes.iter().map(|(n, _)| n.as_str()).collect();
        for (node, eligibility) in &nodes {
            let on_node = by_node.get(node).map(Vec::as_slice).unwrap_or_default();
            let node_plan = plan::for_node(*eligibility, on_node);
            if node_plan.create {
                to_create.push(node);
            }
            to_delete.extend(node_plan.delete);
            for pod in node_plan.failed {
                match ctx.failed_pods.attempt(&format!("{}/{node}", target.key), Instant::now()) {
                    Some(wait) => retry_after = Some(retry_after.map_or(wait, |r| r.min(wait))),
                    None => {
                        let note = format!("Found failed daemon pod {ns}/{} on node {node}, will try to kill it", pod.name_any());
                        ctx.events.warning(&target.regarding, Some(pod.object_ref(&())), "FailedDaemonPod", "Delete", note).await;
                        to_delete.push(pod);
                    }
                }
            }
        }
        // Pods meant for nodes that are gone (or for no node) have nowhere to run.
        for (node, on_node) in &by_node {
            if !known.contains(node.as_str()) {
                to_delete.extend(on_node.iter().filter(|p| !pods::is_deleting(p)).cloned());
            }
        }
        // Like upstream, roll only once the nodes are settled: replacements are measured against
        // a picture in which every node that should have a pod has one.
        if rolling::is_rolling(&spec) && to_create.is_empty() && to_delete.is_empty() {
            let should_run: Vec<&str> = nodes.iter().filter(|(_, e)| e.should_run).map(|(n, _)| n.as_str()).collect();
            let max_unavailable = rolling::max_unavailable(&spec, i32::try_from(should_run.len()).unwrap_or(i32::MAX));
            let round = rolling::Round { by_node: &by_node, should_run: &should_run, hash: &hash, generation, min_ready, now, max_unavailable };
            to_delete.extend(rolling::pods_to_replace(&round));
        }
        let mut seen = HashSet::new();
        to_delete.retain(|p| seen.insert(p.metadata.uid.clone()));
        if let Err(error) = delete_pods(&target, &ctx, &to_delete).await {
            failure = Some(error);
        } else if let Err(error) = create_pods(&target, &ctx, &template, &to_create).await {
            failure = Some(error);
        }
    }

    let conditions = ds.status.as_ref().and_then(|s| s.conditions.clone());
    let inputs = status::Inputs {
        nodes: &nodes,
        by_node: &by_node,
        hash: &hash,
        generation,
        min_ready_seconds: min_ready,
        now,
        observed_generation: ds.metadata.generation,
        collision_count,
        conditions,
    };
    let new_status = status::compute(&inputs);
    if status::differs(ds.status.as_ref(), &new_status) {
        let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &ns);
        let updated = DaemonSet { status: Some(new_status.clone()), ..(*ds).clone() };
        api.replace_status(&name, &PostParams::default(), &updated).await.map_err(target.error("update status"))?;
    }
    if let Some(error) = failure {
        return Err(error);
    }
    prune_history(&target, &ctx, &daemon_pods, &revision_name, spec.revision_history_limit).await?;

    // A ready pod becomes available only after minReadySeconds; look again then.
    let available_later = min_ready > 0 && new_status.number_ready != new_status.number_available.unwrap_or(0);
    if available_later {
        let wait = Duration::from_secs(u64::try_from(min_ready).unwrap_or(1) + 1);
        retry_after = Some(retry_after.map_or(wait, |r| r.min(wait)));
    }
    Ok(retry_after.map_or_else(Action::await_change, Action::requeue))
}

/// The set's pods: those it controls and still selects, plus orphans it adopts; pods it controls
/// but no longer selects are released.
async fn claim_pods(target: &Target<'_>, ctx: &Context) -> Result<Vec<Arc<Pod>>, Error> {
    let selector = target.ds.spec.as_ref().and_then(|s| ownership::selector(&s.selector));
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), target.ns);
    let mut owned = Vec::new();
    for pod in ctx.pods.state().into_iter().filter(|p| p.metadata.namespace.as_deref() == Some(target.ns)) {
        match ownership::claim(target.uid, false, selector.as_ref(), &pod.metadata) {
            Claim::Owned => owned.push(pod),
            Claim::Adopt => {
                let patch = ownership::adopt_patch(&pod.metadata, &target.owner);
                match api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
                    Ok(adopted) => owned.push(Arc::new(adopted)),
                    Err(e) if api_errors::is_not_found(&e) => {}
                    Err(source) => return Err(target.error("adopt pod")(source)),
                }
            }
            Claim::Release => {
                let patch = ownership::release_patch(&pod.metadata, target.uid);
                match api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
                    Ok(_) => {}
                    Err(e) if api_errors::is_not_found(&e) => {}
                    Err(source) => return Err(target.error("release pod")(source)),
                }
            }
            Claim::Ignore => {}
        }
    }
    Ok(owned)
}

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
    history::sort(&mut revisions);
    revisions
}

/// Finds or makes the revision holding the set's template now, making it the newest; returns its
/// name, its hash and the collision count.
async fn settle_revision(target: &Target<'_>, ctx: &Context) -> Result<(String, String, i32), Error> {
    let ds = target.ds;
    let revisions = revisions_of(ctx, target.ns, target.uid);
    let mut collision_count = ds.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0);
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), target.ns);
    let number = history::next_number(&revisions);
    let wanted = history::build(ds, target.owner.clone(), number, collision_count);
    let existing_hash = |name: &str| revisions.iter().find(|r| r.metadata.name.as_deref() == Some(name)).map(|r| history::hash_of(target.name, r));
    match history::decide(&revisions, &wanted) {
        Decision::Latest(name) => {
            let hash = existing_hash(&name).unwrap_or_default();
            Ok((name, hash, collision_count))
        }
        Decision::Renumber(name) => {
            let patch = serde_json::json!({ "revision": number });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(target.error("renumber controller revision"))?;
            let hash = existing_hash(&name).unwrap_or_default();
            Ok((name, hash, collision_count))
        }
        Decision::Create => loop {
            let candidate = history::build(ds, target.owner.clone(), number, collision_count);
            let name = candidate.name_any();
            let hash = history::hash_of(target.name, &candidate);
            match api.create(&PostParams::default(), &candidate).await {
                Ok(_) => return Ok((name, hash, collision_count)),
                Err(e) if api_errors::is_already_exists(&e) => {
                    let existing = api.get(&name).await.map_err(target.error("read controller revision"))?;
                    // Our own revision the cache has not shown yet; anything else is a hash collision.
                    if existing.data == candidate.data && ownership::controller_of(&existing.metadata).is_some_and(|o| o.uid == target.uid) {
                        return Ok((name, hash, collision_count));
                    }
                    collision_count = collision_count.saturating_add(1);
                }
                // Nothing can be created in a terminating namespace, and nothing needs to be.
                Err(e) if api_errors::is_namespace_terminating(&e) => return Ok((name, hash, collision_count)),
                Err(source) => return Err(target.error("create controller revision")(source)),
            }
        },
    }
}

/// Creates one pod per node in slow-start batches (1, 2, 4, …), stopping at the first failure so
/// a broken template does not produce a storm of doomed requests.
async fn create_pods(target: &Target<'_>, ctx: &Context, template: &PodTemplateSpec, nodes: &[&str]) -> Result<(), Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), target.ns);
    let params = PostParams::default();
    let mut remaining = &nodes[..nodes.len().min(BURST_REPLICAS)];
    let mut batch = 1;
    while !remaining.is_empty() {
        let (now, rest) = remaining.split_at(batch.min(remaining.len()));
        let requests = now.iter().map(|node| {
            let pod = pods::new_pod(target.name, target.ns, template, node, target.owner.clone());
            let api = api.clone();
            let params = params.clone();
            async move { api.create(&params, &pod).await }
        });
        for result in futures::future::join_all(requests).await {
            match result {
                Ok(pod) => {
                    let pod_name = pod.name_any();
                    ctx.expectations.expect_create(&target.key, (target.ns.to_string(), pod_name.clone()), Instant::now());
                    ctx.events.normal(&target.regarding, Some(pod.object_ref(&())), "SuccessfulCreate", "Create", format!("Created pod: {pod_name}")).await;
                }
                Err(e) if api_errors::is_namespace_terminating(&e) => return Ok(()),
                Err(source) => {
                    ctx.events.warning(&target.regarding, None, "FailedCreate", "Create", format!("Error creating: {}", api_message(&source))).await;
                    return Err(target.error("create pod")(source));
                }
            }
        }
        remaining = rest;
        batch *= 2;
    }
    Ok(())
}

/// Deletes these pods (these incarnations only), all at once.
async fn delete_pods(target: &Target<'_>, ctx: &Context, doomed: &[Arc<Pod>]) -> Result<(), Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), target.ns);
    let requests = doomed.iter().map(|pod| {
        let pod_name = pod.name_any();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        ctx.expectations.expect_delete(&target.key, (target.ns.to_string(), pod_name.clone()), uid.clone(), Instant::now());
        let params = DeleteParams { preconditions: Some(Preconditions { uid: Some(uid), resource_version: None }), ..Default::default() };
        let api = api.clone();
        async move { (pod, api.delete(&pod_name, &params).await) }
    });
    let mut first_error = None;
    for (pod, result) in futures::future::join_all(requests).await {
        match result {
            Ok(_) => {
                let note = format!("Deleted pod: {}", pod.name_any());
                ctx.events.normal(&target.regarding, Some(pod.object_ref(&())), "SuccessfulDelete", "Delete", note).await;
            }
            Err(e) if api_errors::is_not_found(&e) || api_errors::is_conflict(&e) => {}
            Err(source) => {
                ctx.events.warning(&target.regarding, None, "FailedDelete", "Delete", format!("Error deleting: {}", api_message(&source))).await;
                first_error.get_or_insert(target.error(format!("delete pod {}", pod.name_any()))(source));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Deletes the oldest revisions no pod uses beyond `revisionHistoryLimit`.
async fn prune_history(target: &Target<'_>, ctx: &Context, daemon_pods: &[Arc<Pod>], current: &str, limit: Option<i32>) -> Result<(), Error> {
    let revisions = revisions_of(ctx, target.ns, target.uid);
    let pod_hashes: HashSet<&str> =
        daemon_pods.iter().filter_map(|p| p.metadata.labels.as_ref()?.get(pods::REVISION_HASH_LABEL).map(String::as_str)).collect();
    let by_hash: BTreeMap<String, String> =
        revisions.iter().filter_map(|r| Some((history::hash_of(target.name, r), r.metadata.name.clone()?))).collect();
    let mut live: HashSet<String> = by_hash.iter().filter(|(h, _)| pod_hashes.contains(h.as_str())).map(|(_, n)| n.clone()).collect();
    live.insert(current.to_string());
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), target.ns);
    for name in history::to_prune(&revisions, &live, limit.unwrap_or(history::DEFAULT_HISTORY_LIMIT)) {
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if api_errors::is_not_found(&e) => {}
            Err(source) => return Err(target.error(format!("delete controller revision {name}"))(source)),
        }
    }
    Ok(())
}
