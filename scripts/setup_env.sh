#!/usr/bin/env bash
# Creates .venv/ (if missing) and installs PyTorch 2.13.0 (CPU build on this kind of machine) first, then this
# project with its test extra. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[test]"
