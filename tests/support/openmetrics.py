#!/usr/bin/env python3
"""Parses an OpenMetrics text exposition (tests only) with the Prometheus
project's own Python parser, prometheus_client.openmetrics.parser, which
refuses anything the format does not allow (a missing `# EOF`, a counter
sample without `_total`, a malformed label...).

Reads the exposition on stdin; prints one JSON object on stdout:

    {"families": {NAME: TYPE, ...},
     "samples": [{"name": ..., "labels": {...}, "value": ...}, ...]}

Exits non-zero with the parser's message when the text does not parse.
Run with the interpreter of the venv that has prometheus_client installed
(see ensure_venv in tests/in_cluster.rs).
"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read()
    families = {}
    samples = []
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        for s in family.samples:
            samples.append({"name": s.name, "labels": dict(s.labels), "value": s.value})
    json.dump({"families": families, "samples": samples}, sys.stdout)


if __name__ == "__main__":
    main()
