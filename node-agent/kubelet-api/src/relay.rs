//! Relaying exec/attach/port-forward to the container runtime's streaming server, the way upstream's
//! UpgradeAwareHandler does: the client's request goes to the stream URL with its headers (Upgrade,
//! Connection, every `X-Stream-Protocol-Version`), the runtime's answer comes back as is, and after a
//! `101 Switching Protocols` bytes are spliced both ways until either side closes. The stream protocol
//! (SPDY/3.1 or WebSocket) is never parsed here.

use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::response::{self, Body};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client did not ask to switch protocols; streams only exist on upgraded connections.
    #[error("Upgrade request required")]
    NotAnUpgrade,
    /// The runtime gave a URL this relay cannot reach (only plain `http://` on a host and port is spoken).
    #[error("failed to use stream URL {0}: only http://host:port URLs are supported")]
    UnsupportedUrl(String),
    #[error("failed to connect to the runtime's streaming server at {address}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to exchange HTTP with the runtime's streaming server")]
    Http(#[source] hyper::Error),
    #[error("failed to build the request to the runtime's streaming server")]
    Request(#[source] http::Error),
}

/// Headers not passed on: the target's own Host replaces the client's, and the caller's credentials are
/// for this server, not for the runtime.
const DROPPED_HEADERS: [header::HeaderName; 2] = [header::HOST, header::AUTHORIZATION];

/// A `Connection` header carrying the `upgrade` token (SPDY and WebSocket requests alike).
pub fn is_upgrade_request(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Sends `request` to `target` and answers with the runtime's response, splicing the connections after
/// an upgrade.
pub async fn relay(
    mut request: Request<Incoming>,
    target: &url::Url,
) -> Result<Response<Body>, Error> {
    if !is_upgrade_request(request.headers()) {
        return Err(Error::NotAnUpgrade);
    }
    let unsupported = || Error::UnsupportedUrl(target.to_string());
    if target.scheme() != "http" {
        return Err(unsupported());
    }
    let host = match target.host().ok_or_else(unsupported)? {
        url::Host::Domain(domain) => domain.to_owned(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    let port = target.port_or_known_default().ok_or_else(unsupported)?;
    let authority = match target.port() {
        Some(port) => format!("{}:{port}", target.host_str().unwrap_or_default()),
        None => target.host_str().unwrap_or_default().to_owned(),
    };

    let client_upgrade = hyper::upgrade::on(&mut request);
    let (parts, body) = request.into_parts();
    let mut path_and_query = target.path().to_owned();
    if let Some(query) = target.query() {
        path_and_query.push('?');
        path_and_query.push_str(query);
    }
    let mut outgoing = Request::builder()
        .method(parts.method)
        .uri(path_and_query)
        .header(header::HOST, authority.as_str());
    for (name, value) in &parts.headers {
        if !DROPPED_HEADERS.contains(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let outgoing = outgoing.body(body).map_err(Error::Request)?;

    let stream = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|source| Error::Connect {
            address: authority.clone(),
            source,
        })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(Error::Http)?;
    tokio::spawn(async move {
        if let Err(error) = connection.with_upgrades().await {
            tracing::debug!(%error, "streaming server connection ended with an error");
        }
    });
    let mut answer = sender.send_request(outgoing).await.map_err(Error::Http)?;

    if answer.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(answer.map(|body| body.map_err(Into::into).boxed()));
    }
    let runtime_upgrade = hyper::upgrade::on(&mut answer);
    let mut switched = Response::new(response::empty());
    *switched.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *switched.headers_mut() = answer.headers().clone();
    tokio::spawn(async move {
        let (client, runtime) = match tokio::try_join!(client_upgrade, runtime_upgrade) {
            Ok(both) => both,
            Err(error) => {
                tracing::warn!(%error, "failed to upgrade a streaming connection");
                return;
            }
        };
        let (mut client, mut runtime) = (TokioIo::new(client), TokioIo::new(runtime));
        match tokio::io::copy_bidirectional(&mut client, &mut runtime).await {
            Ok((up, down)) => tracing::debug!(up, down, "streaming connection closed"),
            Err(error) => tracing::debug!(%error, "streaming connection ended with an error"),
        }
    });
    Ok(switched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_requests() {
        let cases: [(&str, &[&str], bool); 5] = [
            ("spdy", &["Upgrade"], true),
            ("lower case among others", &["keep-alive, upgrade"], true),
            ("second header", &["keep-alive", "Upgrade"], true),
            ("keep-alive only", &["keep-alive"], false),
            ("none", &[], false),
        ];
        for (name, values, want) in cases {
            let mut headers = http::HeaderMap::new();
            for value in values {
                headers.append(header::CONNECTION, http::HeaderValue::from_static(value));
            }
            assert_eq!(is_upgrade_request(&headers), want, "case {name}");
        }
    }
}
