//! The labels and annotations put on sandboxes and containers, named like upstream's kubelet so tools that
//! know them (crictl, log collectors) keep working, and so a restarted agent can find its pods again.

use std::collections::HashMap;

pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Marks sandboxes and containers made by a node agent (upstream uses the same label).
pub const MANAGED: &str = "io.kubernetes.kubelet.managed";

pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
pub const TERMINATION_GRACE: &str = "io.kubernetes.pod.terminationGracePeriod";
pub const TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
/// Whether the container is an init container ("true") — decides how it counts towards pod phase.
pub const INIT_CONTAINER: &str = "io.rudder.container.init";

/// The labels of a pod's sandbox.
pub fn sandbox_labels(name: &str, namespace: &str, uid: &str) -> HashMap<String, String> {
    HashMap::from([
        (POD_NAME.to_string(), name.to_string()),
        (POD_NAMESPACE.to_string(), namespace.to_string()),
        (POD_UID.to_string(), uid.to_string()),
        (MANAGED.to_string(), "true".to_string()),
    ])
}

/// The labels of one of a pod's containers.
pub fn container_labels(name: &str, namespace: &str, uid: &str, container: &str) -> HashMap<String, String> {
    let mut labels = sandbox_labels(name, namespace, uid);
    labels.remove(MANAGED);
    labels.insert(CONTAINER_NAME.to_string(), container.to_string());
    labels
}
