#!/usr/bin/env bash
# Makes sure the S3 servers the test suite starts on loopback are installed,
# installing what is missing, and exports where they are:
#
#   S3FTP_TEST_GARAGE_BIN  the `garage` binary (Garage 2.x, 2.5.0 when installed here)
#   S3FTP_TEST_MOTO_BIN    the `moto_server` executable of a moto>=5.2.5 venv
#
# Source it and call s3ftp_install_s3_servers (scripts/test.sh does), or run
# it to install and print the two variables. Nothing here reads stdin.
#
# Garage: reused from $S3FTP_TEST_GARAGE_BIN, PATH or ~/.cargo/bin if it is a
# 2.x; otherwise `cargo install garage@2.5.0 --locked` (about 10 minutes on two
# cores, once; needs a C compiler).
# moto: a venv at ${S3FTP_TOOLS_DIR:-$HOME/.cache/s3ftp-tools}/moto-venv,
# created once with `pip install 'moto[server]>=5.2.5'` (under a minute). A
# moto_server on PATH is not used: older moto answers CompleteMultipartUpload
# in a form aws-sdk-s3 rejects.
#
# Both are installed even when S3FTP_TEST_S3_ENDPOINT points the suite at an
# external server (MinIO): the multipart-rule tests always run against moto.

s3ftp_garage_ok() {
    local version
    [[ -n "$1" && -x "$1" ]] || return 1
    version="$("$1" --version 2>/dev/null </dev/null || true)"
    # "garage v2.5.0" (release builds) or "garage cargo:2.5.0 [...]".
    [[ "$version" =~ [^0-9.]2\.[0-9]+\.[0-9]+ ]]
}

s3ftp_moto_ok() {
    local venv_python
    venv_python="$(dirname "$1")/python"
    [[ -x "$1" && -x "$venv_python" ]] || return 1
    "$venv_python" -c '
import importlib.metadata as m, sys
v = tuple(int(x) for x in m.version("moto").split(".")[:3] if x.isdigit())
sys.exit(0 if v >= (5, 2, 5) else 1)
' </dev/null 2>/dev/null
}

s3ftp_install_s3_servers() {
    local garage_version=2.5.0
    local moto_spec='moto[server]>=5.2.5'
    local tools="${S3FTP_TOOLS_DIR:-$HOME/.cache/s3ftp-tools}"
    local cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"

    # --- Garage -----------------------------------------------------------
    local garage="" candidate
    for candidate in "${S3FTP_TEST_GARAGE_BIN:-}" "$(command -v garage 2>/dev/null || true)" \
        "$cargo_bin/garage"; do
        if s3ftp_garage_ok "$candidate"; then
            garage="$candidate"
            break
        fi
    done
    if [[ -z "$garage" ]]; then
        echo "Garage $garage_version not found: installing it with cargo install" \
            "(this takes about 10 minutes, once)" >&2
        # Its own temporary target dir, not a shared CARGO_TARGET_DIR; no debug
        # info, which only takes disk while it builds.
        env -u CARGO_TARGET_DIR CARGO_PROFILE_RELEASE_DEBUG=false cargo install "garage@$garage_version" --locked </dev/null >&2 || {
            echo "cargo install garage@$garage_version failed" >&2
            return 1
        }
        garage="$cargo_bin/garage"
        s3ftp_garage_ok "$garage" || {
            echo "$garage does not run after installation" >&2
            return 1
        }
    fi

    # --- moto -------------------------------------------------------------
    local venv="$tools/moto-venv"
    local moto="${S3FTP_TEST_MOTO_BIN:-}"
    if ! s3ftp_moto_ok "$moto"; then
        moto="$venv/bin/moto_server"
        if ! s3ftp_moto_ok "$moto"; then
            echo "installing moto server into $venv (under a minute, once)" >&2
            command -v python3 >/dev/null 2>&1 || {
                echo "python3 is needed for moto" >&2
                return 1
            }
            mkdir -p "$tools"
            rm -rf "$venv"
            python3 -m venv "$venv" </dev/null >&2 || {
                echo "python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2
                return 1
            }
            "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
                "$moto_spec" </dev/null >&2 || {
                echo "pip install '$moto_spec' failed" >&2
                return 1
            }
            s3ftp_moto_ok "$moto" || {
                echo "$moto does not work after installation" >&2
                return 1
            }
        fi
    fi

    export S3FTP_TEST_GARAGE_BIN="$garage"
    export S3FTP_TEST_MOTO_BIN="$moto"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    s3ftp_install_s3_servers
    echo "S3FTP_TEST_GARAGE_BIN=$S3FTP_TEST_GARAGE_BIN"
    echo "S3FTP_TEST_MOTO_BIN=$S3FTP_TEST_MOTO_BIN"
fi
