//! The service-account controller, root-CA publisher and namespace controller.

use std::cell::Cell;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use kube::Api;
use kube::api::DeleteParams;
use rudder_e2e::wait;

use crate::common::{setup, wait_running_pods};

#[tokio::test]
async fn new_namespace_gets_default_service_account_and_root_ca_then_deletes_cleanly() -> anyhow::Result<()> {
    let (cluster, ns) = setup("nslife").await?;
    let sa = ns.api::<ServiceAccount>();
    wait::until("the default ServiceAccount", Duration::from_secs(30), || async {
        Ok(sa.get_opt("default").await?.map(|_| ()).ok_or_else(|| "absent".to_owned()))
    })
    .await?;
    let cms = ns.api::<ConfigMap>();
    let ca = wait::until("the kube-root-ca.crt ConfigMap", Duration::from_secs(30), || async {
        Ok(cms.get_opt("kube-root-ca.crt").await?.ok_or_else(|| "absent".to_owned()))
    })
    .await?;
    let pem = ca.data.unwrap_or_default().remove("ca.crt").unwrap_or_default();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "ca.crt is a PEM certificate: {pem:.40}");

    // Deleting the default ServiceAccount gets it recreated.
    sa.delete("default", &DeleteParams::default()).await?;
    wait::until("the default ServiceAccount to come back", Duration::from_secs(30), || async {
        Ok(sa.get_opt("default").await?.map(|_| ()).ok_or_else(|| "absent".to_owned()))
    })
    .await?;

    // A namespace with content is emptied and removed.
    ns.kubectl(&["create", "configmap", "stuff", "--from-literal=a=b"]).await?;
    ns.kubectl(&["create", "deployment", "web", "--image=nginx"]).await?;
    let namespaces = Api::<Namespace>::all(cluster.client.clone());
    namespaces.delete(&ns.name, &DeleteParams::default()).await?;
    wait::until("the namespace to be gone", Duration::from_secs(120), || async {
        Ok(match namespaces.get_opt(&ns.name).await? {
            None => Ok(()),
            Some(n) => Err(format!("phase {:?}", n.status.and_then(|s| s.phase))),
        })
    })
    .await
}

#[tokio::test]
async fn namespace_deletion_removes_pods_before_the_objects_they_use() -> anyhow::Result<()> {
    let (cluster, ns) = setup("nsorder").await?;
    ns.kubectl(&["create", "configmap", "settings", "--from-literal=a=b"]).await?;
    // `sleep` as PID 1 ignores SIGTERM, so the pod takes its whole grace period to go.
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "slow-to-stop" },
        "spec": { "terminationGracePeriodSeconds": 8, "containers": [{
            "name": "sleeper", "image": "busybox", "command": ["sleep", "3600"],
            "env": [{ "name": "A", "valueFrom": { "configMapKeyRef": { "name": "settings", "key": "a" } } }]
        }]}
    }))?;
    ns.api::<Pod>().create(&Default::default(), &pod).await?;
    wait_running_pods(&ns, "", 1).await?;

    let namespaces = Api::<Namespace>::all(cluster.client.clone());
    namespaces.delete(&ns.name, &DeleteParams::default()).await?;
    let (pods, cms) = (ns.api::<Pod>(), ns.api::<ConfigMap>());
    let (saw_terminating_pod, config_went_first) = (Cell::new(false), Cell::new(false));
    wait::until("the namespace to be gone", Duration::from_secs(120), || async {
        let pod_left = pods.get_opt("slow-to-stop").await?.is_some();
        let config_left = cms.get_opt("settings").await?.is_some();
        saw_terminating_pod.set(saw_terminating_pod.get() || pod_left);
        config_went_first.set(config_went_first.get() || (pod_left && !config_left));
        Ok(match namespaces.get_opt(&ns.name).await? {
            None => Ok(()),
            Some(n) => Err(format!("phase {:?}", n.status.and_then(|s| s.phase))),
        })
    })
    .await?;
    assert!(saw_terminating_pod.get(), "the pod outlived the deletion call (its grace period is 8 s)");
    assert!(!config_went_first.get(), "the ConfigMap was deleted while its pod was still terminating");
    Ok(())
}
