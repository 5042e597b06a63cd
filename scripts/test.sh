#!/usr/bin/env bash
# Sets up .venv/ and runs the whole test suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
