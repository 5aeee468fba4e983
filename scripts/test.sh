#!/usr/bin/env bash
# Install everything the tests need (LibreOffice and Chromium from Debian, baocao with its test extras in .venv),
# lint, run the tests, and check that the wheel works. This is the README's test command; .ci/run runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
APT_PACKAGES=()
if ! command -v soffice >/dev/null 2>&1 || ! /usr/bin/python3 -c "import uno" >/dev/null 2>&1; then
  APT_PACKAGES+=(libreoffice-calc-nogui python3-uno)
fi
# Debian's Chromium for the browser test (tests/test_browser.py drives it with Playwright); Playwright's own
# browser downloads are never used.
[ -x /usr/bin/chromium ] || APT_PACKAGES+=(chromium)
if [ "${#APT_PACKAGES[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # with their recommended packages (fonts, LibreOffice's Python bridge parts): as verified on a fresh machine
  $SUDO apt-get install -y -qq "${APT_PACKAGES[@]}" >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[test]"
.venv/bin/ruff check toolkit tests benchmarks scripts
.venv/bin/ruff format --check toolkit tests benchmarks scripts
.venv/bin/python -m pytest -q -p no:cacheprovider
bash scripts/check_wheel.sh
