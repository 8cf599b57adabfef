//! The service-account controller, root-CA publisher and namespace controller.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::Api;
use kube::api::DeleteParams;
use rudder_e2e::wait;

use crate::common::setup;

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
