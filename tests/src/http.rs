//! A plain HTTP/1.0 GET, enough to fetch a page from a pod IP without another dependency.

use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GETs `path` from `ip:port` and returns the whole response (status line, headers and body).
pub async fn get(ip: &str, port: u16, path: &str) -> anyhow::Result<String> {
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect((ip, port)).await.with_context(|| format!("connecting to {ip}:{port}"))?;
        stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n").as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        anyhow::Ok(String::from_utf8_lossy(&response).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(10), fetch).await.context("HTTP GET timed out")?
}
