#!/usr/bin/env bash
# Set up, then run the test suite (default: everything not marked slow). Extra args go to pytest,
# e.g. `bash scripts/test.sh -m slow` for the exhaustive runs.
# Two worker processes (pytest-xdist, --dist loadfile): each test file runs whole, in its order, in one worker (not
# loadgroup: with pytest 9.2 it silently stops grouping). `-n 0` after it runs everything in this process.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
.venv/bin/python -m pytest -n 2 --dist loadfile "$@"
rc=$?
if [ "$rc" = 5 ]; then
    echo "test.sh: pytest collected no tests - treating as failure" >&2
    exit 1
fi
exit "$rc"
