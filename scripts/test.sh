#!/usr/bin/env bash
# Set up, then run the test suite (default: everything not marked slow). Extra args go to pytest,
# e.g. `bash scripts/test.sh -m slow` for the exhaustive runs.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" = 5 ]; then
    echo "test.sh: pytest collected no tests - treating as failure" >&2
    exit 1
fi
exit "$rc"
