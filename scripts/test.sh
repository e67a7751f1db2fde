#!/usr/bin/env bash
# Runs the whole test suite. The real-client tests (tests/real_clients.rs)
# drive curl and python3, so they are installed first when missing.
# Extra arguments go to `cargo test --all-targets`, e.g. a test-name filter:
# scripts/test.sh curl (note `--test NAME` would not narrow --all-targets).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)

if ((${#missing[@]} > 0)); then
    echo "installing: ${missing[*]}" >&2
    if [[ $(id -u) -eq 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo -n)
    else
        echo "need root or sudo to install ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    ${sudo[@]+"${sudo[@]}"} apt-get update </dev/null
    ${sudo[@]+"${sudo[@]}"} apt-get install -y --no-install-recommends curl python3 </dev/null
fi

exec cargo test --all-targets "$@"
