//! The scheduling framework, shaped like upstream's `pkg/scheduler/framework`: one narrow trait per
//! extension point, a [`Status`] that carries rejections as codes rather than errors, per-cycle
//! [`CycleState`], a registry of plugin factories and a [`Framework`] that runs the enabled plugins.

pub mod affinity_terms;
pub mod binding;
pub mod cycle_state;
pub mod explanation;
pub mod fit_error;
pub mod interface;
pub mod node_info;
pub mod nominated;
pub mod pod_overrides;
pub mod points;
pub mod registry;
pub mod runtime;
pub mod status;
pub mod waiting_pods;

pub use cycle_state::CycleState;
pub use fit_error::{FitError, NodeToStatus};
pub use binding::{PermitOutcome, QueueSort};
pub use interface::{
    BindPlugin, FilterPlugin, FilterRunner, MAX_NODE_SCORE, NodeScore, NormalizeScorePlugin, PermitPlugin, Plugin,
    PostBindPlugin, PostFilterPlugin, PostFilterResult, PreBindPlugin, PreEnqueuePlugin, PreFilterPlugin, PreScorePlugin,
    QueueSortPlugin, QueuedPodInfo, ReservePlugin, ScorePlugin,
};
pub use explanation::Explanation;
pub use node_info::{NodeInfo, PodInfo, Snapshot};
pub use nominated::NominatedPods;
pub use points::{Enabled, Point, Points};
pub use registry::{Handle, PluginSpec, Registry};
pub use runtime::Framework;
pub use status::{Code, Status};
pub use waiting_pods::{Waiter, WaitingPods};
