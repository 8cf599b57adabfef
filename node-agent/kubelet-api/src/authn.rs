//! Who is calling: the subject of a verified client certificate (CN is the user, each O a group, as
//! upstream's x509 authenticator reads it), or the user a TokenReview vouches for behind a bearer token.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};

use crate::cache::TtlCache;

/// How long a token's review result is trusted (upstream kubelet's default webhook cache TTL is 2 minutes).
const AUTHENTICATED_TTL: Duration = Duration::from_secs(120);
/// Rejected tokens are re-reviewed sooner, so a token that just became valid is not refused for long.
const UNAUTHENTICATED_TTL: Duration = Duration::from_secs(10);

/// Why a caller could not be identified (as opposed to being identified as nobody).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client certificate, already verified by TLS, could not be parsed.
    #[error("failed to parse the client certificate")]
    Certificate(#[source] x509_parser::nom::Err<x509_parser::error::X509Error>),
    /// The TokenReview call to the apiserver failed.
    #[error("failed to review a bearer token")]
    TokenReview(#[source] kube::Error),
}

/// An authenticated user, as SubjectAccessReview wants it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Reads the user from a client certificate TLS has already verified against the client CA.
/// Returns `None` for a certificate without a common name (upstream refuses those too).
pub fn user_from_certificate(der: &[u8]) -> Result<Option<UserInfo>, Error> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).map_err(Error::Certificate)?;
    let subject = certificate.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default();
    if name.is_empty() {
        return Ok(None);
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_owned)
        .collect();
    Ok(Some(UserInfo {
        name: name.to_owned(),
        groups,
        ..UserInfo::default()
    }))
}

/// The `Authorization: Bearer <token>` of a request, if any.
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Turns a bearer token into a user, or `None` when the token is not valid.
pub trait TokenAuthenticator: Send + Sync + 'static {
    fn authenticate<'a>(&'a self, token: &'a str)
    -> BoxFuture<'a, Result<Option<UserInfo>, Error>>;
}

/// Asks the apiserver with a TokenReview (upstream kubelet's `--authentication-token-webhook`), caching
/// results briefly. Tokens are kept in memory only, as cache keys.
pub struct TokenReviewAuthenticator {
    api: Api<TokenReview>,
    cache: TtlCache<String, Option<UserInfo>>,
}

impl TokenReviewAuthenticator {
    pub fn new(client: kube::Client) -> Self {
        Self {
            api: Api::all(client),
            cache: TtlCache::default(),
        }
    }

    async fn review(&self, token: &str) -> Result<Option<UserInfo>, Error> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let reviewed = self
            .api
            .create(&PostParams::default(), &review)
            .await
            .map_err(Error::TokenReview)?;
        let Some(status) = reviewed.status.filter(|s| s.authenticated == Some(true)) else {
            return Ok(None);
        };
        let Some(user) = status.user else {
            return Ok(None);
        };
        Ok(Some(UserInfo {
            name: user.username.unwrap_or_default(),
            uid: user.uid.unwrap_or_default(),
            groups: user.groups.unwrap_or_default(),
            extra: user.extra.unwrap_or_default(),
        }))
    }
}

impl TokenAuthenticator for TokenReviewAuthenticator {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserInfo>, Error>> {
        Box::pin(async move {
            let key = token.to_owned();
            if let Some(cached) = self.cache.get(&key, Instant::now()) {
                return Ok(cached);
            }
            let user = self.review(token).await?;
            let ttl = if user.is_some() {
                AUTHENTICATED_TTL
            } else {
                UNAUTHENTICATED_TTL
            };
            self.cache.insert(key, user.clone(), ttl, Instant::now());
            Ok(user)
        })
    }
}

impl<T: TokenAuthenticator> TokenAuthenticator for Arc<T> {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserInfo>, Error>> {
        (**self).authenticate(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let cases = [
            ("bearer", Some("Bearer abc.def"), Some("abc.def")),
            ("lower-case scheme", Some("bearer xyz"), Some("xyz")),
            ("basic auth", Some("Basic dXNlcjpwYXNz"), None),
            ("empty token", Some("Bearer "), None),
            ("no header", None, None),
        ];
        for (name, header, want) in cases {
            let mut headers = http::HeaderMap::new();
            if let Some(value) = header {
                headers.insert(
                    http::header::AUTHORIZATION,
                    http::HeaderValue::from_static(value),
                );
            }
            assert_eq!(bearer_token(&headers), want, "case {name}");
        }
    }

    fn certificate(names: &[(rcgen::DnType, &str)]) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in names {
            params.distinguished_name.push(kind.clone(), *value);
        }
        let key = rcgen::KeyPair::generate().expect("key");
        params
            .self_signed(&key)
            .expect("certificate")
            .der()
            .to_vec()
    }

    #[test]
    fn users_from_certificates() {
        use rcgen::DnType::{CommonName, OrganizationName, OrganizationalUnitName};
        let cases = [
            (
                "node",
                certificate(&[
                    (CommonName, "system:node:n1"),
                    (OrganizationName, "system:nodes"),
                ]),
                Some(("system:node:n1", vec!["system:nodes"])),
            ),
            // rcgen keeps one value per attribute type, so several O's cannot be made here.
            (
                "group before name",
                certificate(&[(OrganizationName, "a"), (CommonName, "u")]),
                Some(("u", vec!["a"])),
            ),
            (
                "units are not groups",
                certificate(&[(CommonName, "u"), (OrganizationalUnitName, "ou")]),
                Some(("u", vec![])),
            ),
            (
                "no common name",
                certificate(&[(OrganizationName, "system:masters")]),
                None,
            ),
        ];
        for (name, der, want) in cases {
            let got = user_from_certificate(&der).expect("parses");
            let got = got.as_ref().map(|u| {
                (
                    u.name.as_str(),
                    u.groups.iter().map(String::as_str).collect::<Vec<_>>(),
                )
            });
            assert_eq!(got, want, "case {name}");
        }
    }

    #[test]
    fn garbage_certificate_is_an_error_not_a_panic() {
        assert!(user_from_certificate(b"not a certificate").is_err());
    }
}
