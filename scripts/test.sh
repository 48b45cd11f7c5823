#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite and the linter.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh dev
. .venv/bin/activate
ruff check flurka_export tests benchmarks examples scripts
python -m pytest -q -n "${PYTEST_WORKERS:-2}" "$@"
