//! An in-memory backend pointing at the test streaming server, and an authorizer that denies one user.

use std::path::PathBuf;
use std::sync::Mutex;

use futures::future::BoxFuture;
use rudder_kubelet_api::authn::{self, TokenAuthenticator, UserInfo};
use rudder_kubelet_api::authz::{self, Attributes, Authorizer, Decision};
use rudder_kubelet_api::{Backend, BackendError, ContainerRef, StreamOptions};

/// The user the fake authorizer refuses.
pub const DENIED_USER: &str = "intruder";

pub struct FakeBackend {
    pub stream_base: url::Url,
    pub log_file: PathBuf,
    pub exec_requests: Mutex<Vec<(ContainerRef, StreamOptions)>>,
}

fn not_found(namespace: &str, pod: &str) -> BackendError {
    BackendError::NotFound(format!("pod \"{namespace}/{pod}\" not found"))
}

impl Backend for FakeBackend {
    async fn exec(
        &self,
        container: &ContainerRef,
        options: &StreamOptions,
    ) -> Result<url::Url, BackendError> {
        if container.pod == "missing" {
            return Err(not_found(&container.namespace, &container.pod));
        }
        self.exec_requests
            .lock()
            .unwrap()
            .push((container.clone(), options.clone()));
        self.stream_base
            .join("/exec/token-1")
            .map_err(|e| BackendError::Runtime(e.to_string()))
    }

    async fn attach(&self, _: &ContainerRef, _: &StreamOptions) -> Result<url::Url, BackendError> {
        // A token the streaming server does not know: its 404 must come back through the relay.
        self.stream_base
            .join("/attach/stale")
            .map_err(|e| BackendError::Runtime(e.to_string()))
    }

    async fn port_forward(
        &self,
        namespace: &str,
        pod: &str,
        _: Option<&str>,
    ) -> Result<url::Url, BackendError> {
        Err(not_found(namespace, pod))
    }

    async fn log_file(
        &self,
        container: &ContainerRef,
        _previous: bool,
    ) -> Result<PathBuf, BackendError> {
        if container.pod == "missing" {
            return Err(not_found(&container.namespace, &container.pod));
        }
        Ok(self.log_file.clone())
    }

    async fn is_running(&self, _: &ContainerRef) -> Result<bool, BackendError> {
        Ok(false)
    }
}

/// Allows everyone but [`DENIED_USER`]; remembers what it was asked.
#[derive(Default)]
pub struct FakeAuthorizer {
    pub asked: Mutex<Vec<Attributes>>,
}

impl Authorizer for FakeAuthorizer {
    fn authorize<'a>(
        &'a self,
        attributes: &'a Attributes,
    ) -> BoxFuture<'a, Result<Decision, authz::Error>> {
        self.asked.lock().unwrap().push(attributes.clone());
        let decision = if attributes.user.name == DENIED_USER {
            Decision::Deny {
                reason: "test".into(),
            }
        } else {
            Decision::Allow
        };
        Box::pin(std::future::ready(Ok(decision)))
    }
}

/// The one bearer token [`FakeTokens`] accepts, and whose it is.
pub const GOOD_TOKEN: &str = "good-token";
pub const TOKEN_USER: &str = "system:serviceaccount:default:prober";

pub struct FakeTokens;

impl TokenAuthenticator for FakeTokens {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserInfo>, authn::Error>> {
        let user = (token == GOOD_TOKEN).then(|| UserInfo {
            name: TOKEN_USER.into(),
            ..UserInfo::default()
        });
        Box::pin(std::future::ready(Ok(user)))
    }
}
