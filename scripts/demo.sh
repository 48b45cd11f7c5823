#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job end to end on a small built-in model:
# new checkpoint -> ONNX export -> ONNX Runtime -> parity report. Extra args go to `flurka-export demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. .venv/bin/activate
flurka-export demo -o "${FLURKA_DEMO_DIR:-flurka-demo}" --overwrite "$@"
