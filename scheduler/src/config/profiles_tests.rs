use super::*;
use crate::config::decode;

/// The profile resolved from a YAML fragment (a whole configuration with one profile).
fn resolve_yaml(profile_yaml: &str) -> Result<Profile, Vec<String>> {
    let text = format!("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n{profile_yaml}");
    let cfg = match decode(&text, "test") {
        Ok(c) => c,
        Err(e) => return Err(vec![e.to_string()]),
    };
    let first = cfg.profiles.first().cloned().unwrap_or_default();
    resolve(0, &first, None)
}

fn plugin<'a>(p: &'a Profile, name: &str) -> Option<&'a ResolvedPlugin> {
    p.plugins.iter().find(|e| e.name == name)
}

#[test]
fn resolves() {
    type Check = fn(&Profile) -> bool;
    let cases: [(&str, &str, Check); 7] = [
        ("defaults when plugins are absent", "- schedulerName: a\n", |p| *p == Profile::default_named("a")),
        (
            "score disabled keeps the filter",
            "- plugins:\n    score:\n      disabled:\n      - name: NodeResourcesFit\n",
            |p| plugin(p, "NodeResourcesFit").is_some_and(|e| e.points.contains(Point::Filter) && !e.points.contains(Point::Score)),
        ),
        (
            "score weight replaces the default",
            "- plugins:\n    score:\n      enabled:\n      - name: TaintToleration\n        weight: 7\n",
            |p| plugin(p, "TaintToleration").is_some_and(|e| e.weight == 7),
        ),
        (
            "multiPoint star disables everything, then re-enable a few",
            "- plugins:\n    multiPoint:\n      disabled:\n      - name: '*'\n      enabled:\n      - name: PrioritySort\n      - name: NodeName\n      - name: DefaultBinder\n",
            |p| {
                p.plugins.iter().filter(|e| !e.points.is_empty()).map(|e| e.name).collect::<Vec<_>>()
                    == ["PrioritySort", "NodeName", "DefaultBinder"]
            },
        ),
        (
            "a disabled plugin stays configured with no points",
            "- plugins:\n    multiPoint:\n      disabled:\n      - name: NodeResourcesBalancedAllocation\n",
            |p| plugin(p, "NodeResourcesBalancedAllocation").is_some_and(|e| e.points.is_empty()),
        ),
        (
            "plugin args are decoded",
            "- pluginConfig:\n  - name: NodeResourcesFit\n    args:\n      scoringStrategy:\n        type: MostAllocated\n",
            |p| plugin(p, "NodeResourcesFit").is_some_and(|e| matches!(e.args, Some(PluginArgs::NodeResourcesFit(_)))),
        ),
        (
            "profile percentage",
            "- percentageOfNodesToScore: 40\n",
            |p| p.percentage_of_nodes_to_score == Some(40),
        ),
    ];
    for (name, yaml, check) in cases {
        match resolve_yaml(yaml) {
            Ok(p) => assert!(check(&p), "case {name}: {p:?}"),
            Err(e) => panic!("case {name}: {e:?}"),
        }
    }
}

#[test]
fn rejects() {
    let cases = [
        (
            "unknown plugin with its index",
            "- plugins:\n    score:\n      enabled:\n      - name: NodeResourcesFit\n      - name: Foo\n",
            "profiles[0].plugins.score.enabled[1].name: unknown plugin \"Foo\"",
        ),
        (
            "plugin lacks the extension point",
            "- plugins:\n    filter:\n      enabled:\n      - name: NodeResourcesBalancedAllocation\n",
            "profiles[0].plugins.filter.enabled[0].name: plugin \"NodeResourcesBalancedAllocation\" does not implement the filter extension point",
        ),
        (
            "weight out of range",
            "- plugins:\n    score:\n      enabled:\n      - name: TaintToleration\n        weight: 101\n",
            "profiles[0].plugins.score.enabled[0].weight: invalid value 101",
        ),
        (
            "duplicate enabled",
            "- plugins:\n    multiPoint:\n      enabled:\n      - name: NodeName\n      - name: NodeName\n",
            "profiles[0].plugins.multiPoint.enabled[1].name: duplicate value \"NodeName\"",
        ),
        ("no binder left", "- plugins:\n    bind:\n      disabled:\n      - name: '*'\n", "profiles[0].plugins.bind: invalid value"),
        (
            "no queue sort left",
            "- plugins:\n    queueSort:\n      disabled:\n      - name: '*'\n",
            "profiles[0].plugins.queueSort: invalid value: no queue sort plugin is enabled",
        ),
        (
            "a plugin at a point it lacks",
            "- plugins:\n    reserve:\n      enabled:\n      - name: PrioritySort\n",
            "profiles[0].plugins.reserve.enabled[0].name: plugin \"PrioritySort\" does not implement the reserve extension point",
        ),
        (
            "bad args",
            "- pluginConfig:\n  - name: NodeResourcesFit\n    args:\n      scoringStrategy:\n        type: Packed\n",
            "profiles[0].pluginConfig[0].args.scoringStrategy.type: unsupported value \"Packed\"",
        ),
        (
            "args for an unknown plugin",
            "- pluginConfig:\n  - name: Foo\n    args: {}\n",
            "profiles[0].pluginConfig[0].name: unknown plugin \"Foo\"",
        ),
        ("percentage out of range", "- percentageOfNodesToScore: 101\n", "profiles[0].percentageOfNodesToScore: invalid value 101"),
        ("unknown field", "- plugin: {}\n", "unknown field `plugin`"),
    ];
    for (name, yaml, want) in cases {
        match resolve_yaml(yaml) {
            Ok(p) => panic!("case {name}: accepted {p:?}"),
            Err(errs) => assert!(errs.iter().any(|e| e.contains(want)), "case {name}: {errs:?}"),
        }
    }
}
