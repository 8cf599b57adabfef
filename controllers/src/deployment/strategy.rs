//! The rollout strategies (RollingUpdate, Recreate) and plain scaling, as sequences of steps that
//! each end the sync once they have changed something, so the next sync starts from fresh state.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::runtime::controller::Action;

use super::proportion::{self, Share};
use super::replicasets::{self, DESIRED_REPLICAS, MAX_REPLICAS};
use super::rollout::{self, Sizes};
use super::sync::Sync;
use super::{Error, conditions};

/// A replica set with pods asked for.
fn active(rs: &ReplicaSet) -> bool {
    replicasets::spec_replicas(rs) > 0
}

/// The deployment was resized: some active replica set was scaled for a different size.
pub fn is_scaling_event(d: &Deployment, all: &[ReplicaSet]) -> bool {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    all.iter().filter(|rs| active(rs)).any(|rs| replicasets::annotation_i32(rs, DESIRED_REPLICAS).is_some_and(|n| n != desired))
}

fn sizes(rs: &ReplicaSet) -> Sizes {
    Sizes { spec: replicasets::spec_replicas(rs), available: rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0) }
}

fn joined(old: &[ReplicaSet], new: Option<&ReplicaSet>) -> Vec<ReplicaSet> {
    old.iter().cloned().chain(new.cloned()).collect()
}

/// RollingUpdate: grow the new replica set within maxSurge, shrink old ones within maxUnavailable.
pub async fn rolling(sync: &mut Sync, all: Vec<ReplicaSet>) -> Result<Action, Error> {
    let (new, mut old) = replicasets::split_new_old(&sync.d, &all);
    let mut new = sync.new_replica_set(new, &old, true).await?;
    let all_now = joined(&old, new.as_ref());

    if let Some(rs) = new.as_mut() {
        let current = replicasets::spec_replicas(rs);
        let total: i32 = all_now.iter().map(replicasets::spec_replicas).sum();
        let target = if current >= sync.desired {
            sync.desired
        } else {
            rollout::new_rs_replicas(sync.desired, sync.fence.surge, total, current)
        };
        if sync.scale(rs, target).await? {
            return sync.finish(&joined(&old, new.as_ref()), new.as_ref(), true).await;
        }
    }

    let new_sizes = new.as_ref().map(sizes).unwrap_or(Sizes { spec: 0, available: 0 });
    let old_sizes: Vec<Sizes> = old.iter().map(sizes).collect();
    let targets = rollout::scale_down_old(sync.desired, sync.fence.unavailable, new_sizes, &old_sizes);
    let mut scaled = false;
    for (rs, target) in old.iter_mut().zip(targets) {
        if target != replicasets::spec_replicas(rs) {
            scaled |= sync.scale(rs, target).await?;
        }
    }
    if scaled {
        return sync.finish(&joined(&old, new.as_ref()), new.as_ref(), true).await;
    }

    if sync.d.status.as_ref().is_some_and(|s| conditions::complete(&sync.d, s)) {
        sync.clean_up(&old).await?;
    }
    sync.finish(&joined(&old, new.as_ref()), new.as_ref(), true).await
}

/// Recreate: scale every old replica set to zero, wait for their pods to go, then bring up the new one.
pub async fn recreate(sync: &mut Sync, all: Vec<ReplicaSet>) -> Result<Action, Error> {
    let (new, mut old) = replicasets::split_new_old(&sync.d, &all);
    let mut new = sync.new_replica_set(new, &old, false).await?;

    let mut scaled = false;
    for rs in old.iter_mut().filter(|rs| active(rs)) {
        scaled |= sync.scale(rs, 0).await?;
    }
    if scaled || sync.old_pods_running(&old) {
        return sync.finish(&joined(&old, new.as_ref()), new.as_ref(), true).await;
    }

    if new.is_none() {
        new = sync.new_replica_set(None, &old, true).await?;
    }
    if let Some(rs) = new.as_mut()
        && sync.scale(rs, sync.desired).await?
    {
        return sync.finish(&joined(&old, new.as_ref()), new.as_ref(), true).await;
    }

    if sync.d.status.as_ref().is_some_and(|s| conditions::complete(&sync.d, s)) {
        sync.clean_up(&old).await?;
    }
    sync.finish(&joined(&old, new.as_ref()), new.as_ref(), true).await
}

/// A resize (or a paused deployment): no rollout step, just bring replica set sizes in line.
pub async fn scale(sync: &mut Sync, all: Vec<ReplicaSet>) -> Result<Action, Error> {
    let (new, old) = replicasets::split_new_old(&sync.d, &all);
    let new = sync.new_replica_set(new, &old, false).await?;
    let mut all = joined(&old, new.as_ref());
    let new_name = new.as_ref().and_then(|rs| rs.metadata.name.clone());
    let is_new = |rs: &ReplicaSet| rs.metadata.name.is_some() && rs.metadata.name == new_name;

    let active_count = all.iter().filter(|rs| active(rs)).count();
    if active_count <= 1 {
        // One replica set carries the deployment (or none does): it takes the whole size — the
        // active one, else the new one, else the newest.
        let index = all.iter().position(active).or_else(|| all.iter().position(is_new)).or(all.len().checked_sub(1));
        if let Some(rs) = index.and_then(|i| all.get_mut(i)) {
            sync.scale(rs, sync.desired).await?;
        }
    } else if new.as_ref().is_some_and(|rs| saturated(sync.desired, rs)) {
        for rs in all.iter_mut().filter(|rs| !is_new(rs) && active(rs)) {
            sync.scale(rs, 0).await?;
        }
    } else if !sync.recreate {
        let fallback = sync.d.status.as_ref().and_then(|s| s.replicas).unwrap_or(sync.desired);
        let shares: Vec<Share> = all
            .iter()
            .map(|rs| Share {
                replicas: replicasets::spec_replicas(rs),
                max_replicas: replicasets::annotation_i32(rs, MAX_REPLICAS),
                created: rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
            })
            .collect();
        let targets = proportion::scale(&shares, sync.desired, sync.fence.surge, fallback);
        for (rs, target) in all.iter_mut().zip(targets) {
            sync.scale(rs, target).await?;
        }
    }
    let new = all.iter().find(|rs| is_new(rs)).cloned();
    if sync.d.spec.as_ref().and_then(|s| s.paused) == Some(true) {
        // A paused deployment still honours its revision history limit, as upstream.
        let old: Vec<ReplicaSet> = all.iter().filter(|rs| !is_new(rs)).cloned().collect();
        sync.clean_up(&old).await?;
    }
    sync.finish(&all, new.as_ref(), false).await
}

/// The new replica set alone runs the full, available deployment.
fn saturated(desired: i32, rs: &ReplicaSet) -> bool {
    replicasets::spec_replicas(rs) == desired
        && replicasets::annotation_i32(rs, DESIRED_REPLICAS) == Some(desired)
        && rs.status.as_ref().and_then(|s| s.available_replicas) == Some(desired)
}
