//! Revisions of a deployment's replica sets: the new replica set always carries the highest
//! revision, and one that becomes new again (a rollback, or a template changed back) keeps the
//! revisions it had before in `deployment.kubernetes.io/revision-history`, as upstream does.

use std::collections::BTreeMap;

use super::replicasets::REVISION;

pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";

/// Upstream's bound on the length of the revision history annotation.
const HISTORY_LIMIT_CHARS: usize = 2000;

/// Raises the revision in `annotations` to `new_revision` when it is lower, recording the replaced
/// revision in the history (oldest entries dropped to stay within the length bound). A revision
/// that is not a number is left alone, as upstream does. Returns whether anything changed.
pub fn bump(annotations: &mut BTreeMap<String, String>, new_revision: i64) -> bool {
    let previous = annotations.get(REVISION).cloned();
    let old = match previous.as_deref() {
        None | Some("") => 0,
        Some(text) => match text.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return false,
        },
    };
    if old >= new_revision {
        return false;
    }
    annotations.insert(REVISION.to_string(), new_revision.to_string());
    if let Some(old_text) = previous.filter(|t| !t.is_empty()) {
        let history = annotations.get(REVISION_HISTORY).map(String::as_str).unwrap_or_default();
        if let Some(history) = append_history(history, &old_text) {
            annotations.insert(REVISION_HISTORY.to_string(), history);
        }
    }
    true
}

/// `history` (comma-separated, oldest first) with `revision` appended, dropping the oldest entries
/// until it fits the length bound; `None` when even that cannot make it fit.
fn append_history(history: &str, revision: &str) -> Option<String> {
    if history.is_empty() {
        return Some(revision.to_string());
    }
    let mut entries: Vec<&str> = history.split(',').collect();
    let mut total = history.len() + revision.len() + 1;
    let mut start = 0;
    while total > HISTORY_LIMIT_CHARS && start < entries.len() {
        total -= entries[start].len() + 1;
        start += 1;
    }
    if total > HISTORY_LIMIT_CHARS {
        return None;
    }
    entries.drain(..start);
    entries.push(revision);
    Some(entries.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn bump_cases() {
        let cases = [
            ("fresh replica set gets the revision, no history", annotations(&[]), 1, true, Some("1"), None),
            ("empty revision counts as none", annotations(&[(REVISION, "")]), 2, true, Some("2"), None),
            ("rollback to revision 1 records it", annotations(&[(REVISION, "1")]), 3, true, Some("3"), Some("1")),
            (
                "second rollback appends",
                annotations(&[(REVISION, "3"), (REVISION_HISTORY, "1")]),
                5,
                true,
                Some("5"),
                Some("1,3"),
            ),
            ("already the highest: untouched", annotations(&[(REVISION, "4")]), 4, false, Some("4"), None),
            ("higher than needed: untouched", annotations(&[(REVISION, "7")]), 4, false, Some("7"), None),
            ("not a number: untouched", annotations(&[(REVISION, "x")]), 4, false, Some("x"), None),
        ];
        for (name, mut a, new, changed, revision, history) in cases {
            assert_eq!(bump(&mut a, new), changed, "{name}: changed");
            assert_eq!(a.get(REVISION).map(String::as_str), revision, "{name}: revision");
            assert_eq!(a.get(REVISION_HISTORY).map(String::as_str), history, "{name}: history");
        }
    }

    #[test]
    fn history_stays_within_bound() {
        // 500 entries of "1000" joined: 2499 characters, over the bound; the oldest must go.
        let long: Vec<String> = (1000..1500).map(|n| n.to_string()).collect();
        let history = append_history(&long.join(","), "2000").unwrap_or_default();
        assert!(history.len() <= HISTORY_LIMIT_CHARS, "{}", history.len());
        assert!(history.ends_with(",2000"), "newest kept last");
        assert!(!history.starts_with("1000,"), "oldest dropped");
        assert_eq!(append_history("", "3"), Some("3".to_string()));
    }
}
