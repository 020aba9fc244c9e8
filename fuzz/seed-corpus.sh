#!/usr/bin/env bash
# Seeds the fuzz corpora from the repository's own inputs: every scenario file, and the
# Porcupine and simlab histories. The corpora (corpus/) are not committed; inputs that crashed
# or hung are, as regression tests under tests/fuzz-regressions/.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/scenario corpus/lincheck
cp ../scenarios/*.ron corpus/scenario/
cp ../tests/data/porcupine/jepsen/*.log ../tests/data/porcupine/kv/*.txt corpus/lincheck/
cp ../tests/fuzz-regressions/scenario/* corpus/scenario/ 2>/dev/null || true
cp ../tests/fuzz-regressions/lincheck/* corpus/lincheck/ 2>/dev/null || true
echo "corpus/scenario: $(ls corpus/scenario | wc -l) files; corpus/lincheck: $(ls corpus/lincheck | wc -l) files"
