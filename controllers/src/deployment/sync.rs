//! One sync of one deployment: the API side — claiming replica sets, creating and scaling them,
//! writing status. The decisions live in the sibling modules.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::replicasets::{self, DESIRED_REPLICAS, MAX_REPLICAS, REVISION};
use super::rollout::{self, Fenceposts};
use super::{Context, Error, conditions, revision, strategy};
use crate::api_errors;
use crate::ownership::{self, Claim};

pub async fn reconcile(d: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = d.metadata.namespace.clone().ok_or(Error::MissingField("namespace"))?;
    let name = d.metadata.name.clone().ok_or(Error::MissingField("name"))?;
    let spec = d.spec.clone().unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1);
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let rolling = spec.strategy.as_ref().and_then(|s| s.rolling_update.as_ref());
    let fence = if recreate {
        Some(Fenceposts { surge: 0, unavailable: 0 })
    } else {
        rollout::fenceposts(rolling.and_then(|r| r.max_surge.as_ref()), rolling.and_then(|r| r.max_unavailable.as_ref()), desired)
    };
    let key = format!("{ns}/{name}");
    let fence = fence.ok_or_else(|| Error::InvalidFenceposts(key.clone()))?;
    let mut sync = Sync {
        ctx: ctx.clone(),
        api: Api::namespaced(ctx.client.clone(), &ns),
        d: (*d).clone(),
        stored_status: d.status.clone(),
        key,
        desired,
        fence,
        recreate,
    };

    let all = sync.claim_replica_sets().await?;
    if d.metadata.deletion_timestamp.is_some() {
        let (new, _) = replicasets::split_new_old(&sync.d, &all);
        return sync.finish(&all, new.as_ref(), false).await;
    }
    if let Some(condition) = conditions::pause_transition(&sync.d, Timestamp::now()) {
        conditions::set(sync.d.status.get_or_insert_with(Default::default), condition);
        sync.write_status().await?;
    }
    if spec.paused == Some(true) || strategy::is_scaling_event(&sync.d, &all) {
        return strategy::scale(&mut sync, all).await;
    }
    if recreate { strategy::recreate(&mut sync, all).await } else { strategy::rolling(&mut sync, all).await }
}

/// The state of one sync.
pub struct Sync {
    ctx: Arc<Context>,
    api: Api<ReplicaSet>,
    /// The deployment, with the status and revision annotation as this sync has changed them.
    pub d: Deployment,
    /// The status as the apiserver has it, to skip writes that change nothing.
    stored_status: Option<DeploymentStatus>,
    pub key: String,
    pub desired: i32,
    pub fence: Fenceposts,
    pub recreate: bool,
}

impl Sync {
    fn api_error(&self, action: &'static str) -> impl FnOnce(kube::Error) -> Error + '_ {
        move |source| Error::Api { action, deployment: self.key.clone(), source }
    }

    fn uid(&self) -> &str {
        self.d.metadata.uid.as_deref().unwrap_or_default()
    }

    /// The replica sets this deployment controls after adopting orphans it selects and releasing
    /// those it no longer selects, oldest first.
    async fn claim_replica_sets(&self) -> Result<Vec<ReplicaSet>, Error> {
        let ns = self.d.metadata.namespace.as_deref();
        let selector = self.d.spec.as_ref().and_then(|s| ownership::selector(&s.selector));
        let deleting = self.d.metadata.deletion_timestamp.is_some();
        let owner = ownership::controller_reference("apps/v1", "Deployment", &self.d.metadata).ok_or(Error::MissingField("uid"))?;
        let mut owned = Vec::new();
        for rs in self.ctx.replica_sets.state().into_iter().filter(|rs| rs.metadata.namespace.as_deref() == ns) {
            match ownership::claim(self.uid(), deleting, selector.as_ref(), &rs.metadata) {
                Claim::Owned => owned.push((*rs).clone()),
                Claim::Adopt => {
                    let patch = ownership::adopt_patch(&rs.metadata, &owner);
                    let adopted = self.api.patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(self.api_error("adopt replica set"))?;
                    owned.push(adopted);
                }
                Claim::Release => {
                    let patch = ownership::release_patch(&rs.metadata, self.uid());
                    match self.api.patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
                        Ok(_) => {}
                        Err(e) if api_errors::is_not_found(&e) => {}
                        Err(e) => return Err(self.api_error("release replica set")(e)),
                    }
                }
                Claim::Ignore => {}
            }
        }
        owned.sort_by(|a, b| a.metadata.creation_timestamp.cmp(&b.metadata.creation_timestamp).then_with(|| a.metadata.name.cmp(&b.metadata.name)));
        Ok(owned)
    }

    /// Sets `rs` to `size` replicas and stamps the deployment size it was scaled for; records a
    /// ScalingReplicaSet event when the size changes. Returns whether the size changed.
    pub async fn scale(&self, rs: &mut ReplicaSet, size: i32) -> Result<bool, Error> {
        let current = replicasets::spec_replicas(rs);
        let max = self.desired + self.fence.surge;
        let annotations_current = replicasets::annotation_i32(rs, DESIRED_REPLICAS) == Some(self.desired)
            && replicasets::annotation_i32(rs, MAX_REPLICAS) == Some(max);
        if current == size && annotations_current {
            return Ok(false);
        }
        let patch = serde_json::json!({
            "metadata": {
                "resourceVersion": rs.metadata.resource_version,
                "annotations": { DESIRED_REPLICAS: self.desired.to_string(), MAX_REPLICAS: max.to_string() },
            },
            "spec": { "replicas": size },
        });
        *rs = self.api.patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(self.api_error("scale replica set"))?;
        if current != size {
            let direction = if size > current { "up" } else { "down" };
            let note = format!("Scaled {direction} replica set {} from {current} to {size}", rs.name_any());
            self.ctx.events.normal(&self.d.object_ref(&()), Some(rs.object_ref(&())), "ScalingReplicaSet", "Scale", note).await;
        }
        Ok(current != size)
    }

    /// The replica set for the current template: brings an existing one's annotations up to date,
    /// or creates it when `create` is set. Keeps the deployment's revision annotation in step.
    pub async fn new_replica_set(&mut self, existing: Option<ReplicaSet>, old: &[ReplicaSet], create: bool) -> Result<Option<ReplicaSet>, Error> {
        let next_revision = old.iter().map(replicasets::revision).max().unwrap_or(0) + 1;
        let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
        if let Some(mut rs) = existing {
            let mut wanted = rs.metadata.annotations.clone().unwrap_or_default();
            let copied = replicasets::copy_annotations(&self.d, &mut wanted);
            let bumped = revision::bump(&mut wanted, next_revision);
            let rs_min_ready = rs.spec.as_ref().and_then(|s| s.min_ready_seconds);
            if copied || bumped || rs_min_ready != min_ready {
                let patch = serde_json::json!({
                    "metadata": { "resourceVersion": rs.metadata.resource_version, "annotations": wanted },
                    "spec": { "minReadySeconds": min_ready },
                });
                rs = self.api.patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(self.api_error("update replica set"))?;
            }
            self.set_revision(replicasets::revision(&rs)).await?;
            let has_deadline = conditions::has_progress_deadline(&self.d);
            let status = self.d.status.get_or_insert_with(Default::default);
            if has_deadline && conditions::get(status, conditions::PROGRESSING).is_none() {
                let message = format!("Found new replica set {:?}", rs.name_any());
                conditions::set(status, conditions::condition("True", conditions::PROGRESSING, conditions::FOUND_NEW_RS, message, Timestamp::now()));
            }
            return Ok(Some(rs));
        }
        if !create {
            return Ok(None);
        }
        let all_replicas: i32 = old.iter().map(replicasets::spec_replicas).sum();
        let replicas = if self.recreate { self.desired } else { rollout::new_rs_replicas(self.desired, self.fence.surge, all_replicas, 0) };
        let max = self.desired + self.fence.surge;
        let rs = replicasets::new_replica_set(&self.d, replicas, next_revision, max).ok_or(Error::MissingField("name"))?;
        let rs_name = rs.name_any();
        let created = match self.api.create(&PostParams::default(), &rs).await {
            Ok(created) => created,
            Err(e) if api_errors::is_already_exists(&e) => return self.adopt_existing_or_collide(&rs_name).await.map(Some),
            Err(e) => return Err(self.api_error("create replica set")(e)),
        };
        if replicas > 0 {
            let note = format!("Scaled up replica set {rs_name} from 0 to {replicas}");
            self.ctx.events.normal(&self.d.object_ref(&()), Some(created.object_ref(&())), "ScalingReplicaSet", "Scale", note).await;
        }
        let status = self.d.status.get_or_insert_with(Default::default);
        let message = format!("Created new replica set {rs_name:?}");
        conditions::set(status, conditions::condition("True", conditions::PROGRESSING, conditions::NEW_RS_CREATED, message, Timestamp::now()));
        self.set_revision(next_revision).await?;
        Ok(Some(created))
    }

    /// The name of the new replica set is taken: if by our own replica set with the current template
    /// (the cache lagged), use it; otherwise raise the collision count so the next hash differs.
    async fn adopt_existing_or_collide(&mut self, name: &str) -> Result<ReplicaSet, Error> {
        let existing = self.api.get(name).await.map_err(self.api_error("get replica set"))?;
        if replicasets::runs_current_template(&self.d, &existing) {
            return Ok(existing);
        }
        let status = self.d.status.get_or_insert_with(Default::default);
        let count = status.collision_count.unwrap_or(0);
        let bumped = count.saturating_add(1);
        tracing::info!(deployment = %self.key, replicaset = name, from = count, to = bumped, "found a hash collision; bumping collisionCount to resolve it");
        status.collision_count = Some(bumped);
        self.write_status().await?;
        Err(Error::HashCollision(name.to_string()))
    }

    /// Records the new replica set's revision on the deployment, like upstream.
    async fn set_revision(&mut self, revision: i64) -> Result<(), Error> {
        let current = self.d.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)).and_then(|r| r.parse::<i64>().ok());
        if current == Some(revision) {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(self.ctx.client.clone(), self.d.metadata.namespace.as_deref().unwrap_or_default());
        let patch = serde_json::json!({ "metadata": { "annotations": { REVISION: revision.to_string() } } });
        let patched = api.patch(&self.d.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(self.api_error("update revision"))?;
        let status = self.d.status.take();
        self.d = patched;
        self.d.status = status;
        Ok(())
    }

    /// Deletes old replica sets beyond `revisionHistoryLimit`.
    pub async fn clean_up(&self, old: &[ReplicaSet]) -> Result<(), Error> {
        let limit = self.d.spec.as_ref().and_then(|s| s.revision_history_limit).unwrap_or(10);
        for rs in replicasets::history_to_delete(old, limit) {
            let params = DeleteParams { preconditions: Some(Preconditions { uid: rs.metadata.uid.clone(), resource_version: None }), ..Default::default() };
            match self.api.delete(&rs.name_any(), &params).await {
                Ok(_) => tracing::info!(deployment = %self.key, replicaset = %rs.name_any(), "deleted old replica set beyond revision history limit"),
                Err(e) if api_errors::is_not_found(&e) => {}
                Err(e) => return Err(self.api_error("delete old replica set")(e)),
            }
        }
        Ok(())
    }

    /// Computes and writes the status; with `progress`, also the Progressing condition, and wakes
    /// the deployment again when its progress deadline would pass.
    pub async fn finish(&mut self, all: &[ReplicaSet], new: Option<&ReplicaSet>, progress: bool) -> Result<Action, Error> {
        let now = Timestamp::now();
        let unavailable = if self.recreate || self.desired == 0 { 0 } else { self.fence.unavailable };
        let mut status = conditions::calculate(&self.d, all, new, unavailable, now);
        let mut requeue = None;
        if progress {
            let new_name = new.map(|rs| rs.name_any());
            requeue = conditions::update_progress(&self.d, &mut status, new_name.as_deref(), now);
            conditions::apply_replica_failure(&mut status, all, new);
        }
        if self.stored_status.as_ref() != Some(&status) {
            self.d.status = Some(status);
            self.write_status().await?;
        }
        Ok(match requeue.and_then(|left| std::time::Duration::try_from(left).ok()) {
            Some(left) => Action::requeue(left + std::time::Duration::from_secs(1)),
            None => Action::await_change(),
        })
    }

    async fn write_status(&mut self) -> Result<(), Error> {
        let api: Api<Deployment> = Api::namespaced(self.ctx.client.clone(), self.d.metadata.namespace.as_deref().unwrap_or_default());
        let written = api.replace_status(&self.d.name_any(), &PostParams::default(), &self.d).await.map_err(self.api_error("update status"))?;
        self.stored_status = written.status.clone();
        self.d.metadata.resource_version = written.metadata.resource_version;
        Ok(())
    }

    /// Pods still alive in the old replica sets (a Recreate rollout waits for them to go).
    pub fn old_pods_running(&self, old: &[ReplicaSet]) -> bool {
        let uids: Vec<&str> = old.iter().filter_map(|rs| rs.metadata.uid.as_deref()).collect();
        old.iter().any(|rs| rs.status.as_ref().is_some_and(|s| s.replicas > 0))
            || self.ctx.pods.state().iter().any(|p| {
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                !matches!(phase, Some("Succeeded" | "Failed"))
                    && ownership::controller_of(&p.metadata).is_some_and(|o| uids.contains(&o.uid.as_str()))
            })
    }
}
