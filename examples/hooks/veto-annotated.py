#!/usr/bin/env python3
"""A beforeDelete hook that keeps (vetoes) every object carrying an annotation.

Usage in a policy file: beforeDelete: [./hooks/veto-annotated.py, ANNOTATION]
(ANNOTATION defaults to crucible-clean/hold). The object's JSON arrives on
stdin. An annotated object is kept: the hook exits 1 and its first line on
stderr becomes the report's reason ("kept by hook: ..."). Any other object
may go (exit 0).
"""
import json
import sys

key = sys.argv[1] if len(sys.argv) > 1 else "crucible-clean/hold"
obj = json.load(sys.stdin)
meta = obj.get("metadata") or {}
annotations = meta.get("annotations") or {}
if key in annotations:
    print(f"{key}={annotations[key]!r} on {obj.get('kind')}/{meta.get('name')}", file=sys.stderr)
    sys.exit(1)
sys.exit(0)
