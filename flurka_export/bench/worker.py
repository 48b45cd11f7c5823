"""One (kind, runtime) group in a fresh process: reads a JSON spec on stdin, prints one JSON result per line."""

from __future__ import annotations

import dataclasses
import json
import sys

from .measure import run_group
from .settings import BenchSettings


def main() -> int:
    spec = json.loads(sys.stdin.read())
    settings = BenchSettings(**spec["settings"])
    for r in run_group(settings, spec["kind"], spec["runtime"], spec["paths"]):
        print(json.dumps(dataclasses.asdict(r)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
