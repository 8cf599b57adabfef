//! A stand-in for the runtime's streaming server (containerd's `http://127.0.0.1:<port>/exec/<token>`):
//! it records what it was asked, answers an upgrade with 101 and then echoes bytes upper-cased, so a test
//! can see data flow both ways through the relay.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the streaming server was asked.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub host: Option<String>,
    pub upgrade: Option<String>,
    pub protocols: Vec<String>,
    pub authorization: Option<String>,
}

pub struct StreamServer {
    pub address: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

pub async fn start() -> StreamServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| answer(log.clone(), request));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    StreamServer { address, seen }
}

fn header_value(request: &Request<Incoming>, name: header::HeaderName) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn answer(
    log: Arc<Mutex<Vec<Seen>>>,
    mut request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let protocols: Vec<String> = request
        .headers()
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    let seen = Seen {
        method: request.method().to_string(),
        path_and_query: request
            .uri()
            .path_and_query()
            .map(ToString::to_string)
            .unwrap_or_default(),
        host: header_value(&request, header::HOST),
        upgrade: header_value(&request, header::UPGRADE),
        authorization: header_value(&request, header::AUTHORIZATION),
        protocols: protocols.clone(),
    };
    log.lock().unwrap().push(seen.clone());
    if seen.upgrade.is_none() || !seen.path_and_query.starts_with("/exec/") {
        let mut response = Response::new(Full::new(Bytes::from_static(b"unknown stream token\n")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return Ok(response);
    }
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut io = TokioIo::new(upgraded);
        let mut buffer = [0u8; 1024];
        loop {
            match io.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let upper = buffer[..n].to_ascii_uppercase();
                    if io.write_all(&upper).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("Upgrade"),
    );
    headers.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("SPDY/3.1"),
    );
    if let Some(first) = protocols.first() {
        headers.insert(
            "x-stream-protocol-version",
            header::HeaderValue::from_str(first).unwrap(),
        );
    }
    Ok(response)
}
