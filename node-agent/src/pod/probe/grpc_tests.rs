use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus as Status;
use tonic_health::server::health_reporter;

use super::*;

const SHORT: Duration = Duration::from_millis(300);

/// A real tonic-health server on 127.0.0.1 with `services` registered at the given statuses ("" is the
/// whole server); stops when the returned token is cancelled.
async fn health_server(services: &[(&str, Status)]) -> (u16, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local address").port();
    let (reporter, service) = health_reporter();
    for (name, status) in services {
        reporter.set_service_status(*name, *status).await;
    }
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move {
        let _reporter = reporter;
        let serve = Server::builder().add_service(service).serve_with_incoming_shutdown(TcpIncoming::from(listener), stopped.cancelled());
        let _ = serve.await;
    });
    (port, stop)
}

fn request(port: u16, service: &str) -> Request {
    Request { host: "127.0.0.1".into(), port, service: service.into() }
}

#[tokio::test]
async fn health_checks_against_a_real_server() {
    struct Case {
        name: &'static str,
        service: &'static str,
        want_success: bool,
        want_text: &'static str,
    }
    let (port, stop) = health_server(&[("", Status::Serving), ("up", Status::Serving), ("down", Status::NotServing)]).await;
    for case in [
        Case { name: "whole server serving", service: "", want_success: true, want_text: "service healthy" },
        Case { name: "named service serving", service: "up", want_success: true, want_text: "service healthy" },
        Case {
            name: "not serving",
            service: "down",
            want_success: false,
            want_text: "service unhealthy (responded with \"NOT_SERVING\")",
        },
        Case {
            name: "unknown service",
            service: "nope",
            want_success: false,
            want_text: "error: health rpc probe failed: rpc error: code = NotFound desc = service not registered",
        },
    ] {
        match check(&request(port, case.service), Duration::from_secs(2)).await {
            Outcome::Success(text) if case.want_success => assert_eq!(text, case.want_text, "{}", case.name),
            Outcome::Failure(text) if !case.want_success => assert_eq!(text, case.want_text, "{}", case.name),
            other => panic!("{}: unexpected outcome {other:?}", case.name),
        }
    }
    stop.cancel();
}

#[tokio::test]
async fn nothing_listening_fails_after_the_timeout() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("local address").port()
    };
    let started = Instant::now();
    match check(&request(port, ""), SHORT).await {
        Outcome::Failure(text) => assert_eq!(
            text,
            format!("timeout: failed to connect service \"127.0.0.1:{port}\" within 300ms: context deadline exceeded")
        ),
        other => panic!("want failure, got {other:?}"),
    }
    assert!(started.elapsed() < SHORT + Duration::from_secs(1), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_server_that_comes_up_within_the_timeout_passes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    let probe = tokio::spawn(async move { check(&request(port, ""), Duration::from_secs(3)).await });
    tokio::time::sleep(SHORT).await;
    // Bind the same port now; another process could take it first, which would only fail the probe.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("rebind");
    let (reporter, service) = health_reporter();
    reporter.set_service_status("", Status::Serving).await;
    let server = tokio::spawn(Server::builder().add_service(service).serve_with_incoming(TcpIncoming::from(listener)));
    assert_eq!(probe.await.expect("probe task"), Outcome::Success("service healthy".into()));
    server.abort();
}

#[tokio::test]
async fn a_silent_server_times_out() {
    // Accepts connections but never speaks HTTP/2.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local address").port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    match check(&request(port, ""), SHORT).await {
        Outcome::Failure(text) => assert!(text.starts_with("timeout: "), "{text}"),
        other => panic!("want failure, got {other:?}"),
    }
    assert!(started.elapsed() < SHORT + Duration::from_secs(1), "took {:?}", started.elapsed());
    holder.abort();
}

#[test]
fn durations_read_like_go() {
    for (d, want) in [
        (Duration::from_secs(1), "1s"),
        (Duration::from_secs(30), "30s"),
        (Duration::from_millis(300), "300ms"),
        (Duration::from_millis(1500), "1.5s"),
    ] {
        assert_eq!(go_duration(d), want);
    }
}
