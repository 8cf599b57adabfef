//! One namespace per test, deleted when the test is done (also when it fails).

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::PostParams;
use rand::Rng;

use crate::Cluster;

/// A namespace owned by one test. Dropping it asks the apiserver to delete it (without waiting).
pub struct TestNamespace {
    pub name: String,
    cluster: Cluster,
}

impl TestNamespace {
    /// Creates `e2e-<prefix>-<random>`.
    pub async fn create(cluster: &Cluster, prefix: &str) -> anyhow::Result<Self> {
        let suffix: String = {
            let mut rng = rand::rng();
            (0..5).map(|_| rng.sample(rand::distr::Alphanumeric).to_ascii_lowercase() as char).collect()
        };
        let name = format!("e2e-{prefix}-{suffix}");
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name, "labels": { "rudder.dev/e2e": "true" } }
        }))?;
        Api::<Namespace>::all(cluster.client.clone()).create(&PostParams::default(), &ns).await?;
        Ok(Self { name, cluster: cluster.clone() })
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.cluster.client.clone(), &self.name)
    }

    /// kubectl in this namespace.
    pub async fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        self.cluster.kubectl(Some(&self.name), args).await
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::env::var_os("E2E_KEEP_NAMESPACES").is_some() {
            eprintln!("keeping namespace {}", self.name);
            return;
        }
        let _ = std::process::Command::new(&self.cluster.kubectl)
            .env("KUBECONFIG", &self.cluster.kubeconfig)
            .args(["delete", "namespace", &self.name, "--wait=false", "--ignore-not-found"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
