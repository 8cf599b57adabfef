//! One quota's sync: list what its hard resources count in its namespace, add it up, and write
//! `status.hard` and `status.used` when either changed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, ResourceQuota, ResourceQuotaStatus, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, PostParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use kube::runtime::controller::Action;

use super::amounts::Amounts;
use super::usage::{self, Observed, Source};
use super::{Context, Error, scopes, triggers};

/// How soon a quota counting kinds without a watch is recalculated.
const UNWATCHED_RESYNC: Duration = Duration::from_secs(10);

pub async fn reconcile(quota: Arc<ResourceQuota>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = quota.metadata.namespace.clone().ok_or(Error::MissingField("namespace"))?;
    let name = quota.metadata.name.clone().ok_or(Error::MissingField("name"))?;
    let key = format!("{ns}/{name}");
    let spec = quota.spec.clone().unwrap_or_default();
    let hard = Amounts::from_list(spec.hard.as_ref());
    let hard_names: BTreeSet<String> = hard.0.keys().cloned().collect();
    let sources = usage::sources(&hard_names);

    let observed = observe(&ctx, &ns, &key, &sources).await?;
    let used = usage::used(&hard_names, &scopes::of(&spec), &observed, Timestamp::now());
    let status = ResourceQuotaStatus { hard: spec.hard.clone(), used: Some(used.to_list()) };
    if differs(quota.status.as_ref(), &hard, &used) {
        let updated = ResourceQuota { status: Some(status), ..(*quota).clone() };
        let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &ns);
        match api.replace_status(&name, &PostParams::default(), &updated).await {
            Ok(_) => {}
            Err(e) if crate::api_errors::is_not_found(&e) => return Ok(Action::await_change()),
            Err(source) => return Err(Error::Api { quota: key, source }),
        }
    }
    let unwatched = sources.iter().any(|s| matches!(s, Source::Objects { resource, group } if !triggers::is_watched(resource, group)));
    Ok(Action::requeue(if unwatched { UNWATCHED_RESYNC.min(ctx.resync) } else { ctx.resync }))
}

/// True if the stored status differs in value (not just in notation) from `hard` and `used`.
fn differs(old: Option<&ResourceQuotaStatus>, hard: &Amounts, used: &Amounts) -> bool {
    let old_hard = Amounts::from_list(old.and_then(|s| s.hard.as_ref()));
    let old_used = Amounts::from_list(old.and_then(|s| s.used.as_ref()));
    &old_hard != hard || &old_used != used
}

/// Lists what the sources need from namespace `ns`. Pods come from the cache.
async fn observe(ctx: &Context, ns: &str, key: &str, sources: &BTreeSet<Source>) -> Result<Observed, Error> {
    let mut observed = Observed::default();
    let list_error = |what: &str| {
        let (what, quota) = (what.to_string(), key.to_string());
        move |source| Error::List { what, quota, source }
    };
    for source in sources {
        match source {
            Source::Pods => {
                observed.pods = ctx.pods.state().iter().filter(|p| p.metadata.namespace.as_deref() == Some(ns)).map(|p| (**p).clone()).collect();
            }
            Source::Services => {
                observed.services = Api::<Service>::namespaced(ctx.client.clone(), ns).list(&ListParams::default()).await.map_err(list_error("services"))?.items;
            }
            Source::Claims => {
                let api = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), ns);
                observed.claims = api.list(&ListParams::default()).await.map_err(list_error("persistentvolumeclaims"))?.items;
            }
            Source::Objects { resource, group } => {
                let what = if group.is_empty() { resource.clone() } else { format!("{resource}.{group}") };
                if resource == "pods" && group.is_empty() {
                    // count/pods is the pods source's; nothing to list.
                    continue;
                }
                let Some(api_resource) = resolve(ctx, resource, group).await.map_err(list_error(&what))? else {
                    // Not served (yet): no evaluator, no usage reported.
                    continue;
                };
                let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &api_resource);
                let count = api.list_metadata(&ListParams::default()).await.map_err(list_error(&what))?.items.len();
                observed.counts.insert((resource.clone(), group.clone()), i64::try_from(count).unwrap_or(i64::MAX));
            }
        }
    }
    Ok(observed)
}

/// The API resource named `resource` in `group` at the group's preferred version, if served.
async fn resolve(ctx: &Context, resource: &str, group: &str) -> Result<Option<ApiResource>, kube::Error> {
    let cache_key = (resource.to_string(), group.to_string());
    if let Some(found) = ctx.resources.lock().unwrap_or_else(|p| p.into_inner()).get(&cache_key) {
        return Ok(Some(found.clone()));
    }
    let found = if group.is_empty() {
        // Core resources are all served at v1; the kind is not needed to list.
        Some(ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", ""), resource))
    } else {
        match kube::discovery::group(&ctx.client, group).await {
            Ok(api_group) => api_group.recommended_resources().into_iter().map(|(r, _)| r).find(|r| r.plural == resource),
            Err(kube::Error::Discovery(_)) => None,
            Err(e) if crate::api_errors::is_not_found(&e) => None,
            Err(e) => return Err(e),
        }
    };
    if let Some(found) = &found {
        ctx.resources.lock().unwrap_or_else(|p| p.into_inner()).insert(cache_key, found.clone());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;

    fn list(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, Quantity>> {
        Some(pairs.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect())
    }

    #[test]
    fn differs_by_value_not_notation() {
        let old = ResourceQuotaStatus { hard: list(&[("requests.memory", "1Gi")]), used: list(&[("requests.memory", "512Mi")]) };
        let hard = Amounts::from_list(list(&[("requests.memory", "1024Mi")]).as_ref());
        let same = Amounts::from_list(list(&[("requests.memory", "536870912")]).as_ref());
        let more = Amounts::from_list(list(&[("requests.memory", "1Gi")]).as_ref());
        assert!(!differs(Some(&old), &hard, &same), "same values, other notation");
        assert!(differs(Some(&old), &hard, &more), "usage changed");
        assert!(differs(None, &hard, &same), "no status yet");
    }
}
