//! Emptying a terminating namespace: delete everything in it, then count what is left.

use std::collections::BTreeMap;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams};

use super::conditions::Leftover;
use crate::api_errors;
use crate::discovery::Resource;

/// `resource` or `resource.group`.
fn group_resource(r: &Resource) -> String {
    if r.api.group.is_empty() { r.api.plural.clone() } else { format!("{}.{}", r.api.plural, r.api.group) }
}

/// One deletion pass over every namespaced kind in `resources`. Pods go first and alone, as with
/// upstream's OrderedNamespaceDeletion (on by default since v1.33): while any pod remains, nothing else
/// is deleted, so a running pod never loses the ConfigMaps, Secrets or PVCs it uses before it stops.
pub async fn delete_all(client: &kube::Client, namespace: &str, resources: &[Resource]) -> Vec<Leftover> {
    let namespaced = resources.iter().filter(|r| r.namespaced);
    let (pods, others): (Vec<&Resource>, Vec<&Resource>) = namespaced.partition(|r| is_pods(r));
    let mut out = Vec::new();
    for resource in pods {
        out.push(delete_kind(client, namespace, resource).await);
    }
    if out.iter().any(|l| l.remaining > 0) {
        return out;
    }
    for resource in others {
        out.push(delete_kind(client, namespace, resource).await);
    }
    out
}

fn is_pods(r: &Resource) -> bool {
    r.api.group.is_empty() && r.api.plural == "pods"
}

async fn delete_kind(client: &kube::Client, namespace: &str, resource: &Resource) -> Leftover {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource.api);
    let mut leftover = Leftover { resource: group_resource(resource), ..Default::default() };
    let params = DeleteParams::background();
    let deleted = if resource.supports("deletecollection") {
        api.delete_collection(&params, &ListParams::default()).await.map(|_| ())
    } else {
        delete_one_by_one(&api, &params).await
    };
    if let Err(e) = deleted
        && !api_errors::is_not_found(&e)
    {
        leftover.error = Some(e.to_string());
    }
    match api.list_metadata(&ListParams::default()).await {
        Ok(list) => {
            leftover.remaining = list.items.len();
            let mut finalizers: BTreeMap<String, usize> = BTreeMap::new();
            for f in list.items.iter().flat_map(|o| o.metadata.finalizers.iter().flatten()) {
                *finalizers.entry(f.clone()).or_default() += 1;
            }
            leftover.finalizers = finalizers;
        }
        Err(e) if api_errors::is_not_found(&e) => {}
        Err(e) => leftover.error = Some(e.to_string()),
    }
    leftover
}

async fn delete_one_by_one(api: &Api<DynamicObject>, params: &DeleteParams) -> Result<(), kube::Error> {
    let list = api.list_metadata(&ListParams::default()).await?;
    for item in list.items.iter().filter(|o| o.metadata.deletion_timestamp.is_none()) {
        let Some(name) = item.metadata.name.as_deref() else { continue };
        match api.delete(name, params).await {
            Ok(_) => {}
            Err(e) if api_errors::is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
