#!/usr/bin/env python3
"""Unit tests of conformance_scoreboard.py: python3 hack/conformance_scoreboard_test.py"""

import os
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance_scoreboard as sb  # noqa: E402


def spec(texts, leaf, state, attempts=1, labels=("Conformance",), message=None, node="It"):
    report = {
        "ContainerHierarchyTexts": list(texts),
        "ContainerHierarchyLabels": [[]],
        "LeafNodeText": leaf,
        "LeafNodeLabels": list(labels),
        "LeafNodeType": node,
        "State": state,
        "NumAttempts": attempts,
    }
    if message is not None:
        report["Failure"] = {"Message": message}
    return report


class OutcomeTest(unittest.TestCase):
    def test_states(self):
        cases = [
            ("passed", "passed", 1, sb.PASSED),
            ("failed", "failed", 1, sb.FAILED),
            ("timed out counts as failed", "timedout", 1, sb.FAILED),
            ("panicked counts as failed", "panicked", 1, sb.FAILED),
            ("skipped at run time", "skipped", 1, sb.SKIPPED),
            ("left out by the filters", "skipped", 0, sb.NOT_RUN),
            ("interrupted has no verdict", "interrupted", 1, sb.NOT_RUN),
        ]
        for name, state, attempts, want in cases:
            with self.subTest(name):
                self.assertEqual(sb.outcome(spec(["[sig-x] A"], "b", state, attempts)), want)


class NamingTest(unittest.TestCase):
    def test_sig_of(self):
        cases = [
            ("from the container text", spec(["[sig-apps] Deployment"], "x", "passed"), "sig-apps"),
            ("from a label when the text has none", dict(spec(["Deployment"], "x", "passed"),
                                                       ContainerHierarchyLabels=[["sig-node"]]), "sig-node"),
            ("unknown", spec(["Deployment"], "x", "passed"), "sig-unknown"),
        ]
        for name, report, want in cases:
            with self.subTest(name):
                self.assertEqual(sb.sig_of(report), want)

    def test_first_line_skips_blank_lines_and_colour(self):
        self.assertEqual(sb.first_line("\n  \x1b[1mtimed out\x1b[0m waiting\nmore"), "timed out waiting")
        self.assertEqual(sb.first_line(""), "(no reason recorded)")


class ScoreTest(unittest.TestCase):
    def test_counts_only_conformance_and_lists_failures(self):
        suite = {"RunTime": 90_000_000_000, "SpecReports": [
            spec(["[sig-apps] Deployment"], "ok [Conformance]", "passed"),
            spec(["[sig-apps] Deployment"], "bad [Conformance]", "failed", message="boom\ndetails"),
            spec(["[sig-node] Pods"], "filtered [Conformance]", "skipped", attempts=0),
            spec(["[sig-node] Pods"], "not conformance", "failed", labels=(), message="ignored"),
            spec([], "", "failed", node="SynchronizedBeforeSuite", labels=(), message="no client"),
        ]}
        table, failures, suite_failures, wall_ns, interrupted = sb.score([suite])
        self.assertEqual(table["sig-apps"], {sb.PASSED: 1, sb.FAILED: 1, sb.SKIPPED: 0, sb.NOT_RUN: 0})
        self.assertEqual(table["sig-node"][sb.NOT_RUN], 1)
        self.assertEqual(failures, [("[sig-apps] Deployment bad [Conformance]", "boom")])
        self.assertEqual(suite_failures, [("SynchronizedBeforeSuite", "no client")])
        self.assertEqual(wall_ns, 90_000_000_000)
        self.assertEqual(interrupted, 0)
        text = sb.render(table, failures, suite_failures, wall_ns / 1e9, 441)
        self.assertIn("PASSED 1 of 441 conformance tests", text)
        self.assertIn("wall time 1m30s", text)


if __name__ == "__main__":
    unittest.main()
