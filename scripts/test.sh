#!/usr/bin/env bash
# Runs the whole test suite. The real-client tests (tests/real_clients.rs)
# drive curl, lftp, python3, busybox, ncftp and tnftp, and the LDAP tests
# run OpenLDAP's slapd, so they are installed first when missing. The S3
# tests start Garage and moto on loopback: scripts/s3-servers.sh installs them
# when missing (Garage with cargo install, about 10 minutes once; moto in a
# venv under ${S3FTP_TOOLS_DIR:-~/.cache/s3ftp-tools}) and exports
# S3FTP_TEST_GARAGE_BIN and S3FTP_TEST_MOTO_BIN. Set S3FTP_TEST_S3_ENDPOINT,
# S3FTP_TEST_S3_ACCESS_KEY and S3FTP_TEST_S3_SECRET_KEY (optionally
# S3FTP_TEST_S3_REGION, S3FTP_TEST_S3_BUCKET_PREFIX) to run the S3 suite
# against another server, such as MinIO from docker-compose.yml.
# Extra arguments go to `cargo test --all-targets` (and skip the Terraform
# check, scripts/check-terraform.sh), e.g. a test-name filter:
# scripts/test.sh curl (note `--test NAME` would not narrow --all-targets).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v lftp >/dev/null 2>&1 || missing+=(lftp)
# Legacy clients of tests/client_matrix.rs and tests/real_clients.rs: busybox, ncftp, and
# tnftp in active mode (as Windows ftp.exe works).
command -v busybox >/dev/null 2>&1 || missing+=(busybox)
command -v ncftpput >/dev/null 2>&1 || missing+=(ncftp)
command -v tnftp >/dev/null 2>&1 || missing+=(tnftp)
# OpenLDAP's slapd (tests/auth_ldap.rs starts its own on loopback ports).
[[ -x /usr/sbin/slapd ]] || command -v slapd >/dev/null 2>&1 || missing+=(slapd)
# HAProxy balances three replicas in tests/replicas.rs (PROXY protocol,
# health checks of /readyz, passive ranges forwarded per replica).
[[ -x /usr/sbin/haproxy ]] || command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
# promtool checks and unit-tests the alert rules in deploy/prometheus.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# Creating the moto venv needs venv and ensurepip (Debian ships them apart).
tools="${S3FTP_TOOLS_DIR:-$HOME/.cache/s3ftp-tools}"
if [[ ! -x "$tools/moto-venv/bin/moto_server" || ! -d "$tools/tf-venv" ]]; then
    python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
fi

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
    ${sudo[@]+"${sudo[@]}"} apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
fi

# shellcheck source=scripts/s3-servers.sh
source scripts/s3-servers.sh
s3ftp_install_s3_servers

# tests/k8s_manifests.rs renders deploy/k8s with kubectl's built-in kustomize
# (the machine image ships kubectl; Debian's archive has none) and scans it
# with the checkov that scripts/check-terraform.sh pins, in the same venv
# (installed here too, since that script is skipped when a test filter is
# given).
command -v kubectl >/dev/null 2>&1 || {
    echo "kubectl is needed by tests/k8s_manifests.rs (https://kubernetes.io/docs/tasks/tools/)" >&2
    exit 1
}
checkov_version=$(sed -n 's/^CHECKOV_VERSION=//p' scripts/check-terraform.sh)
if [[ "$("$tools/tf-venv/bin/checkov" --version 2>/dev/null)" != "$checkov_version" ]]; then
    echo "installing checkov $checkov_version into $tools/tf-venv (once)" >&2
    mkdir -p "$tools"
    python3 -m venv "$tools/tf-venv" </dev/null >&2
    "$tools/tf-venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "checkov==$checkov_version" </dev/null >&2
fi

# The Terraform module: parsed (python-hcl2), checked by checkov with zero
# failed checks, formatted, validated and its tests run when terraform and an
# offline AWS provider are available. Skipped when a test filter is given.
if (($# == 0)); then
    scripts/check-terraform.sh
fi

exec cargo test --all-targets "$@"
