//! The API objects a pod's volumes and environment draw from: ConfigMaps, Secrets, Services and
//! ServiceAccount tokens. The Node authorizer lets a node read exactly those of pods bound to it.

use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use kube::Api;
use kube::api::{ListParams, PostParams};

/// Failures reading API objects.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist (wording like upstream's: `configmap "x" not found`).
    #[error("{kind} \"{name}\" not found")]
    NotFound { kind: &'static str, name: String },
    /// The API call failed.
    #[error("failed to get {kind} {namespace}/{name}: {source}")]
    Api {
        kind: &'static str,
        namespace: String,
        name: String,
        // Boxed: kube's error is large and this one travels inside every volume error.
        #[source]
        source: Box<kube::Error>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A service-account token and when it expires.
#[derive(Debug, Clone)]
pub struct Token {
    pub token: String,
    pub expires: Timestamp,
}

/// Reads the objects a pod refers to.
#[derive(Clone)]
pub struct Objects {
    client: kube::Client,
}

fn get_error(kind: &'static str, namespace: &str, name: &str) -> impl FnOnce(kube::Error) -> Error {
    let (namespace, name) = (namespace.to_string(), name.to_string());
    move |source| match &source {
        kube::Error::Api(s) if s.code == 404 => Error::NotFound { kind, name },
        _ => Error::Api { kind, namespace, name, source: Box::new(source) },
    }
}

impl Objects {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    pub async fn config_map(&self, namespace: &str, name: &str) -> Result<ConfigMap> {
        Api::<ConfigMap>::namespaced(self.client.clone(), namespace).get(name).await.map_err(get_error("configmap", namespace, name))
    }

    pub async fn secret(&self, namespace: &str, name: &str) -> Result<Secret> {
        Api::<Secret>::namespaced(self.client.clone(), namespace).get(name).await.map_err(get_error("secret", namespace, name))
    }

    /// The Services of a namespace (for the `<NAME>_SERVICE_HOST` variables).
    pub async fn services(&self, namespace: &str) -> Result<Vec<Service>> {
        let list = Api::<Service>::namespaced(self.client.clone(), namespace)
            .list(&ListParams::default())
            .await
            .map_err(get_error("services", namespace, ""))?;
        Ok(list.items)
    }

    /// A token of `service_account` bound to the pod, so it dies with the pod.
    pub async fn token(
        &self,
        namespace: &str,
        service_account: &str,
        audiences: Vec<String>,
        expiration_seconds: Option<i64>,
        pod_name: &str,
        pod_uid: &str,
    ) -> Result<Token> {
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences,
                expiration_seconds,
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(pod_name.to_string()),
                    uid: Some(pod_uid.to_string()),
                }),
            },
            ..Default::default()
        };
        let response = Api::<ServiceAccount>::namespaced(self.client.clone(), namespace)
            .create_token_request(service_account, &PostParams::default(), &request)
            .await
            .map_err(get_error("serviceaccount token", namespace, service_account))?;
        let status = response.status.ok_or_else(|| Error::NotFound { kind: "token for serviceaccount", name: service_account.to_string() })?;
        Ok(Token { token: status.token, expires: status.expiration_timestamp.0 })
    }
}
