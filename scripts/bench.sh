#!/usr/bin/env bash
# The benchmark (examples/bench/): builds the server and the benchmark in
# release mode, makes sure Garage is installed (scripts/s3-servers.sh), and
# runs every workload against a Garage of its own on loopback (or the server
# named by S3FTP_TEST_S3_ENDPOINT and its key variables). Arguments go to the
# benchmark: --quick for a short run, --big-mib 4096 to add a 4 GiB upload,
# --only W1,W3 for some workloads, --help for the rest. Prints a table, then
# name=value lines; save them to compare runs:
#   scripts/bench.sh | tee bench-$(date +%F).txt
# Needs about 3 GiB free in the temporary directory (Garage's data).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/s3-servers.sh
source scripts/s3-servers.sh
s3ftp_install_s3_servers >&2

cargo build --release --locked --bin s3ftp --example bench >&2
exec target/release/examples/bench "$@"
