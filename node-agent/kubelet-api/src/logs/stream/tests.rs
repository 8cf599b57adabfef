use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::backend::StreamOptions;

const LOG: &str = "\
2024-01-01T00:00:01.5Z stdout F one
2024-01-01T00:00:02Z stderr F two
not a cri line
2024-01-01T00:00:03Z stdout P thr
2024-01-01T00:00:03.1Z stdout F ee
2024-01-01T00:00:04Z stdout F four
";

/// A backend that only answers the questions logs ask.
struct FakeBackend {
    path: PathBuf,
    running: AtomicBool,
}

impl Backend for FakeBackend {
    async fn exec(&self, _: &ContainerRef, _: &StreamOptions) -> Result<url::Url, BackendError> {
        Err(BackendError::Runtime("not in this test".into()))
    }
    async fn attach(&self, _: &ContainerRef, _: &StreamOptions) -> Result<url::Url, BackendError> {
        Err(BackendError::Runtime("not in this test".into()))
    }
    async fn port_forward(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
    ) -> Result<url::Url, BackendError> {
        Err(BackendError::Runtime("not in this test".into()))
    }
    async fn log_file(&self, _: &ContainerRef, _: bool) -> Result<PathBuf, BackendError> {
        Ok(self.path.clone())
    }
    async fn is_running(&self, _: &ContainerRef) -> Result<bool, BackendError> {
        Ok(self.running.load(Ordering::SeqCst))
    }
}

fn temp_log(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rudder-kubelet-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.log"));
    std::fs::write(&path, content).expect("write log");
    path
}

fn container() -> ContainerRef {
    ContainerRef {
        namespace: "ns".into(),
        pod: "p".into(),
        uid: None,
        container: "c".into(),
    }
}

async fn collect(mut rx: mpsc::Receiver<Bytes>) -> String {
    let mut out = Vec::new();
    while let Some(chunk) = rx.recv().await {
        out.extend_from_slice(&chunk);
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn read(name: &str, options: LogOptions) -> String {
    let path = temp_log(name, LOG);
    let backend = Arc::new(FakeBackend {
        path: path.clone(),
        running: AtomicBool::new(false),
    });
    let (tx, rx) = mpsc::channel(16);
    let file = LogFile::open(&path).await.expect("open");
    let task = tokio::spawn(serve_logs(
        backend,
        container(),
        file,
        options.clone(),
        Sink::new(tx, &options),
    ));
    let out = collect(rx).await;
    task.await.expect("join").expect("serve");
    out
}

#[tokio::test]
async fn log_options_shape_the_output() {
    let since = "2024-01-01T00:00:03Z".parse().expect("time");
    let cases = [
        ("all", LogOptions::default(), "one\ntwo\nthree\nfour\n"),
        (
            // Like upstream, tailLines counts the file's entries, so a split line counts twice.
            "tail 2",
            LogOptions {
                tail_lines: Some(2),
                ..Default::default()
            },
            "ee\nfour\n",
        ),
        (
            "tail 0",
            LogOptions {
                tail_lines: Some(0),
                ..Default::default()
            },
            "",
        ),
        (
            "tail more than there is",
            LogOptions {
                tail_lines: Some(100),
                ..Default::default()
            },
            "one\ntwo\nthree\nfour\n",
        ),
        (
            "limit cuts mid line",
            LogOptions {
                limit_bytes: Some(6),
                ..Default::default()
            },
            "one\ntw",
        ),
        (
            "limit on a boundary",
            LogOptions {
                limit_bytes: Some(4),
                ..Default::default()
            },
            "one\n",
        ),
        (
            "timestamps",
            LogOptions {
                timestamps: true,
                tail_lines: Some(3),
                ..Default::default()
            },
            "2024-01-01T00:00:03Z three\n2024-01-01T00:00:04Z four\n",
        ),
        (
            "since",
            LogOptions {
                since: Some(since),
                ..Default::default()
            },
            "three\nfour\n",
        ),
        (
            "since with tail",
            LogOptions {
                since: Some(since),
                tail_lines: Some(1),
                ..Default::default()
            },
            "four\n",
        ),
    ];
    for (name, options, want) in cases {
        assert_eq!(
            read(&name.replace(' ', "-"), options).await,
            want,
            "case {name}"
        );
    }
}

#[tokio::test]
async fn follow_streams_appends_and_ends_when_the_container_stops() {
    use std::io::Write;
    let path = temp_log("follow", "2024-01-01T00:00:01Z stdout F first\n");
    let backend = Arc::new(FakeBackend {
        path: path.clone(),
        running: AtomicBool::new(true),
    });
    let options = LogOptions {
        follow: true,
        ..Default::default()
    };
    let (tx, mut rx) = mpsc::channel(16);
    let file = LogFile::open(&path).await.expect("open");
    let task = tokio::spawn(serve_logs(
        backend.clone(),
        container(),
        file,
        options.clone(),
        Sink::new(tx, &options),
    ));
    assert_eq!(rx.recv().await.as_deref(), Some(&b"first\n"[..]));

    let mut appender = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("append");
    // Half a line first: nothing may come out until its newline is written.
    appender
        .write_all(b"2024-01-01T00:00:02Z stdout F sec")
        .expect("write");
    appender.flush().expect("flush");
    tokio::time::sleep(POLL_INTERVAL * 2).await;
    appender.write_all(b"ond\n").expect("write");
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("appended line in time");
    assert_eq!(got.as_deref(), Some(&b"second\n"[..]));

    backend.running.store(false, Ordering::SeqCst);
    let rest = tokio::time::timeout(Duration::from_secs(5), collect(rx))
        .await
        .expect("follow ends once stopped");
    assert_eq!(rest, "");
    task.await.expect("join").expect("serve");
}

#[tokio::test]
async fn follow_stops_when_the_client_leaves() {
    let path = temp_log("leave", "2024-01-01T00:00:01Z stdout F first\n");
    let backend = Arc::new(FakeBackend {
        path: path.clone(),
        running: AtomicBool::new(true),
    });
    let options = LogOptions {
        follow: true,
        ..Default::default()
    };
    let (tx, mut rx) = mpsc::channel(16);
    let file = LogFile::open(&path).await.expect("open");
    let task = tokio::spawn(serve_logs(
        backend,
        container(),
        file,
        options.clone(),
        Sink::new(tx, &options),
    ));
    assert_eq!(rx.recv().await.as_deref(), Some(&b"first\n"[..]));
    drop(rx);
    let result = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("ends once the client left");
    assert!(result.expect("join").is_ok());
}
