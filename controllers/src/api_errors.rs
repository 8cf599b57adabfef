//! Recognising the API errors controllers treat as outcomes rather than failures.

/// The HTTP status of an API error response.
pub fn code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// The object is not there (any more).
pub fn is_not_found(error: &kube::Error) -> bool {
    code(error) == Some(404)
}

/// A create found the name taken.
pub fn is_already_exists(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists")
}

/// A write lost a race with another writer, or a precondition (UID, version) no longer holds.
pub fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409 && status.reason != "AlreadyExists")
}

/// The namespace is being deleted and accepts no new objects; controllers stop creating there.
pub fn is_namespace_terminating(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 403
        && status.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating")))
}
