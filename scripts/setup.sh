#!/usr/bin/env bash
# Idempotent set-up: Python venv with the package and its extras, the pages' npm runtime
# (PyScript, Pyodide, chart and Markdown libraries), and with --browser Debian's Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.aipipe-installed
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test,notebooks]'
  echo "$want" > "$stamp"
fi

if [ -f web/package.json ]; then
  wstamp=web/node_modules/.aipipe-installed
  wwant=$(cat web/package.json web/package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
  if [ ! -f "$wstamp" ] || [ "$(cat "$wstamp")" != "$wwant" ]; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
    echo "$wwant" > "$wstamp"
  fi
fi

# Tests also need Debian's Chromium (browser tests), wrk (the benchmark's smoke test) and the
# PostgreSQL server (the scale-out tests start throwaway clusters with its initdb; the packaged
# cluster is not used).
if [ "${1:-}" = "--browser" ]; then
  missing=""
  [ -x /usr/bin/chromium ] || missing="$missing chromium"
  command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
  if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -q && $sudo apt-get install -y -q $missing
  fi
fi
