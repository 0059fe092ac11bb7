#!/usr/bin/env bash
# Installs the external commands the test suites need, from Debian packages.
# make test and .ci/run call it; it is a fast no-op when everything is on
# PATH, so calling it twice costs nothing.
#
# When a command is missing: as root, apt-get update (once) and apt-get
# install -y the packages that provide it. When not root, or apt fails:
#   - in CI (CI=true): print what is missing and how to install it, exit 1
#     (a missing dependency is a failure there, never a skip);
#   - otherwise: print the same as a warning and exit 0; the tests that need
#     the command then skip with a message naming this script.
#
# To add a dependency, add a "command:package" line to NEEDED (several
# commands may come from one package; the package is installed once), or
# "py:module:package" for a module Debian's /usr/bin/python3 must import.
set -euo pipefail

NEEDED=(
  "redis-server:redis-server"
  "redis-cli:redis-tools"
  # make test-js: the JS client's tests (node --test, Node 18+) and npm,
  # which installs their one test dependency (ws) into clients/js/node_modules.
  "node:nodejs"
  "npm:npm"
  # clients/js/e2e: wspush.js and the demo page in a real headless Chromium
  # (driven with chromedp).
  "chromium:chromium"
  # The permessage-deflate interop test (conformance/interop_test.go): a
  # "py:" entry is a module Debian's python3 must import.
  "py:websockets:python3-websockets"
)

missing_cmds=()
missing_pkgs=()
check() {
  missing_cmds=()
  missing_pkgs=()
  local entry cmd pkg p seen
  for entry in "${NEEDED[@]}"; do
    cmd=${entry%%:*}
    pkg=${entry#*:}
    if [ "$cmd" = py ]; then
      cmd=${pkg%%:*} # the module
      pkg=${pkg#*:}
      if /usr/bin/python3 -c "import $cmd" >/dev/null 2>&1; then
        continue
      fi
      cmd="python3 module $cmd"
    elif command -v "$cmd" >/dev/null 2>&1; then
      continue
    fi
    missing_cmds+=("$cmd")
    seen=0
    for p in "${missing_pkgs[@]+"${missing_pkgs[@]}"}"; do
      if [ "$p" = "$pkg" ]; then seen=1; fi
    done
    if [ "$seen" = 0 ]; then missing_pkgs+=("$pkg"); fi
  done
}

check
if [ "${#missing_cmds[@]}" -eq 0 ]; then
  exit 0
fi

in_ci() { [ "${CI:-}" = "true" ]; }

give_up() { # $1: why
  local level=warning
  if in_ci; then level=error; fi
  {
    echo "deps.sh: $level: missing test dependencies: ${missing_cmds[*]} ($1)"
    echo "deps.sh: install them with:"
    echo "    sudo apt-get update && sudo apt-get install -y ${missing_pkgs[*]}"
    echo "deps.sh: or run scripts/deps.sh (or make test) as root."
    if in_ci; then
      echo "deps.sh: CI=true: a missing dependency is a failure, not a skip."
    else
      echo "deps.sh: the tests that need them will be skipped."
    fi
  } >&2
  if in_ci; then exit 1; fi
  exit 0
}

if [ "$(id -u)" != 0 ]; then
  give_up "not root, cannot install"
fi
if ! command -v apt-get >/dev/null 2>&1; then
  give_up "apt-get not found"
fi

installing="${missing_pkgs[*]}"
echo "deps.sh: installing $installing (for ${missing_cmds[*]})" >&2
# The tests start their own servers: keep the packages' maintainer scripts
# from starting a system service (e.g. redis on :6379) during the install.
# Docker images usually have this policy already; add it only for the
# install and only when there is none.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  trap 'rm -f "$policy"' EXIT
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -q; then
  give_up "apt-get update failed"
fi
if ! apt-get install -y -q --no-install-recommends "${missing_pkgs[@]}"; then
  give_up "apt-get install ${missing_pkgs[*]} failed"
fi

check
if [ "${#missing_cmds[@]}" -ne 0 ]; then
  give_up "still not on PATH after installing"
fi
echo "deps.sh: installed $installing" >&2
