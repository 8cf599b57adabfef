//! The production authenticator and authorizer against a live apiserver (the local cluster's):
//! `KUBECONFIG=/var/lib/rudder/admin.kubeconfig cargo test -p rudder-kubelet-api --test apiserver -- --ignored`.
//! Set `RUDDER_TEST_TOKEN` to a service-account token (`kubectl create token default`) to check tokens too.

#![allow(clippy::unwrap_used)]

use rudder_kubelet_api::authn::{TokenAuthenticator, TokenReviewAuthenticator, UserInfo};
use rudder_kubelet_api::authz::{Attributes, Authorizer, Decision, SubjectAccessReviewAuthorizer};

fn user(name: &str, groups: &[&str]) -> UserInfo {
    let groups = groups
        .iter()
        .map(|g| (*g).to_owned())
        .chain(["system:authenticated".to_owned()])
        .collect();
    UserInfo {
        name: name.into(),
        groups,
        ..UserInfo::default()
    }
}

#[tokio::test]
#[ignore = "needs a live apiserver (KUBECONFIG)"]
async fn subject_access_reviews_decide_like_the_apiserver() {
    let client = kube::Client::try_default().await.unwrap();
    let authorizer = SubjectAccessReviewAuthorizer::new(client);
    let cases = [
        (
            "the apiserver's kubelet client",
            user("kube-apiserver-kubelet-client", &[]),
            http::Method::POST,
            "/exec/ns/p/c",
            true,
        ),
        (
            "cluster admin",
            user("admin", &["system:masters"]),
            http::Method::GET,
            "/containerLogs/ns/p/c",
            true,
        ),
        (
            "a stranger",
            user("nobody", &[]),
            http::Method::POST,
            "/exec/ns/p/c",
            false,
        ),
        (
            "a stranger again (cached)",
            user("nobody", &[]),
            http::Method::POST,
            "/exec/ns/p/c",
            false,
        ),
    ];
    for (name, user, method, path, allowed) in cases {
        let attributes = Attributes::for_request(user, &method, path, "rudder-node-1");
        let decision = authorizer.authorize(&attributes).await.unwrap();
        assert_eq!(
            decision == Decision::Allow,
            allowed,
            "case {name}: {decision:?}"
        );
    }
}

#[tokio::test]
#[ignore = "needs a live apiserver (KUBECONFIG)"]
async fn token_reviews_name_the_token_owner() {
    let client = kube::Client::try_default().await.unwrap();
    let authenticator = TokenReviewAuthenticator::new(client);
    assert_eq!(
        authenticator.authenticate("not-a-token").await.unwrap(),
        None
    );
    if let Ok(token) = std::env::var("RUDDER_TEST_TOKEN") {
        let user = authenticator
            .authenticate(token.trim())
            .await
            .unwrap()
            .expect("a valid token");
        assert!(user.name.starts_with("system:serviceaccount:"), "{user:?}");
        assert!(
            user.groups.iter().any(|g| g == "system:serviceaccounts"),
            "{user:?}"
        );
    }
}
