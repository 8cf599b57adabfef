//! The outcome of running a plugin: a code plus human-readable reasons.

use std::fmt;

/// What a plugin decided. Rejections are codes, not errors, so the framework can count and report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// The plugin ran and accepts the pod (on this node).
    Success,
    /// Something went wrong inside the plugin; the pod is retried with backoff.
    Error,
    /// The pod does not fit now but might after other pods are removed (preemption can help).
    Unschedulable,
    /// The pod does not fit and removing pods will not change that.
    UnschedulableAndUnresolvable,
    /// Permit-style plugins: hold the pod until allowed.
    Wait,
    /// The plugin has nothing to say about this pod; its later extension points are skipped.
    Skip,
}

/// A plugin's verdict: its code, the reasons behind it, and which plugin gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    code: Code,
    reasons: Vec<String>,
    plugin: Option<&'static str>,
}

impl Status {
    pub fn new(code: Code, reasons: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self { code, reasons: reasons.into_iter().map(Into::into).collect(), plugin: None }
    }

    pub fn success() -> Self {
        Self { code: Code::Success, reasons: Vec::new(), plugin: None }
    }

    pub fn skip() -> Self {
        Self { code: Code::Skip, reasons: Vec::new(), plugin: None }
    }

    pub fn error(reason: impl Into<String>) -> Self {
        Self::new(Code::Error, [reason.into()])
    }

    pub fn unschedulable(reason: impl Into<String>) -> Self {
        Self::new(Code::Unschedulable, [reason.into()])
    }

    pub fn unresolvable(reason: impl Into<String>) -> Self {
        Self::new(Code::UnschedulableAndUnresolvable, [reason.into()])
    }

    /// Records which plugin produced this status.
    #[must_use]
    pub fn with_plugin(mut self, plugin: &'static str) -> Self {
        self.plugin = Some(plugin);
        self
    }

    pub fn code(&self) -> Code {
        self.code
    }

    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }

    pub fn plugin(&self) -> Option<&'static str> {
        self.plugin
    }

    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    pub fn is_skip(&self) -> bool {
        self.code == Code::Skip
    }

    /// Unschedulable or UnschedulableAndUnresolvable: the pod was turned down, nothing failed.
    pub fn is_rejected(&self) -> bool {
        matches!(self.code, Code::Unschedulable | Code::UnschedulableAndUnresolvable)
    }

    /// The reasons joined into one message, as upstream's `Status.Message()`.
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let cases = [
            ("success", Status::success(), true, false),
            ("unschedulable", Status::unschedulable("x"), false, true),
            ("unresolvable", Status::unresolvable("x"), false, true),
            ("error", Status::error("x"), false, false),
            ("skip", Status::skip(), false, false),
        ];
        for (name, s, success, rejected) in cases {
            assert_eq!((s.is_success(), s.is_rejected()), (success, rejected), "case {name}");
        }
    }

    #[test]
    fn message_joins_reasons() {
        let s = Status::new(Code::Unschedulable, ["Insufficient cpu", "Insufficient memory"]).with_plugin("Fit");
        assert_eq!(s.message(), "Insufficient cpu, Insufficient memory");
        assert_eq!(s.plugin(), Some("Fit"));
    }
}
