#!/usr/bin/env python3
"""Prints the scoreboard of an e2e.test run from its Ginkgo JSON report.

    hack/conformance_scoreboard.py REPORT.json [--expected 441] [--wall-seconds N]

Per SIG: conformance tests passed, failed, skipped (skipped while running, e.g. by e2eskipper) and not run
(left out by the focus/skip/label filter); then the total passed out of the expected conformance count,
the wall time, and each failure with its test name and the first line of its reason. Suite-level failures
(BeforeSuite and the like) are listed too: when one fails, no test runs.

Exit status: 0 when nothing failed, 1 when something failed, 2 when the report cannot be read.
"""

import argparse
import json
import re
import sys
from collections import defaultdict

SIG_RE = re.compile(r"\[(sig-[a-z0-9-]+)\]")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
PASSED, FAILED, SKIPPED, NOT_RUN = "passed", "failed", "skipped", "not run"
COLUMNS = (PASSED, FAILED, SKIPPED, NOT_RUN)


def full_name(spec):
    """The name Ginkgo prints: container texts and the leaf text, space-separated."""
    return " ".join([*(spec.get("ContainerHierarchyTexts") or []), spec.get("LeafNodeText") or ""]).strip()


def labels(spec):
    found = set(spec.get("LeafNodeLabels") or [])
    for level in spec.get("ContainerHierarchyLabels") or []:
        found.update(level or [])
    return found


def is_conformance(spec):
    return "Conformance" in labels(spec) or "[Conformance]" in full_name(spec)


def sig_of(spec):
    match = SIG_RE.search(full_name(spec))
    if match:
        return match.group(1)
    sigs = sorted(label for label in labels(spec) if label.startswith("sig-"))
    return sigs[0] if sigs else "sig-unknown"


def outcome(spec):
    """Maps a spec's Ginkgo state to a scoreboard column.

    A spec left out by the filters is reported "skipped" without ever being attempted; one skipped at run
    time (e.g. "Only supported for providers [gce]") has at least one attempt. An interrupted spec did not
    run to a verdict either. Every other state that is not a pass (failed, panicked, timedout, aborted) is
    a failure.
    """
    state = spec.get("State", "")
    if state == "passed":
        return PASSED
    if state == "interrupted":
        # Stopped from outside (SIGTERM, --timeout): it did not run to a verdict.
        return NOT_RUN
    if state in ("skipped", "pending"):
        return SKIPPED if spec.get("NumAttempts", 0) > 0 else NOT_RUN
    return FAILED


def first_line(text):
    for line in ANSI_RE.sub("", text or "").splitlines():
        if line.strip():
            return line.strip()
    return "(no reason recorded)"


def reason(spec):
    failure = spec.get("Failure") or {}
    return first_line(failure.get("Message") or failure.get("ForwardedPanic") or spec.get("State", ""))


def score(reports):
    """Returns (table, failures, suite_failures, wall_ns, interrupted) from the report's suites."""
    table = defaultdict(lambda: dict.fromkeys(COLUMNS, 0))
    failures, suite_failures, wall_ns = [], [], 0
    interrupted = 0
    for suite in reports:
        wall_ns += suite.get("RunTime") or 0
        for spec in suite.get("SpecReports") or []:
            if spec.get("LeafNodeType") != "It":
                if spec.get("State") not in ("passed", "skipped", None, ""):
                    suite_failures.append((spec.get("LeafNodeType", "suite node"), reason(spec)))
                continue
            if not is_conformance(spec):
                continue
            column = outcome(spec)
            table[sig_of(spec)][column] += 1
            interrupted += spec.get("State") == "interrupted"
            if column == FAILED:
                failures.append((full_name(spec), reason(spec)))
    return table, failures, suite_failures, wall_ns, interrupted


def duration(seconds):
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def render(table, failures, suite_failures, wall_seconds, expected, interrupted=0):
    out = []
    header = f"{'SIG':<24}" + "".join(f"{c:>9}" for c in COLUMNS)
    out.append(header)
    out.append("-" * len(header))
    totals = dict.fromkeys(COLUMNS, 0)
    for sig in sorted(table):
        row = table[sig]
        out.append(f"{sig:<24}" + "".join(f"{row[c]:>9}" for c in COLUMNS))
        for c in COLUMNS:
            totals[c] += row[c]
    out.append("-" * len(header))
    out.append(f"{'total':<24}" + "".join(f"{totals[c]:>9}" for c in COLUMNS))
    seen = sum(totals.values())
    ran = totals[PASSED] + totals[FAILED] + totals[SKIPPED]
    out.append("")
    out.append(
        f"PASSED {totals[PASSED]} of {expected} conformance tests "
        f"({ran} run to a verdict: {totals[PASSED]} passed, {totals[FAILED]} failed, {totals[SKIPPED]} skipped; "
        f"{seen} conformance tests in the report); wall time {duration(wall_seconds)}"
    )
    if interrupted:
        out.append(f"INTERRUPTED: {interrupted} tests were stopped before a verdict (counted as not run)")
    if suite_failures:
        out.append("")
        out.append(f"SUITE FAILURES ({len(suite_failures)}): no test runs after these")
        for node, why in suite_failures:
            out.append(f"  {node}: {why}")
    if failures:
        out.append("")
        out.append(f"FAILURES ({len(failures)}):")
        for name, why in failures:
            out.append(f"  {name}")
            out.append(f"      {why}")
    return "\n".join(out)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="Ginkgo JSON report (--ginkgo.json-report)")
    parser.add_argument("--expected", type=int, default=441, help="conformance tests in this release")
    parser.add_argument("--wall-seconds", type=float, help="wall time to print (default: the suite's)")
    args = parser.parse_args(argv)
    try:
        with open(args.report, encoding="utf-8") as f:
            reports = json.load(f)
    except (OSError, ValueError) as err:
        print(f"failed to read the report {args.report}: {err}", file=sys.stderr)
        return 2
    if not isinstance(reports, list):
        print(f"failed to read the report {args.report}: not a list of suite reports", file=sys.stderr)
        return 2
    table, failures, suite_failures, wall_ns, interrupted = score(reports)
    wall = args.wall_seconds if args.wall_seconds is not None else wall_ns / 1e9
    print(render(table, failures, suite_failures, wall, args.expected, interrupted))
    return 1 if failures or suite_failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
