#!/usr/bin/env bash
# Idempotent set-up: Python venv with the package and its extras (the client suite's SDKs too),
# the pages' npm runtime (PyScript, Pyodide, chart and Markdown libraries), the openai npm package
# and Claude Code for tests/clients, and with --browser Debian's Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.aipipe-installed
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test,notebooks,clients]'
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

# The client suite's Node side (tests/clients/node), from its lockfile: the openai npm package and
# Claude Code (@anthropic-ai/claude-code with its native binary, ~400 MB; it runs offline).
cstamp=tests/clients/node/node_modules/.aipipe-installed
cwant=$(cat tests/clients/node/package.json tests/clients/node/package-lock.json | sha256sum | cut -d' ' -f1)
if [ ! -f "$cstamp" ] || [ "$(cat "$cstamp")" != "$cwant" ]; then
  echo "setup: npm ci in tests/clients/node (the openai npm package and Claude Code for the client suite)"
  (cd tests/clients/node && npm ci --no-audit --no-fund --loglevel=error)
  echo "$cwant" > "$cstamp"
fi

# Tests also need Debian's Chromium (browser tests), wrk (the benchmark's smoke test), nginx
# (tests/test_deploy.py runs deploy/nginx in front of two relays; the package's own service is
# not needed and may stay stopped), the PostgreSQL server (the scale-out tests start
# throwaway clusters with its initdb; the packaged cluster is not used) and strace (the client
# suite checks that Claude Code connects to nothing but 127.0.0.1).
if [ "${1:-}" = "--browser" ]; then
  missing=""
  [ -x /usr/bin/chromium ] || missing="$missing chromium"
  command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
  [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing="$missing nginx"
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
  command -v strace >/dev/null 2>&1 || missing="$missing strace"
  if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -q && $sudo apt-get install -y -q $missing
  fi
fi
