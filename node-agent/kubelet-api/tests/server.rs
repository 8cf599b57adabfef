//! The kubelet API server end to end over TLS, with test doubles for the runtime and the apiserver.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use rudder_kubelet_api::{Auth, Server, ServerConfig};
use support::client::{self, connect};
use support::fakes::{
    DENIED_USER, FakeAuthorizer, FakeBackend, FakeTokens, GOOD_TOKEN, TOKEN_USER,
};
use support::pki::{self, Authority, Identity};
use support::stream_server::{self, StreamServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

const LOG: &str = "\
2024-05-01T10:00:00.000000001Z stdout F starting
2024-05-01T10:00:01Z stderr P warn
2024-05-01T10:00:01.5Z stderr F ing: slow
2024-05-01T10:00:02Z stdout F ready
";

struct Harness {
    address: SocketAddr,
    ca: Authority,
    apiserver: Identity,
    backend: Arc<FakeBackend>,
    authorizer: Arc<FakeAuthorizer>,
    runtime: StreamServer,
    _stop: oneshot::Sender<()>,
}

async fn start(name: &str) -> Harness {
    let dir = pki::temp_dir(name);
    let ca = Authority::new("rudder-ca");
    let serving = ca.server("127.0.0.1");
    let config = ServerConfig {
        bind_address: "127.0.0.1:0".parse().unwrap(),
        tls_cert_file: pki::write(&dir, "serving.crt", &serving.cert_pem),
        tls_private_key_file: pki::write(&dir, "serving.key", &serving.key_pem),
        client_ca_file: pki::write(&dir, "ca.crt", &ca.cert_pem),
        node_name: "rudder-node-1".into(),
    };
    let runtime = stream_server::start().await;
    let backend = Arc::new(FakeBackend {
        stream_base: url::Url::parse(&format!("http://{}/", runtime.address)).unwrap(),
        log_file: pki::write(&dir, "0.log", LOG),
        exec_requests: Mutex::new(Vec::new()),
    });
    let authorizer = Arc::new(FakeAuthorizer::default());
    let auth = Auth {
        authorizer: authorizer.clone(),
        tokens: Some(Arc::new(FakeTokens)),
    };
    let server = Server::bind(config, backend.clone(), auth).await.unwrap();
    let address = server.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let apiserver = ca.client("kube-apiserver-kubelet-client", Some("kubelet-api-admins"));
    Harness {
        address,
        ca,
        apiserver,
        backend,
        authorizer,
        runtime,
        _stop: stop,
    }
}

#[tokio::test]
async fn without_a_client_certificate_requests_are_unauthorized() {
    let h = start("anonymous").await;
    let mut anonymous = connect(h.address, &h.ca.cert_pem, None).await.unwrap();
    let (status, body) = client::get(&mut anonymous, "/healthz").await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, "Unauthorized\n")
    );
    assert!(
        h.authorizer.asked.lock().unwrap().is_empty(),
        "nobody to authorize"
    );
}

#[tokio::test]
async fn a_valid_bearer_token_authenticates_without_a_certificate() {
    let h = start("token").await;
    let mut anonymous = connect(h.address, &h.ca.cert_pem, None).await.unwrap();
    for (name, token, want) in [
        ("good token", GOOD_TOKEN, StatusCode::OK),
        ("bad token", "forged", StatusCode::UNAUTHORIZED),
    ] {
        let request = client::request("GET", "/healthz")
            .header("Authorization", format!("Bearer {token}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = client::send(&mut anonymous, request).await.unwrap();
        assert_eq!(response.status(), want, "case {name}");
        let _ = http_body_util::BodyExt::collect(response.into_body()).await;
    }
    let asked = h.authorizer.asked.lock().unwrap().clone();
    assert_eq!(
        asked
            .iter()
            .map(|a| a.user.name.as_str())
            .collect::<Vec<_>>(),
        vec![TOKEN_USER]
    );
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let h = start("foreign-ca").await;
    let stranger = Authority::new("someone-elses-ca").client("kube-apiserver-kubelet-client", None);
    // With TLS 1.3 the client learns of the refusal on its first read, so either step may fail.
    let outcome = match connect(h.address, &h.ca.cert_pem, Some(&stranger)).await {
        Err(error) => Err(error),
        Ok(mut sender) => client::get(&mut sender, "/healthz").await,
    };
    let error = outcome.expect_err("the handshake should be refused");
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    assert!(
        chain.contains("alert") || chain.contains("certificate"),
        "refused for another reason: {chain}"
    );
}

#[tokio::test]
async fn the_certificate_names_the_user_and_groups() {
    let h = start("identity").await;
    let mut sender = connect(h.address, &h.ca.cert_pem, Some(&h.apiserver))
        .await
        .unwrap();
    let (status, body) = client::get(&mut sender, "/healthz").await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
    let asked = h.authorizer.asked.lock().unwrap().clone();
    let attributes = asked.first().expect("authorizer asked");
    assert_eq!(attributes.user.name, "kube-apiserver-kubelet-client");
    assert_eq!(
        attributes.user.groups,
        vec![
            "kubelet-api-admins".to_owned(),
            "system:authenticated".to_owned()
        ]
    );
    assert_eq!(
        (attributes.verb, attributes.resource, attributes.subresource),
        ("get", "nodes", "proxy")
    );
    assert_eq!(attributes.name, "rudder-node-1");
}

#[tokio::test]
async fn a_denied_user_gets_403() {
    let h = start("denied").await;
    let intruder = h.ca.client(DENIED_USER, None);
    let mut sender = connect(h.address, &h.ca.cert_pem, Some(&intruder))
        .await
        .unwrap();
    let (status, body) = client::get(&mut sender, "/containerLogs/default/web/nginx")
        .await
        .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        "Forbidden (user=intruder, verb=get, resource=nodes, subresource=proxy)\n"
    );
}

#[tokio::test]
async fn exec_is_relayed_to_the_runtime_and_bytes_flow_both_ways() {
    let h = start("exec").await;
    let mut sender = connect(h.address, &h.ca.cert_pem, Some(&h.apiserver))
        .await
        .unwrap();
    let request = client::request(
        "POST",
        "/exec/default/web/nginx?command=bash&command=-il&input=1&output=1&tty=1",
    )
    .header("Connection", "Upgrade")
    .header("Upgrade", "SPDY/3.1")
    .header("X-Stream-Protocol-Version", "v5.channel.k8s.io")
    .header("X-Stream-Protocol-Version", "v4.channel.k8s.io")
    .header("Authorization", "Bearer not-for-the-runtime")
    .body(Empty::<Bytes>::new())
    .unwrap();
    let response = client::send(&mut sender, request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        response.headers().get("x-stream-protocol-version").unwrap(),
        "v5.channel.k8s.io"
    );
    assert_eq!(response.headers().get("upgrade").unwrap(), "SPDY/3.1");

    let upgraded = tokio::time::timeout(Duration::from_secs(5), hyper::upgrade::on(response))
        .await
        .unwrap()
        .unwrap();
    let mut io = TokioIo::new(upgraded);
    for word in ["hello", "again"] {
        io.write_all(word.as_bytes()).await.unwrap();
        let mut echoed = [0u8; 5];
        tokio::time::timeout(Duration::from_secs(5), io.read_exact(&mut echoed))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&echoed, word.to_uppercase().as_bytes());
    }

    let seen = h.runtime.seen.lock().unwrap().clone();
    let seen = seen.first().expect("runtime asked");
    assert_eq!(
        (seen.method.as_str(), seen.path_and_query.as_str()),
        ("POST", "/exec/token-1")
    );
    assert_eq!(seen.upgrade.as_deref(), Some("SPDY/3.1"));
    assert_eq!(
        seen.protocols,
        vec![
            "v5.channel.k8s.io".to_owned(),
            "v4.channel.k8s.io".to_owned()
        ]
    );
    assert_eq!(
        seen.host.as_deref(),
        Some(h.runtime.address.to_string().as_str())
    );
    assert_eq!(
        seen.authorization, None,
        "credentials must not reach the runtime"
    );
    let (container, options) = h
        .backend
        .exec_requests
        .lock()
        .unwrap()
        .first()
        .cloned()
        .expect("backend asked");
    assert_eq!(
        (
            container.namespace.as_str(),
            container.pod.as_str(),
            container.container.as_str()
        ),
        ("default", "web", "nginx")
    );
    assert_eq!(options.command, vec!["bash".to_owned(), "-il".to_owned()]);
    assert!(options.stdin && options.stdout && options.tty && !options.stderr);
}

#[tokio::test]
async fn runtime_refusals_and_bad_requests_come_back_with_their_status() {
    let h = start("errors").await;
    let mut sender = connect(h.address, &h.ca.cert_pem, Some(&h.apiserver))
        .await
        .unwrap();
    let cases = [
        (
            "unknown pod",
            "/exec/default/missing/c?command=ls&output=1",
            StatusCode::NOT_FOUND,
            "pod \"default/missing\" not found\n",
        ),
        (
            "no streams",
            "/exec/default/web/c?command=ls",
            StatusCode::BAD_REQUEST,
            "you must specify at least 1 of stdin, stdout, stderr\n",
        ),
        (
            "not an upgrade",
            "/attach/default/web/c?output=1",
            StatusCode::BAD_REQUEST,
            "Upgrade request required\n",
        ),
        (
            "unknown path",
            "/exec/default",
            StatusCode::NOT_FOUND,
            "404 page not found\n",
        ),
        (
            "bad log option",
            "/containerLogs/default/web/c?tailLines=-3",
            StatusCode::BAD_REQUEST,
            "tailLines: Invalid value: -3: must be greater than or equal to 0\n",
        ),
        (
            "logs of an unknown pod",
            "/containerLogs/default/missing/c",
            StatusCode::NOT_FOUND,
            "pod \"default/missing\" not found\n",
        ),
    ];
    for (name, uri, status, body) in cases {
        let got = client::get(&mut sender, uri).await.unwrap();
        assert_eq!(got, (status, body.to_owned()), "case {name}");
    }
}

#[tokio::test]
async fn a_runtime_refusing_the_upgrade_is_answered_as_the_runtime_answered() {
    let h = start("runtime-refusal").await;
    let mut sender = connect(h.address, &h.ca.cert_pem, Some(&h.apiserver))
        .await
        .unwrap();
    let request = client::request("POST", "/attach/default/web/c?output=1")
        .header("Connection", "Upgrade")
        .header("Upgrade", "SPDY/3.1")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = client::send(&mut sender, request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"unknown stream token\n");
    assert_eq!(
        h.runtime
            .seen
            .lock()
            .unwrap()
            .first()
            .map(|s| s.path_and_query.clone())
            .as_deref(),
        Some("/attach/stale")
    );
}

#[tokio::test]
async fn container_logs_are_parsed_from_the_cri_format() {
    let h = start("logs").await;
    let mut sender = connect(h.address, &h.ca.cert_pem, Some(&h.apiserver))
        .await
        .unwrap();
    let cases = [
        (
            "all",
            "/containerLogs/default/web/nginx",
            "starting\nwarning: slow\nready\n",
        ),
        // tailLines counts the file's entries, as upstream: the last two are the end of a split line
        // (no timestamp of its own) and a whole one.
        (
            "tail with timestamps",
            "/containerLogs/default/web/nginx?tailLines=2&timestamps=true",
            "ing: slow\n2024-05-01T10:00:02Z ready\n",
        ),
        (
            "tail with timestamps of whole lines",
            "/containerLogs/default/web/nginx?tailLines=3&timestamps=true",
            "2024-05-01T10:00:01Z warning: slow\n2024-05-01T10:00:02Z ready\n",
        ),
        (
            "limit",
            "/containerLogs/default/web/nginx?limitBytes=12",
            "starting\nwar",
        ),
        // The container has stopped (per the backend), so a follow ends once the file is drained.
        (
            "follow of a stopped container",
            "/containerLogs/default/web/nginx?follow=true&sinceTime=2024-05-01T10:00:02Z",
            "ready\n",
        ),
    ];
    for (name, uri, want) in cases {
        let got = tokio::time::timeout(Duration::from_secs(10), client::get(&mut sender, uri))
            .await
            .expect(name)
            .unwrap();
        assert_eq!(got, (StatusCode::OK, want.to_owned()), "case {name}");
    }
}
