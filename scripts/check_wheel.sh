#!/usr/bin/env bash
# Build the wheel, install it in a fresh venv away from the source tree, and generate templates:
# proves that workbook_templates/, schemas/ and the example round ship inside the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python -m build --wheel --outdir "$work/dist" . >/dev/null
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$work"/dist/*.whl
cd "$work"
"$work/venv/bin/baocao" templates -o "$work/out" >/dev/null
count=$(ls "$work/out"/*.xlsx | wc -l)
if [ "$count" -ne 9 ]; then echo "wheel check: expected 9 templates, got $count"; exit 1; fi
echo "wheel check: 9 templates generated from the installed wheel"
"$work/venv/bin/baocao" demo "$work/demo" >/dev/null
test -s "$work/demo/tong-hop-bac-giang-2024.xlsx"
echo "wheel check: baocao demo ran from the installed wheel (shipped inbox found)"
