use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, ExecAction, GRPCAction, HTTPGetAction, HTTPHeader, Probe, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;
use crate::runtime::simulated::SimulatedRuntime;
use crate::runtime::{ExecOutput, Runtime};

const SECOND: Duration = Duration::from_secs(1);

fn container() -> Container {
    Container {
        name: "app".into(),
        ports: Some(vec![ContainerPort { name: Some("http".into()), container_port: 8080, ..Default::default() }]),
        ..Default::default()
    }
}

#[test]
fn actions_resolve_ports_and_hosts() {
    struct Case {
        name: &'static str,
        probe: Probe,
        want: Result<Action, Error>,
    }
    let http = |port: IntOrString| HTTPGetAction { port, ..Default::default() };
    for case in [
        Case {
            name: "exec",
            probe: Probe { exec: Some(ExecAction { command: Some(vec!["cat".into(), "/ok".into()]) }), ..Default::default() },
            want: Ok(Action::Exec(vec!["cat".into(), "/ok".into()])),
        },
        Case {
            name: "http on a named port at the pod IP, default path",
            probe: Probe { http_get: Some(http(IntOrString::String("http".into()))), ..Default::default() },
            want: Ok(Action::Http(http::Request {
                https: false,
                host: "10.0.0.9".into(),
                port: 8080,
                path: "/".into(),
                headers: vec![],
            })),
        },
        Case {
            name: "https with host, path without slash and headers",
            probe: Probe {
                http_get: Some(HTTPGetAction {
                    scheme: Some("HTTPS".into()),
                    host: Some("example.test".into()),
                    path: Some("healthz?full=1".into()),
                    http_headers: Some(vec![HTTPHeader { name: "X-A".into(), value: "b".into() }]),
                    ..http(IntOrString::Int(443))
                }),
                ..Default::default()
            },
            want: Ok(Action::Http(http::Request {
                https: true,
                host: "example.test".into(),
                port: 443,
                path: "/healthz?full=1".into(),
                headers: vec![("X-A".into(), "b".into())],
            })),
        },
        Case {
            name: "tcp on a number written as a string",
            probe: Probe { tcp_socket: Some(TCPSocketAction { port: IntOrString::String("53".into()), host: None }), ..Default::default() },
            want: Ok(Action::Tcp { host: "10.0.0.9".into(), port: 53 }),
        },
        Case {
            name: "unknown port name",
            probe: Probe { tcp_socket: Some(TCPSocketAction { port: IntOrString::String("nope".into()), host: None }), ..Default::default() },
            want: Err(Error::UnknownPort("nope".into())),
        },
        Case {
            name: "port out of range",
            probe: Probe { http_get: Some(http(IntOrString::Int(70000))), ..Default::default() },
            want: Err(Error::InvalidPort(70000)),
        },
        Case {
            name: "grpc",
            probe: Probe { grpc: Some(GRPCAction { port: 9000, service: None }), ..Default::default() },
            want: Ok(Action::Grpc(grpc::Request { host: "10.0.0.9".into(), port: 9000, service: String::new() })),
        },
        Case {
            name: "grpc with a service",
            probe: Probe { grpc: Some(GRPCAction { port: 9000, service: Some("db".into()) }), ..Default::default() },
            want: Ok(Action::Grpc(grpc::Request { host: "10.0.0.9".into(), port: 9000, service: "db".into() })),
        },
        Case {
            name: "grpc port out of range",
            probe: Probe { grpc: Some(GRPCAction { port: 0, service: None }), ..Default::default() },
            want: Err(Error::InvalidPort(0)),
        },
        Case { name: "no handler", probe: Probe::default(), want: Err(Error::NoHandler) },
    ] {
        assert_eq!(action(&case.probe, &container(), "10.0.0.9"), case.want, "{}", case.name);
    }
}

/// Serves one canned HTTP status per connection and sends each request's head to the test.
async fn http_server(status: u16, delay: Duration) -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
                tokio::time::sleep(delay).await;
                let response = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    (port, rx)
}

fn request(port: u16, path: &str, headers: Vec<(String, String)>) -> http::Request {
    http::Request { https: false, host: "127.0.0.1".into(), port, path: path.into(), headers }
}

#[tokio::test]
async fn http_probe_status_codes() {
    struct Case {
        name: &'static str,
        status: u16,
        success: bool,
    }
    for case in [
        Case { name: "200 is success", status: 200, success: true },
        Case { name: "302 is success (not followed)", status: 302, success: true },
        Case { name: "399 is success", status: 399, success: true },
        Case { name: "404 is failure", status: 404, success: false },
        Case { name: "500 is failure", status: 500, success: false },
    ] {
        let (port, _rx) = http_server(case.status, Duration::ZERO).await;
        let got = run(&SimulatedRuntime::new(), "c1", &Action::Http(request(port, "/healthz", vec![])), SECOND).await;
        match got {
            Outcome::Success(_) => assert!(case.success, "{}: unexpected success", case.name),
            Outcome::Failure(text) => {
                assert!(!case.success, "{}: unexpected failure {text}", case.name);
                assert_eq!(text, format!("HTTP probe failed with statuscode: {}", case.status), "{}", case.name);
            }
            Outcome::Error(e) => panic!("{}: error {e}", case.name),
        }
    }
}

#[tokio::test]
async fn http_probe_sends_path_and_headers() {
    let (port, mut rx) = http_server(200, Duration::ZERO).await;
    let headers = vec![("Host".to_string(), "svc.example".to_string()), ("X-Probe".to_string(), "yes".to_string())];
    let got = http::get(&request(port, "/ready?x=1", headers), SECOND).await;
    assert_eq!(got, Outcome::Success(String::new()));
    let head = rx.recv().await.unwrap_or_default().to_ascii_lowercase();
    assert!(head.starts_with("get /ready?x=1 http/1.1\r\n"), "request line in {head:?}");
    assert!(head.contains("host: svc.example\r\n"), "custom Host replaces the default: {head:?}");
    assert_eq!(head.matches("host:").count(), 1, "one Host header: {head:?}");
    assert!(head.contains("x-probe: yes\r\n"), "custom header: {head:?}");
    assert!(head.contains("user-agent: kube-probe/1.35\r\n"), "user agent: {head:?}");
}

#[tokio::test]
async fn http_probe_times_out_and_fails_on_refused() {
    let (port, _rx) = http_server(200, Duration::from_secs(5)).await;
    match http::get(&request(port, "/", vec![]), Duration::from_millis(200)).await {
        Outcome::Failure(text) => assert!(text.contains("deadline exceeded"), "timeout message: {text}"),
        other => panic!("slow server must fail the probe, got {other:?}"),
    }
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("address").port();
    match http::get(&request(closed, "/", vec![]), SECOND).await {
        Outcome::Failure(text) => assert!(text.starts_with(&format!("Get \"http://127.0.0.1:{closed}/\": dial tcp")), "refused message: {text}"),
        other => panic!("refused connection must fail the probe, got {other:?}"),
    }
}

#[tokio::test]
async fn tcp_probe_connects_or_fails() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let open = listener.local_addr().expect("address").port();
    assert_eq!(tcp("127.0.0.1", open, SECOND).await, Outcome::Success(String::new()), "listening port");
    drop(listener);
    match tcp("127.0.0.1", open, SECOND).await {
        Outcome::Failure(text) => assert!(text.starts_with(&format!("dial tcp 127.0.0.1:{open}: ")), "message: {text}"),
        other => panic!("closed port must fail, got {other:?}"),
    }
}

#[tokio::test]
async fn exec_probe_through_the_simulated_runtime() {
    let rt = SimulatedRuntime::new();
    let sandbox = rt.run_sandbox(&Default::default()).await.expect("sandbox");
    let config = crate::runtime::ContainerConfig {
        metadata: Some(k8s_cri::v1::ContainerMetadata { name: "app".into(), attempt: 0 }),
        ..Default::default()
    };
    let id = rt.create_container(&sandbox, &config, &Default::default()).await.expect("create");
    rt.start_container(&id).await.expect("start");
    let cmd = vec!["check".to_string()];

    assert_eq!(exec(&rt, &id, &cmd, SECOND).await, Outcome::Success(String::new()), "exit 0");
    rt.exec_returns("app", ExecOutput { exit_code: 1, stdout: b"not yet\n".to_vec(), stderr: b"".to_vec() });
    assert_eq!(exec(&rt, &id, &cmd, SECOND).await, Outcome::Failure("not yet".into()), "exit 1 with output");
    rt.exec_returns("app", ExecOutput { exit_code: 2, stdout: vec![], stderr: vec![] });
    assert_eq!(exec(&rt, &id, &cmd, SECOND).await, Outcome::Failure("command [\"check\"] exited with 2".into()), "exit 2, silent");
    assert!(matches!(exec(&rt, "missing", &cmd, SECOND).await, Outcome::Error(_)), "runtime errors count neither way");
}
