//! ImageLocality: prefers nodes that already hold the pod's images (from `node.status.images`), so its
//! containers start without a pull. Each image counts with its size scaled by the share of nodes that hold
//! it, so one node holding a big image does not draw every pod to itself (upstream's "node heating").
//! The share is over every node of the cluster's snapshot, not only the nodes that passed the filters.

use std::borrow::Cow;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::framework::registry::{Handle, Result};
use crate::framework::{CycleState, MAX_NODE_SCORE, NodeInfo, Plugin, PreScorePlugin, ScorePlugin, Snapshot, Status};

pub const NAME: &str = "ImageLocality";
const PRE_SCORE_STATE_KEY: &str = "PreScoreImageLocality";

const MB: i64 = 1024 * 1024;
/// Upstream's bounds, the size range of most images in registries: a sum below the lower one is worth no
/// more than having nothing, so a few small images do not pull pods together.
const MIN_THRESHOLD: i64 = 23 * MB;
/// Per container of the pod; the sum is capped at this times the number of containers.
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";

pub struct ImageLocality;

pub fn new(_: &Handle) -> Result<Arc<dyn Plugin>> {
    Ok(Arc::new(ImageLocality))
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

/// The pod's images and how many of the cluster's nodes hold each: the spread needs all the nodes at once.
struct PreScoreState {
    images: PodImages,
    /// For each of `images.distinct`, the number of nodes holding it.
    holders: Vec<usize>,
    total: usize,
}

impl PreScoreState {
    fn new<'a>(pod: &Pod, cluster: impl ExactSizeIterator<Item = &'a Node>) -> Self {
        let images = PodImages::of(pod);
        let mut holders = vec![0_usize; images.distinct.len()];
        let mut sizes = Vec::new();
        let total = cluster.len();
        for node in cluster {
            images.sizes_on(node, &mut sizes);
            for (h, size) in holders.iter_mut().zip(&sizes) {
                *h += usize::from(size.is_some());
            }
        }
        Self { images, holders, total }
    }

    fn score(&self, node: &Node) -> i64 {
        let mut sizes = Vec::new();
        self.images.sizes_on(node, &mut sizes);
        let sum = self
            .images
            .per_container
            .iter()
            .flatten()
            .filter_map(|&i| Some(scaled_image_score(sizes.get(i).copied().flatten()?, *self.holders.get(i)?, self.total)))
            .fold(0_i64, i64::saturating_add);
        calculate_priority(sum, self.images.per_container.len())
    }
}

impl PreScorePlugin for ImageLocality {
    fn pre_score(&self, state: &mut CycleState, pod: &Pod, _: &[&NodeInfo], snapshot: &Snapshot) -> Status {
        state.write(PRE_SCORE_STATE_KEY, PreScoreState::new(pod, snapshot.nodes().iter().map(NodeInfo::node)));
        Status::success()
    }
}

impl ScorePlugin for ImageLocality {
    fn score(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> std::result::Result<i64, Status> {
        if let Some(s) = state.read::<PreScoreState>(PRE_SCORE_STATE_KEY) {
            return Ok(s.score(node.node()));
        }
        // A profile can turn PreScore off for this plugin; with no other node known, this one is the
        // whole cluster and its images count at full size.
        Ok(PreScoreState::new(pod, std::iter::once(node.node())).score(node.node()))
    }
}

/// The pod's images as the nodes name them.
struct PodImages {
    /// Each image once, normalized.
    distinct: Vec<String>,
    /// For each init and app container, its image's index in `distinct` (`None` when it names none).
    per_container: Vec<Option<usize>>,
}

impl PodImages {
    fn of(pod: &Pod) -> Self {
        let mut out = Self { distinct: Vec::new(), per_container: Vec::new() };
        let Some(spec) = pod.spec.as_ref() else { return out };
        let containers = spec.init_containers.iter().flatten().chain(&spec.containers);
        for image in containers.map(|c| c.image.as_deref().unwrap_or_default()) {
            if image.is_empty() {
                out.per_container.push(None);
                continue;
            }
            let image = normalized_image_name(image);
            let index = match out.distinct.iter().position(|d| *d == image) {
                Some(i) => i,
                None => {
                    out.distinct.push(image.into_owned());
                    out.distinct.len() - 1
                }
            };
            out.per_container.push(Some(index));
        }
        out
    }

    /// Fills `sizes` with the size on `node` of each of `distinct`, `None` where the node does not
    /// report it (a buffer, so PreScore reuses one allocation across nodes).
    fn sizes_on(&self, node: &Node, sizes: &mut Vec<Option<i64>>) {
        sizes.clear();
        sizes.resize(self.distinct.len(), None);
        if self.distinct.is_empty() {
            return;
        }
        let images = node.status.as_ref().and_then(|s| s.images.as_deref()).unwrap_or_default();
        for image in images {
            for name in image.names.iter().flatten() {
                let name = normalized_image_name(name);
                if let Some(size) = self.distinct.iter().position(|d| *d == name).and_then(|i| sizes.get_mut(i)) {
                    size.get_or_insert(image.size_bytes.unwrap_or(0));
                }
            }
        }
    }
}

/// The image's size times the share of nodes holding it.
fn scaled_image_score(size: i64, holders: usize, total: usize) -> i64 {
    if total == 0 {
        return 0;
    }
    let spread = holders as f64 / total as f64;
    (size as f64 * spread) as i64
}

/// The summed image scores mapped linearly from `[MIN_THRESHOLD, MAX_CONTAINER_THRESHOLD × containers]`
/// onto `0..=MAX_NODE_SCORE`, clamped at both ends.
fn calculate_priority(sum: i64, containers: usize) -> i64 {
    let max = i128::from(MAX_CONTAINER_THRESHOLD) * i128::try_from(containers).unwrap_or(0);
    let min = i128::from(MIN_THRESHOLD);
    if max <= min {
        return 0;
    }
    let sum = i128::from(sum).clamp(min, max);
    i64::try_from(i128::from(MAX_NODE_SCORE) * (sum - min) / (max - min)).unwrap_or(MAX_NODE_SCORE)
}

/// `name` in the form runtimes report images in: with a registry (`docker.io` unless one is given, and
/// `library/` for its single-component names) and a tag (`latest` unless a tag or digest is given), so
/// `nginx` and `docker.io/library/nginx:latest` are the same image. With a digest the tag is dropped: the
/// digest alone decides the content, and runtimes report digests without tags.
///
/// Upstream only appends `:latest`; the registry rules are Docker's reference normalization, which is
/// how containerd names what it pulled.
pub fn normalized_image_name(name: &str) -> Cow<'_, str> {
    if name.is_empty() {
        return Cow::Borrowed(name);
    }
    let (named, digest) = match name.split_once('@') {
        Some((named, digest)) => (named, Some(digest)),
        None => (name, None),
    };
    let (domain, path) = split_domain(named);
    let (repository, tag) = match path.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
        _ => (path, None),
    };
    let canonical_domain = match domain {
        None | Some(LEGACY_DEFAULT_DOMAIN) => DEFAULT_DOMAIN,
        Some(d) => d,
    };
    let official = canonical_domain == DEFAULT_DOMAIN && !repository.contains('/');
    let unchanged = domain == Some(canonical_domain) && !official && (tag.is_some() != digest.is_some());
    if unchanged {
        return Cow::Borrowed(name);
    }
    let prefix = if official { OFFICIAL_REPO_PREFIX } else { "" };
    Cow::Owned(match (digest, tag) {
        (Some(digest), _) => format!("{canonical_domain}/{prefix}{repository}@{digest}"),
        (None, tag) => format!("{canonical_domain}/{prefix}{repository}:{}", tag.unwrap_or(DEFAULT_TAG)),
    })
}

/// The registry of a reference and the rest. The first component names a registry only when it looks like
/// a host (a dot, a port, `localhost`, or upper case, which repository names cannot have).
fn split_domain(named: &str) -> (Option<&str>, &str) {
    match named.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, named),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, node_info, pod};
    use k8s_openapi::api::core::v1::{Container, ContainerImage};

    /// A node reporting these images (names, size in MB).
    fn node_with(name: &str, images: &[(&[&str], i64)]) -> Node {
        let mut n = node(name, "4", "8Gi");
        if let Some(status) = n.status.as_mut() {
            let list = images
                .iter()
                .map(|(names, mb)| ContainerImage {
                    names: Some(names.iter().map(|s| s.to_string()).collect()),
                    size_bytes: Some(mb * MB),
                })
                .collect();
            status.images = Some(list);
        }
        n
    }

    /// A pod with one container per image in `images` and one init container per image in `init`.
    fn pod_with(images: &[&str], init: &[&str]) -> Pod {
        let container = |(i, image): (usize, &&str)| Container { name: format!("c{i}"), image: Some(image.to_string()), ..Default::default() };
        let mut p = pod("p");
        if let Some(spec) = p.spec.as_mut() {
            spec.containers = images.iter().enumerate().map(container).collect();
            spec.init_containers = (!init.is_empty()).then(|| init.iter().enumerate().map(container).collect());
        }
        p
    }

    /// Runs PreScore with all `nodes` feasible, then Score on each.
    fn scores(p: &Pod, nodes: Vec<Node>) -> Vec<i64> {
        let count = nodes.len();
        scores_of_first(p, nodes, count)
    }

    /// Runs PreScore in a cluster of `nodes` of which only the first `feasible` passed the filters, then
    /// Score on those.
    fn scores_of_first(p: &Pod, nodes: Vec<Node>, feasible: usize) -> Vec<i64> {
        let snapshot = Snapshot::new(nodes.into_iter().map(|n| node_info(n, vec![])).collect());
        let refs: Vec<&NodeInfo> = snapshot.nodes().iter().take(feasible).collect();
        let mut state = CycleState::new();
        assert!(ImageLocality.pre_score(&mut state, p, &refs, &snapshot).is_success());
        refs.iter().map(|n| ImageLocality.score(&state, p, n).unwrap_or(-1)).collect()
    }

    #[test]
    fn the_share_counts_nodes_that_did_not_pass_the_filters() {
        // Only a is feasible, but b holds the image too: 300 MB × 2/3 = 200 MB → 100 × 177 / 977 = 18
        // (over the feasible node alone it would be 300 MB → 28).
        let nodes = vec![node_with("a", &[(NGINX, 300)]), node_with("b", &[(NGINX, 300)]), node_with("c", &[])];
        assert_eq!(scores_of_first(&pod_with(&["nginx"], &[]), nodes, 1), vec![18]);
    }

    const NGINX: &[&str] = &["docker.io/library/nginx:latest"];

    #[test]
    fn score() {
        let cases: Vec<(&str, Pod, Vec<Node>, Vec<i64>)> = vec![
            ("no images on any node", pod_with(&["nginx"], &[]), vec![node_with("a", &[]), node_with("b", &[]), node("c", "4", "8Gi")], vec![0, 0, 0]),
            // 300 MB × 1/3 = 100 MB → 100 × (100 − 23) / (1000 − 23) = 7.
            ("image on one of three nodes", pod_with(&["nginx"], &[]), vec![node_with("a", &[(NGINX, 300)]), node_with("b", &[]), node_with("c", &[])], vec![7, 0, 0]),
            // 300 MB × 3/3 → 100 × 277 / 977 = 28.
            ("image on all nodes", pod_with(&["nginx"], &[]), vec![node_with("a", &[(NGINX, 300)]), node_with("b", &[(NGINX, 300)]), node_with("c", &[(NGINX, 300)])], vec![28, 28, 28]),
            ("below the lower bound", pod_with(&["nginx"], &[]), vec![node_with("a", &[(NGINX, 20)]), node_with("b", &[(NGINX, 20)])], vec![0, 0]),
            ("above the upper bound", pod_with(&["nginx"], &[]), vec![node_with("a", &[(NGINX, 2000)]), node_with("b", &[(NGINX, 2000)])], vec![100, 100]),
            // a: nginx 500 × 2/2 + redis 600 × 1/2 + busybox (init) 100 × 1/2 = 850 MB of 3 × 1000 → 100 × 827 / 2977 = 27;
            // b: nginx 500 → 100 × 477 / 2977 = 16.
            (
                "several containers, init containers included",
                pod_with(&["nginx", "redis:7"], &["busybox"]),
                vec![
                    node_with("a", &[(NGINX, 500), (&["docker.io/library/redis:7"], 600), (&["docker.io/library/busybox:latest"], 100)]),
                    node_with("b", &[(NGINX, 500)]),
                ],
                vec![27, 16],
            ),
            // 2 × 600 MB of 2 × 1000 → 100 × 1177 / 1977 = 59.
            ("an image shared by two containers counts twice", pod_with(&["nginx", "nginx"], &[]), vec![node_with("a", &[(NGINX, 600)])], vec![59]),
            ("short pod image, full node name", pod_with(&["nginx"], &[]), vec![node_with("a", &[(NGINX, 300)])], vec![28]),
            ("full pod image, short node name", pod_with(&["docker.io/library/nginx:latest"], &[]), vec![node_with("a", &[(&["nginx"], 300)])], vec![28]),
            (
                "pod digest matches the node's digest",
                pod_with(&["nginx:1.27@sha256:abc"], &[]),
                vec![node_with("a", &[(&["docker.io/library/nginx@sha256:abc", "docker.io/library/nginx:1.27"], 300)])],
                vec![28],
            ),
            ("another tag is another image", pod_with(&["nginx:1.27"], &[]), vec![node_with("a", &[(NGINX, 300)])], vec![0]),
            ("another registry is another image", pod_with(&["registry.local:5000/nginx"], &[]), vec![node_with("a", &[(NGINX, 300)])], vec![0]),
        ];
        for (name, p, nodes, want) in cases {
            assert_eq!(scores(&p, nodes), want, "case {name}");
        }
    }

    #[test]
    fn without_pre_score_the_node_stands_alone() {
        let p = pod_with(&["nginx"], &[]);
        let got = ImageLocality.score(&CycleState::new(), &p, &node_info(node_with("a", &[(NGINX, 300)]), vec![]));
        assert_eq!(got, Ok(28));
    }

    #[test]
    fn normalizes_names() {
        let cases = [
            ("bare name", "nginx", "docker.io/library/nginx:latest"),
            ("bare name with tag", "nginx:1.27", "docker.io/library/nginx:1.27"),
            ("library path", "library/nginx", "docker.io/library/nginx:latest"),
            ("docker.io without library", "docker.io/nginx", "docker.io/library/nginx:latest"),
            ("legacy docker hub domain", "index.docker.io/library/nginx:1", "docker.io/library/nginx:1"),
            ("docker hub user repository", "bitnami/redis:7", "docker.io/bitnami/redis:7"),
            ("already canonical", "registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
            ("registry with port, no tag", "localhost:5000/app", "localhost:5000/app:latest"),
            ("localhost registry", "localhost/app", "localhost/app:latest"),
            ("digest", "nginx@sha256:abc", "docker.io/library/nginx@sha256:abc"),
            ("tag and digest keep the digest", "nginx:1.27@sha256:abc", "docker.io/library/nginx@sha256:abc"),
            ("empty", "", ""),
        ];
        for (name, input, want) in cases {
            assert_eq!(normalized_image_name(input), want, "case {name}");
        }
        assert!(matches!(normalized_image_name("docker.io/library/nginx:latest"), Cow::Borrowed(_)), "no copy when canonical");
    }

    #[test]
    fn priority_bounds() {
        let cases = [
            ("no containers", 500 * MB, 0, 0),
            ("at the lower bound", MIN_THRESHOLD, 1, 0),
            ("at the upper bound", MAX_CONTAINER_THRESHOLD, 1, MAX_NODE_SCORE),
            ("the upper bound grows with containers", MAX_CONTAINER_THRESHOLD, 2, 49),
        ];
        for (name, sum, containers, want) in cases {
            assert_eq!(calculate_priority(sum, containers), want, "case {name}");
        }
    }
}
