//! Which kubelet API endpoint a request path names. Pure path matching; query strings are parsed in
//! [`crate::query`].

use crate::backend::ContainerRef;

/// An endpoint of the kubelet API with the pod and container named in its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Healthz,
    Exec(ContainerRef),
    Attach(ContainerRef),
    PortForward {
        namespace: String,
        pod: String,
        uid: Option<String>,
    },
    ContainerLogs(ContainerRef),
    NotFound,
}

/// Matches a request path (without its query) to a route.
pub fn route(path: &str) -> Route {
    let Some(rest) = path.strip_prefix('/') else {
        return Route::NotFound;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Route::NotFound;
    }
    let owned = |s: &&str| (*s).to_owned();
    match segments.as_slice() {
        ["healthz"] => Route::Healthz,
        ["exec", args @ ..] => container(args).map_or(Route::NotFound, Route::Exec),
        ["attach", args @ ..] => container(args).map_or(Route::NotFound, Route::Attach),
        ["portForward", namespace, pod] => Route::PortForward {
            namespace: owned(namespace),
            pod: owned(pod),
            uid: None,
        },
        ["portForward", namespace, pod, uid] => Route::PortForward {
            namespace: owned(namespace),
            pod: owned(pod),
            uid: Some(owned(uid)),
        },
        // Upstream serves logs only without a UID segment.
        ["containerLogs", namespace, pod, name] => Route::ContainerLogs(ContainerRef {
            namespace: owned(namespace),
            pod: owned(pod),
            uid: None,
            container: owned(name),
        }),
        _ => Route::NotFound,
    }
}

/// `{namespace}/{pod}/{container}` or `{namespace}/{pod}/{uid}/{container}`.
fn container(args: &[&str]) -> Option<ContainerRef> {
    let (namespace, pod, uid, name) = match args {
        [namespace, pod, name] => (namespace, pod, None, name),
        [namespace, pod, uid, name] => (namespace, pod, Some((*uid).to_owned()), name),
        _ => return None,
    };
    Some(ContainerRef {
        namespace: (*namespace).to_owned(),
        pod: (*pod).to_owned(),
        uid,
        container: (*name).to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(namespace: &str, pod: &str, uid: Option<&str>, container: &str) -> ContainerRef {
        ContainerRef {
            namespace: namespace.into(),
            pod: pod.into(),
            uid: uid.map(Into::into),
            container: container.into(),
        }
    }

    #[test]
    fn routes() {
        let cases = [
            ("healthz", "/healthz", Route::Healthz),
            (
                "exec",
                "/exec/default/web/nginx",
                Route::Exec(c("default", "web", None, "nginx")),
            ),
            (
                "exec with uid",
                "/exec/default/web/1234/nginx",
                Route::Exec(c("default", "web", Some("1234"), "nginx")),
            ),
            (
                "attach",
                "/attach/ns/p/c",
                Route::Attach(c("ns", "p", None, "c")),
            ),
            (
                "attach with uid",
                "/attach/ns/p/u/c",
                Route::Attach(c("ns", "p", Some("u"), "c")),
            ),
            (
                "port forward",
                "/portForward/ns/p",
                Route::PortForward {
                    namespace: "ns".into(),
                    pod: "p".into(),
                    uid: None,
                },
            ),
            (
                "port forward with uid",
                "/portForward/ns/p/u",
                Route::PortForward {
                    namespace: "ns".into(),
                    pod: "p".into(),
                    uid: Some("u".into()),
                },
            ),
            (
                "logs",
                "/containerLogs/ns/p/c",
                Route::ContainerLogs(c("ns", "p", None, "c")),
            ),
            ("exec missing container", "/exec/ns/p", Route::NotFound),
            ("exec too long", "/exec/a/b/c/d/e", Route::NotFound),
            ("empty segment", "/exec/ns//c", Route::NotFound),
            ("trailing slash", "/healthz/", Route::NotFound),
            ("logs with uid", "/containerLogs/ns/p/u/c", Route::NotFound),
            ("unknown", "/pods", Route::NotFound),
            ("root", "/", Route::NotFound),
            ("relative", "healthz", Route::NotFound),
        ];
        for (name, path, want) in cases {
            assert_eq!(route(path), want, "case {name}");
        }
    }
}
