//! `node.status.images`: what the runtime holds, reported as the kubelet reports it, so the scheduler's
//! ImageLocality can prefer nodes that already have a pod's images.

use k8s_openapi::api::core::v1::ContainerImage;

use crate::runtime::ImageInfo;

/// The kubelet's default `nodeStatusMaxImages`: the Node object stays small on nodes with many images,
/// and the largest images are the ones worth scheduling towards.
pub const MAX_IMAGES: usize = 50;

/// The kubelet's cap on names per image: a retagged image would otherwise grow without bound.
pub const MAX_NAMES_PER_IMAGE: usize = 5;

/// The runtime's images for the Node status: largest first (equal sizes by id, descending, as the
/// kubelet sorts them), at most [`MAX_IMAGES`], each named by its digests and then its tags.
///
/// Digests come first so that the cap on names never drops the one name that pins the content. Images
/// with no name at all are left out after the cut: nothing can refer to them, and an entry without names
/// only makes the status harder to read.
pub fn node_images(mut images: Vec<ImageInfo>) -> Vec<ContainerImage> {
    images.sort_by(|a, b| b.size_bytes.cmp(&a.size_bytes).then_with(|| b.id.cmp(&a.id)));
    images.truncate(MAX_IMAGES);
    images
        .into_iter()
        .filter(|i| !i.repo_digests.is_empty() || !i.repo_tags.is_empty())
        .map(|i| {
            let names: Vec<String> = i.repo_digests.into_iter().chain(i.repo_tags).take(MAX_NAMES_PER_IMAGE).collect();
            ContainerImage { names: Some(names), size_bytes: Some(i64::try_from(i.size_bytes).unwrap_or(i64::MAX)) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, tags: &[&str], digests: &[&str], size_bytes: u64) -> ImageInfo {
        ImageInfo {
            id: id.to_string(),
            repo_tags: tags.iter().map(|t| t.to_string()).collect(),
            repo_digests: digests.iter().map(|d| d.to_string()).collect(),
            size_bytes,
        }
    }

    /// (first name, size) of each reported image.
    fn summary(images: &[ContainerImage]) -> Vec<(String, i64)> {
        images
            .iter()
            .map(|i| {
                let first = i.names.as_ref().and_then(|n| n.first()).cloned().unwrap_or_default();
                (first, i.size_bytes.unwrap_or_default())
            })
            .collect()
    }

    /// (case, images the runtime lists, (first name, size) reported).
    type Case = (&'static str, Vec<ImageInfo>, Vec<(&'static str, i64)>);

    #[test]
    fn sorts_and_skips() {
        let cases: Vec<Case> = vec![
            ("no images", vec![], vec![]),
            (
                "largest first",
                vec![image("sha256:a", &["a:1"], &[], 10), image("sha256:b", &["b:1"], &[], 30), image("sha256:c", &["c:1"], &[], 20)],
                vec![("b:1", 30), ("c:1", 20), ("a:1", 10)],
            ),
            (
                "equal sizes by id, descending",
                vec![image("sha256:a", &["a:1"], &[], 10), image("sha256:b", &["b:1"], &[], 10)],
                vec![("b:1", 10), ("a:1", 10)],
            ),
            (
                "images without names are skipped",
                vec![image("sha256:a", &[], &[], 50), image("sha256:b", &["b:1"], &[], 10)],
                vec![("b:1", 10)],
            ),
            ("a size beyond i64 saturates", vec![image("sha256:a", &["a:1"], &[], u64::MAX)], vec![("a:1", i64::MAX)]),
        ];
        for (name, input, want) in cases {
            let got = summary(&node_images(input));
            let want: Vec<(String, i64)> = want.into_iter().map(|(n, s)| (n.to_string(), s)).collect();
            assert_eq!(got, want, "case {name}");
        }
    }

    #[test]
    fn names() {
        let many_tags = ["r/x:1", "r/x:2", "r/x:3", "r/x:4", "r/x:5", "r/x:6"];
        let cases: Vec<(&str, ImageInfo, Vec<&str>)> = vec![
            (
                "digests then tags",
                image("sha256:n", &["docker.io/library/nginx:latest"], &["docker.io/library/nginx@sha256:1"], 1),
                vec!["docker.io/library/nginx@sha256:1", "docker.io/library/nginx:latest"],
            ),
            ("tags only", image("sha256:n", &["n:1", "n:2"], &[], 1), vec!["n:1", "n:2"]),
            ("digest only", image("sha256:n", &[], &["n@sha256:1"], 1), vec!["n@sha256:1"]),
            ("at most five names, the digest kept", image("sha256:x", &many_tags, &["r/x@sha256:1"], 1), vec![
                "r/x@sha256:1",
                "r/x:1",
                "r/x:2",
                "r/x:3",
                "r/x:4",
            ]),
        ];
        for (name, input, want) in cases {
            let got = node_images(vec![input]);
            let names = got.first().and_then(|i| i.names.clone()).unwrap_or_default();
            assert_eq!(names, want, "case {name}");
        }
    }

    #[test]
    fn at_most_fifty_largest() {
        let input: Vec<ImageInfo> = (0..60_u64).map(|n| image(&format!("sha256:{n:02}"), &[&format!("i:{n}")], &[], n)).collect();
        let got = node_images(input);
        assert_eq!(got.len(), MAX_IMAGES);
        assert_eq!(summary(&got).first().map(|(n, s)| (n.as_str(), *s)), Some(("i:59", 59)));
        assert_eq!(summary(&got).last().map(|(n, s)| (n.as_str(), *s)), Some(("i:10", 10)), "the ten smallest are cut");
    }
}
