//! Which part of a volume a mount sees: `subPath` as written, or `subPathExpr` expanded from the
//! container's environment. Like upstream's kubelet, every variable the expression names must be set and
//! non-empty, and the result may neither be absolute nor step out of the volume with `..` — a pod asking
//! for that gets CreateContainerConfigError instead of a mount of the wrong directory.

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path};

use k8s_openapi::api::core::v1::VolumeMount;

use crate::pod::env;

/// Why a mount's sub-path is refused; the messages are upstream's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("missing value for {0}")]
    MissingValue(String),
    #[error("error SubPath `{0}` must not be an absolute path")]
    Absolute(String),
    #[error("unable to provision SubPath `{0}`: must not contain '..'")]
    Backsteps(String),
}

/// The checked sub-path of `mount`, or None when it mounts the whole volume. `vars` is the container's
/// environment, later entries winning.
pub fn resolve(mount: &VolumeMount, vars: &[(String, String)]) -> Result<Option<String>, Error> {
    let path = match mount.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
        Some(expr) => expand(expr, vars)?,
        None => mount.sub_path.clone().unwrap_or_default(),
    };
    if path.is_empty() {
        return Ok(None);
    }
    if Path::new(&path).is_absolute() {
        return Err(Error::Absolute(path));
    }
    if Path::new(&path).components().any(|c| c == Component::ParentDir) {
        return Err(Error::Backsteps(path));
    }
    Ok(Some(path))
}

fn expand(expr: &str, vars: &[(String, String)]) -> Result<String, Error> {
    let values: HashMap<&str, &str> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut missing = BTreeSet::new();
    let expanded = env::expand_with(expr, |name| match values.get(name) {
        Some(value) if !value.is_empty() => Some(value.to_string()),
        _ => {
            missing.insert(name.to_string());
            Some(String::new())
        }
    });
    if missing.is_empty() {
        Ok(expanded)
    } else {
        Err(Error::MissingValue(missing.into_iter().collect::<Vec<_>>().join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(sub_path: Option<&str>, expr: Option<&str>) -> VolumeMount {
        VolumeMount { name: "v".into(), mount_path: "/m".into(), sub_path: sub_path.map(String::from), sub_path_expr: expr.map(String::from), ..Default::default() }
    }

    #[test]
    fn resolves_like_upstream() {
        let vars = vec![
            ("POD_NAME".to_string(), "web-0".to_string()),
            ("UP".to_string(), "..".to_string()),
            ("ABS".to_string(), "/tmp".to_string()),
            ("EMPTY".to_string(), String::new()),
            ("POD_NAME".to_string(), "web-1".to_string()),
        ];
        type Case = (&'static str, VolumeMount, Result<Option<&'static str>, Error>);
        let cases: [Case; 10] = [
            ("no sub-path", mount(None, None), Ok(None)),
            ("empty sub-path", mount(Some(""), Some("")), Ok(None)),
            ("plain sub-path", mount(Some("logs/a"), None), Ok(Some("logs/a"))),
            ("expression, later variable wins", mount(None, Some("logs/$(POD_NAME)")), Ok(Some("logs/web-1"))),
            ("escaped dollar", mount(None, Some("$$(POD_NAME)")), Ok(Some("$(POD_NAME)"))),
            ("expression to backsteps", mount(None, Some("$(UP)")), Err(Error::Backsteps("..".into()))),
            ("expression to an absolute path", mount(None, Some("$(ABS)")), Err(Error::Absolute("/tmp".into()))),
            ("unset and empty variables", mount(None, Some("$(NOPE)/$(EMPTY)")), Err(Error::MissingValue("EMPTY, NOPE".into()))),
            ("plain sub-path climbing out", mount(Some("a/../../b"), None), Err(Error::Backsteps("a/../../b".into()))),
            ("plain absolute sub-path", mount(Some("/etc"), None), Err(Error::Absolute("/etc".into()))),
        ];
        for (name, m, want) in cases {
            assert_eq!(resolve(&m, &vars), want.map(|p| p.map(String::from)), "{name}");
        }
    }
}
