//! May this user do this: upstream kubelet's Webhook authorization. A request maps to attributes on the
//! node object (`nodes/proxy`, `nodes/log`, ...); the apiserver answers a SubjectAccessReview for them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use crate::authn::UserInfo;
use crate::cache::TtlCache;

/// Upstream kubelet's default `--authorization-webhook-cache-authorized-ttl`.
const ALLOWED_TTL: Duration = Duration::from_secs(300);
/// Upstream kubelet's default `--authorization-webhook-cache-unauthorized-ttl`.
const DENIED_TTL: Duration = Duration::from_secs(30);

/// Why no decision could be made (answered with 500, unlike a denial).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SubjectAccessReview call to the apiserver failed.
    #[error("failed to create a SubjectAccessReview")]
    SubjectAccessReview(#[source] kube::Error),
}

/// What a request does, in the terms of the API: a verb on a subresource of this node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attributes {
    pub user: UserInfo,
    /// `get`, `create`, ... or empty for methods without an API verb (upstream leaves it empty too).
    pub verb: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
    /// The node's name.
    pub name: String,
}

impl Attributes {
    /// Upstream's mapping: the API verb of the HTTP method, and a subresource chosen by path prefix so that
    /// access can be granted piecemeal; everything without its own subresource is `nodes/proxy`.
    pub fn for_request(user: UserInfo, method: &http::Method, path: &str, node_name: &str) -> Self {
        let verb = match *method {
            http::Method::GET => "get",
            http::Method::POST => "create",
            http::Method::PUT => "update",
            http::Method::PATCH => "patch",
            http::Method::DELETE => "delete",
            _ => "",
        };
        let subresource = [
            ("/stats", "stats"),
            ("/metrics", "metrics"),
            ("/logs", "log"),
            ("/spec", "spec"),
            ("/checkpoint", "checkpoint"),
        ]
        .into_iter()
        .find(|(prefix, _)| is_subpath(path, prefix))
        .map_or("proxy", |(_, subresource)| subresource);
        Self {
            user,
            verb,
            resource: "nodes",
            subresource,
            name: node_name.to_owned(),
        }
    }

    /// The body of a 403, worded like upstream's.
    pub fn forbidden_message(&self) -> String {
        format!(
            "Forbidden (user={}, verb={}, resource={}, subresource={})",
            self.user.name, self.verb, self.resource, self.subresource
        )
    }
}

/// `path` is `prefix` itself or below it (`/logs` and `/logs/x`, not `/logsx`).
fn is_subpath(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The answer to "may they?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny { reason: String },
}

/// Decides on request attributes. Production uses [`SubjectAccessReviewAuthorizer`]; tests fake it.
pub trait Authorizer: Send + Sync + 'static {
    fn authorize<'a>(
        &'a self,
        attributes: &'a Attributes,
    ) -> BoxFuture<'a, Result<Decision, Error>>;
}

impl<A: Authorizer + ?Sized> Authorizer for Arc<A> {
    fn authorize<'a>(
        &'a self,
        attributes: &'a Attributes,
    ) -> BoxFuture<'a, Result<Decision, Error>> {
        (**self).authorize(attributes)
    }
}

/// Asks the apiserver with a SubjectAccessReview and caches the answer (allowed 5 min, denied 30 s).
pub struct SubjectAccessReviewAuthorizer {
    api: Api<SubjectAccessReview>,
    cache: TtlCache<Attributes, Decision>,
}

impl SubjectAccessReviewAuthorizer {
    pub fn new(client: kube::Client) -> Self {
        Self {
            api: Api::all(client),
            cache: TtlCache::default(),
        }
    }

    async fn review(&self, attributes: &Attributes) -> Result<Decision, Error> {
        let reviewed = self
            .api
            .create(&PostParams::default(), &review_for(attributes))
            .await
            .map_err(Error::SubjectAccessReview)?;
        let status = reviewed.status.unwrap_or_default();
        if status.allowed && status.denied != Some(true) {
            return Ok(Decision::Allow);
        }
        let reason = status
            .reason
            .or(status.evaluation_error)
            .unwrap_or_default();
        Ok(Decision::Deny { reason })
    }
}

/// The SubjectAccessReview asking about `attributes`.
pub fn review_for(attributes: &Attributes) -> SubjectAccessReview {
    let user = &attributes.user;
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.name.clone()),
            uid: (!user.uid.is_empty()).then(|| user.uid.clone()),
            groups: Some(user.groups.clone()),
            extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(attributes.verb.to_owned()),
                group: Some(String::new()),
                version: Some("v1".to_owned()),
                resource: Some(attributes.resource.to_owned()),
                subresource: Some(attributes.subresource.to_owned()),
                name: Some(attributes.name.clone()),
                namespace: Some(String::new()),
                ..ResourceAttributes::default()
            }),
            non_resource_attributes: None,
        },
        ..SubjectAccessReview::default()
    }
}

impl Authorizer for SubjectAccessReviewAuthorizer {
    fn authorize<'a>(
        &'a self,
        attributes: &'a Attributes,
    ) -> BoxFuture<'a, Result<Decision, Error>> {
        Box::pin(async move {
            if let Some(decision) = self.cache.get(attributes, Instant::now()) {
                return Ok(decision);
            }
            let decision = self.review(attributes).await?;
            let ttl = if decision == Decision::Allow {
                ALLOWED_TTL
            } else {
                DENIED_TTL
            };
            self.cache
                .insert(attributes.clone(), decision.clone(), ttl, Instant::now());
            Ok(decision)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserInfo {
        UserInfo {
            name: "kube-apiserver-kubelet-client".into(),
            groups: vec!["system:authenticated".into()],
            ..UserInfo::default()
        }
    }

    #[test]
    fn request_attributes() {
        let cases = [
            (
                "exec",
                http::Method::POST,
                "/exec/ns/p/c",
                "create",
                "proxy",
            ),
            (
                "exec via websocket GET",
                http::Method::GET,
                "/exec/ns/p/c",
                "get",
                "proxy",
            ),
            (
                "port forward",
                http::Method::POST,
                "/portForward/ns/p",
                "create",
                "proxy",
            ),
            (
                "container logs",
                http::Method::GET,
                "/containerLogs/ns/p/c",
                "get",
                "proxy",
            ),
            ("healthz", http::Method::GET, "/healthz", "get", "proxy"),
            ("stats", http::Method::GET, "/stats/summary", "get", "stats"),
            ("metrics", http::Method::GET, "/metrics", "get", "metrics"),
            (
                "metrics cadvisor",
                http::Method::GET,
                "/metrics/cadvisor",
                "get",
                "metrics",
            ),
            ("node logs", http::Method::GET, "/logs/syslog", "get", "log"),
            ("spec", http::Method::GET, "/spec/", "get", "spec"),
            (
                "checkpoint",
                http::Method::POST,
                "/checkpoint/ns/p/c",
                "create",
                "checkpoint",
            ),
            (
                "prefix is not a subpath",
                http::Method::GET,
                "/logsx",
                "get",
                "proxy",
            ),
            ("put", http::Method::PUT, "/x", "update", "proxy"),
            ("patch", http::Method::PATCH, "/x", "patch", "proxy"),
            ("delete", http::Method::DELETE, "/x", "delete", "proxy"),
            (
                "head has no verb",
                http::Method::HEAD,
                "/healthz",
                "",
                "proxy",
            ),
        ];
        for (name, method, path, verb, subresource) in cases {
            let attributes = Attributes::for_request(user(), &method, path, "rudder-node-1");
            assert_eq!(
                (attributes.verb, attributes.subresource),
                (verb, subresource),
                "case {name}"
            );
            assert_eq!(attributes.resource, "nodes", "case {name}");
            assert_eq!(attributes.name, "rudder-node-1", "case {name}");
        }
    }

    #[test]
    fn forbidden_message_is_upstream_shaped() {
        let attributes = Attributes::for_request(user(), &http::Method::POST, "/exec/ns/p/c", "n");
        assert_eq!(
            attributes.forbidden_message(),
            "Forbidden (user=kube-apiserver-kubelet-client, verb=create, resource=nodes, subresource=proxy)"
        );
    }

    #[test]
    fn review_names_the_node_subresource() {
        let attributes = Attributes::for_request(
            user(),
            &http::Method::GET,
            "/containerLogs/ns/p/c",
            "rudder-node-2",
        );
        let review = review_for(&attributes);
        assert_eq!(
            review.spec.user.as_deref(),
            Some("kube-apiserver-kubelet-client")
        );
        assert_eq!(
            review.spec.groups,
            Some(vec!["system:authenticated".to_owned()])
        );
        let resource = review
            .spec
            .resource_attributes
            .expect("resource attributes");
        assert_eq!(resource.verb.as_deref(), Some("get"));
        assert_eq!(resource.resource.as_deref(), Some("nodes"));
        assert_eq!(resource.subresource.as_deref(), Some("proxy"));
        assert_eq!(resource.name.as_deref(), Some("rudder-node-2"));
        assert_eq!(resource.version.as_deref(), Some("v1"));
    }
}
