//! How many pods a job should run, and which to create or delete to get there.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::indexes::Indexes;
use super::pods;

/// Upstream's cap on pods created or deleted in one sync.
pub const MAX_PER_SYNC: usize = 500;

/// The parts of a job's spec that decide its pod count.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub parallelism: i32,
    /// None for a work-queue job, which is done once any pod succeeds.
    pub completions: Option<i32>,
    pub indexed: bool,
    pub suspended: bool,
    /// `podReplacementPolicy: Failed`: replace pods only once they have failed, not while terminating.
    pub replace_only_failed: bool,
}

/// One sync's pod writes: deletions take precedence over creations, like upstream.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Nothing,
    Delete(Vec<Arc<Pod>>),
    /// One entry per pod; the completion index for an Indexed job.
    Create(Vec<Option<u32>>),
}

/// How many pods should be active: parallelism, but never more than the completions still due;
/// a work-queue job that has seen a success starts nothing new.
pub fn want_active(shape: &Shape, succeeded: i32, active: usize) -> usize {
    let want = match shape.completions {
        None if succeeded > 0 => return active,
        None => shape.parallelism,
        Some(completions) => completions.saturating_sub(succeeded).min(shape.parallelism),
    };
    usize::try_from(want).unwrap_or(0)
}

/// The writes that bring `active` pods to what `shape` wants. An Indexed job starts no pod for
/// a `completed` or `failed` index.
pub fn plan(shape: &Shape, active: &[Arc<Pod>], terminating: usize, succeeded: i32, completed: &Indexes, failed: &Indexes) -> Plan {
    if shape.suspended {
        return if active.is_empty() { Plan::Nothing } else { Plan::Delete(active.iter().take(MAX_PER_SYNC).cloned().collect()) };
    }
    let want = want_active(shape, succeeded, active.len());
    let completions = u32::try_from(shape.completions.unwrap_or(0)).unwrap_or(0);
    let (mut doomed, mut kept) = if shape.indexed { split_misfits(active, completions) } else { (Vec::new(), active.to_vec()) };
    let surplus = active.len().saturating_sub(want);
    if doomed.len() < surplus {
        kept.sort_by_key(|p| pods::deletion_rank(p));
        doomed.extend(kept.into_iter().take(surplus - doomed.len()));
    }
    if !doomed.is_empty() {
        doomed.truncate(MAX_PER_SYNC);
        return Plan::Delete(doomed);
    }
    let waiting = if shape.replace_only_failed { terminating } else { 0 };
    let missing = want.saturating_sub(active.len() + waiting).min(MAX_PER_SYNC);
    if missing == 0 {
        return Plan::Nothing;
    }
    if !shape.indexed {
        return Plan::Create(vec![None; missing]);
    }
    let running: Indexes = active.iter().filter_map(|p| pods::completion_index(p)).collect();
    let pending: Vec<Option<u32>> =
        (0..completions).filter(|i| !completed.contains(*i) && !failed.contains(*i) && !running.contains(*i)).take(missing).map(Some).collect();
    if pending.is_empty() { Plan::Nothing } else { Plan::Create(pending) }
}

/// For an Indexed job: pods without a valid index, and all but the most advanced pod of each
/// index that has several, must go; the rest stay.
fn split_misfits(active: &[Arc<Pod>], completions: u32) -> (Vec<Arc<Pod>>, Vec<Arc<Pod>>) {
    let mut doomed = Vec::new();
    let mut by_index: BTreeMap<u32, Vec<Arc<Pod>>> = BTreeMap::new();
    for pod in active {
        match pods::completion_index(pod).filter(|i| *i < completions) {
            Some(i) => by_index.entry(i).or_default().push(pod.clone()),
            None => doomed.push(pod.clone()),
        }
    }
    let mut kept = Vec::new();
    for (_, mut group) in by_index {
        group.sort_by_key(|p| pods::deletion_rank(p));
        if let Some(best) = group.pop() {
            kept.push(best);
        }
        doomed.extend(group);
    }
    (doomed, kept)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn shape(parallelism: i32, completions: Option<i32>, indexed: bool) -> Shape {
        Shape { parallelism, completions, indexed, suspended: false, replace_only_failed: false }
    }

    fn pod(name: &str, index: Option<&str>, phase: &str) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                annotations: index.map(|i| [(pods::COMPLETION_INDEX.to_string(), i.to_string())].into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus { phase: Some(phase.into()), ..Default::default() }),
        })
    }

    fn names(plan: &Plan) -> Vec<String> {
        match plan {
            Plan::Delete(p) => p.iter().filter_map(|p| p.metadata.name.clone()).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn wanted_active_pods() {
        let cases = [
            ("parallelism bounds", shape(2, Some(3), false), 0, 0, 2),
            ("remaining completions bound", shape(2, Some(3), false), 2, 1, 1),
            ("all done", shape(2, Some(3), false), 3, 0, 0),
            ("over-succeeded", shape(2, Some(3), false), 5, 0, 0),
            ("work queue starts parallelism", shape(3, None, false), 0, 0, 3),
            ("work queue after a success keeps what runs", shape(3, None, false), 1, 2, 2),
        ];
        for (name, s, succeeded, active, want) in cases {
            assert_eq!(want_active(&s, succeeded, active), want, "{name}");
        }
    }

    #[test]
    fn non_indexed_plans() {
        let none = Indexes::default();
        let two = [pod("a", None, "Running"), pod("b", None, "Pending")];
        let cases = [
            ("start", shape(2, Some(3), false), vec![], 0, 0, Plan::Create(vec![None, None])),
            ("top up", shape(2, Some(3), false), vec![two[0].clone()], 0, 1, Plan::Create(vec![None])),
            ("steady", shape(2, Some(5), false), two.to_vec(), 0, 0, Plan::Nothing),
            ("finished leaves nothing to create", shape(2, Some(3), false), vec![], 0, 3, Plan::Nothing),
        ];
        for (name, s, active, terminating, succeeded, want) in cases {
            assert_eq!(plan(&s, &active, terminating, succeeded, &none, &none), want, "{name}");
        }
        let shrink = plan(&shape(1, Some(5), false), &two, 0, 0, &none, &none);
        assert_eq!(names(&shrink), vec!["b"], "the pending pod goes first");
        let suspended = Shape { suspended: true, ..shape(2, Some(5), false) };
        assert_eq!(names(&plan(&suspended, &two, 0, 0, &none, &none)).len(), 2, "suspend deletes every active pod");
        let strict = Shape { replace_only_failed: true, ..shape(2, Some(5), false) };
        assert_eq!(plan(&strict, &two[..1], 1, 0, &none, &none), Plan::Nothing, "waits for the terminating pod");
        assert_eq!(plan(&shape(2, Some(5), false), &two[..1], 1, 0, &none, &none), Plan::Create(vec![None]), "replaces at once");
    }

    #[test]
    fn indexed_plans() {
        let completed: Indexes = [0].into_iter().collect();
        let running = [pod("one", Some("1"), "Running")];
        assert_eq!(plan(&shape(3, Some(4), true), &running, 0, 1, &completed, &Indexes::default()), Plan::Create(vec![Some(2), Some(3)]), "skips done and running indexes");
        assert_eq!(plan(&shape(1, Some(4), true), &[], 0, 1, &completed, &Indexes::default()), Plan::Create(vec![Some(1)]), "lowest pending first");
        let dupes = [pod("old", Some("1"), "Running"), pod("new", Some("1"), "Pending"), pod("bad", Some("9"), "Running"), pod("none", None, "Running")];
        let mut doomed = names(&plan(&shape(3, Some(4), true), &dupes, 0, 0, &Indexes::default(), &Indexes::default()));
        doomed.sort();
        assert_eq!(doomed, vec!["bad", "new", "none"], "duplicates and invalid indexes go, the running one stays");
        let failed: Indexes = [1, 2].into_iter().collect();
        assert_eq!(plan(&shape(3, Some(4), true), &[], 0, 1, &completed, &failed), Plan::Create(vec![Some(3)]), "failed indexes are not retried");
    }
}
