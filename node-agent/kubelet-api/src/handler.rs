//! One request through the kubelet API: authenticate, authorize, route, answer.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use jiff::Timestamp;
use tokio::sync::mpsc;

use crate::authn::{self, TokenAuthenticator, UserInfo};
use crate::authz::{Attributes, Authorizer, Decision};
use crate::backend::{Backend, BackendError, ContainerRef};
use crate::logs::stream::{self, LogFile, Sink};
use crate::query;
use crate::relay;
use crate::response::{self, Body};
use crate::routes::{Route, route};

/// The group every authenticated user is in (upstream adds it to every authenticator's answer).
const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// Chunks of a log response in flight before the reader waits for the client.
const LOG_CHUNKS_IN_FLIGHT: usize = 64;

/// How callers are identified beyond client certificates, and how they are authorized.
#[derive(Clone)]
pub struct Auth {
    pub authorizer: Arc<dyn Authorizer>,
    /// Bearer-token authentication; `None` accepts client certificates only.
    pub tokens: Option<Arc<dyn TokenAuthenticator>>,
}

impl Auth {
    /// Upstream kubelet's Webhook modes: TokenReview for bearer tokens, SubjectAccessReview for decisions.
    pub fn webhook(client: kube::Client) -> Self {
        Self {
            authorizer: Arc::new(crate::authz::SubjectAccessReviewAuthorizer::new(
                client.clone(),
            )),
            tokens: Some(Arc::new(authn::TokenReviewAuthenticator::new(client))),
        }
    }
}

/// What every request needs.
pub struct Context<B> {
    pub backend: Arc<B>,
    pub node_name: String,
    pub auth: Auth,
}

/// Answers one request. `certificate_user` is who the connection's verified client certificate names.
pub async fn handle<B: Backend>(
    context: Arc<Context<B>>,
    certificate_user: Option<UserInfo>,
    request: Request<Incoming>,
) -> Response<Body> {
    let user = match authenticate(&context.auth, certificate_user, &request).await {
        Ok(Some(user)) => user,
        Ok(None) => return response::text(StatusCode::UNAUTHORIZED, "Unauthorized"),
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "authentication failed");
            return response::text(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
    };
    let attributes = Attributes::for_request(
        user,
        request.method(),
        request.uri().path(),
        &context.node_name,
    );
    match context.auth.authorizer.authorize(&attributes).await {
        Ok(Decision::Allow) => {}
        Ok(Decision::Deny { reason }) => {
            let message = attributes.forbidden_message();
            tracing::debug!(%message, %reason, "request denied");
            return response::text(StatusCode::FORBIDDEN, message);
        }
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "authorization failed");
            let message = format!(
                "Authorization error (user={}, verb={}, resource={}, subresource={})",
                attributes.user.name, attributes.verb, attributes.resource, attributes.subresource
            );
            return response::text(StatusCode::INTERNAL_SERVER_ERROR, message);
        }
    }
    serve(&context, request).await
}

async fn authenticate(
    auth: &Auth,
    certificate_user: Option<UserInfo>,
    request: &Request<Incoming>,
) -> Result<Option<UserInfo>, authn::Error> {
    let user = match (
        certificate_user,
        &auth.tokens,
        authn::bearer_token(request.headers()),
    ) {
        (Some(user), _, _) => Some(user),
        (None, Some(tokens), Some(token)) => tokens.authenticate(token).await?,
        _ => None,
    };
    Ok(user.map(|mut user| {
        if !user.groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
            user.groups.push(AUTHENTICATED_GROUP.to_owned());
        }
        user
    }))
}

async fn serve<B: Backend>(context: &Context<B>, request: Request<Incoming>) -> Response<Body> {
    let backend = &context.backend;
    let query = request.uri().query().map(str::to_owned);
    let query = query.as_deref();
    let streaming = matches!(*request.method(), Method::GET | Method::POST);
    match route(request.uri().path()) {
        Route::Healthz if matches!(*request.method(), Method::GET | Method::HEAD) => {
            response::text(StatusCode::OK, "ok")
        }
        Route::Exec(container) if streaming => match query::stream_options(query, true) {
            Ok(options) => relay_to(backend.exec(&container, &options).await, request).await,
            Err(error) => response::text(StatusCode::BAD_REQUEST, error.to_string()),
        },
        Route::Attach(container) if streaming => match query::stream_options(query, false) {
            Ok(options) => relay_to(backend.attach(&container, &options).await, request).await,
            Err(error) => response::text(StatusCode::BAD_REQUEST, error.to_string()),
        },
        Route::PortForward {
            namespace,
            pod,
            uid,
        } if streaming => {
            relay_to(
                backend.port_forward(&namespace, &pod, uid.as_deref()).await,
                request,
            )
            .await
        }
        Route::ContainerLogs(container) if *request.method() == Method::GET => {
            match query::log_options(query, Timestamp::now()) {
                Ok(options) => container_logs(backend, container, options).await,
                Err(error) => response::text(StatusCode::BAD_REQUEST, error.to_string()),
            }
        }
        Route::NotFound => response::text(StatusCode::NOT_FOUND, "404 page not found"),
        _ => response::text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} is not allowed here", request.method()),
        ),
    }
}

fn backend_error(error: &BackendError) -> Response<Body> {
    match error {
        BackendError::NotFound(message) => response::text(StatusCode::NOT_FOUND, message.clone()),
        BackendError::Runtime(_) => {
            response::text(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
        }
    }
}

async fn relay_to(
    target: Result<url::Url, BackendError>,
    request: Request<Incoming>,
) -> Response<Body> {
    let target = match target {
        Ok(target) => target,
        Err(error) => return backend_error(&error),
    };
    match relay::relay(request, &target).await {
        Ok(response) => response,
        Err(relay::Error::NotAnUpgrade) => response::text(
            StatusCode::BAD_REQUEST,
            relay::Error::NotAnUpgrade.to_string(),
        ),
        Err(error) => {
            let message = error_chain(&error);
            tracing::warn!(error = %message, "failed to relay a streaming request");
            response::text(StatusCode::INTERNAL_SERVER_ERROR, message)
        }
    }
}

async fn container_logs<B: Backend>(
    backend: &Arc<B>,
    container: ContainerRef,
    options: query::LogOptions,
) -> Response<Body> {
    let path = match backend.log_file(&container, options.previous).await {
        Ok(path) => path,
        Err(error) => return backend_error(&error),
    };
    let file = match LogFile::open(&path).await {
        Ok(file) => file,
        Err(stream::Error::Open { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            let message = format!(
                "log file for container {:?} in pod \"{}/{}\" not found",
                container.container, container.namespace, container.pod
            );
            return response::text(StatusCode::NOT_FOUND, message);
        }
        Err(error) => {
            return response::text(StatusCode::INTERNAL_SERVER_ERROR, error_chain(&error));
        }
    };
    let (tx, rx) = mpsc::channel(LOG_CHUNKS_IN_FLIGHT);
    let sink = Sink::new(tx, &options);
    let backend = backend.clone();
    tokio::spawn(async move {
        if let Err(error) = stream::serve_logs(backend, container, file, options, sink).await {
            tracing::warn!(error = %error_chain(&error), "container log stream ended early");
        }
    });
    let mut response = Response::new(response::channel(rx));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    response
}

/// An error and its sources on one line, for logs and 500 bodies.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
