#!/usr/bin/env bash
# Offline checks of the Terraform module in terraform/, with no AWS account
# (CI runs it; so can anyone, from any directory):
#
#  1. python-hcl2 parses every .tf and .tftest.hcl file under terraform/ (a
#     file that does not parse is named), and the module is checked against its documentation:
#     every variable and output has a description and appears in the inputs or
#     outputs table of terraform/README.md (and the tables list nothing else);
#     every S3FTP_* name the module uses is a real server variable (the table
#     in the repository's README.md); the task definition sets the variables a
#     deployment behind the load balancer needs; every module call in
#     terraform/examples passes only variables the module has, and all of its
#     required ones; every `checkov:skip=` comment gives a reason.
#  2. checkov on terraform/ (external module download off, no platform API
#     calls, no version check): any failed check fails the script. A check that
#     cannot be met is suppressed in the code with
#     `# checkov:skip=CKV_...:reason`.
#  3. When terraform is on PATH: `terraform fmt -check`; then, if `terraform
#     init` can install the AWS provider (from S3FTP_TF_PLUGIN_DIR, default
#     /opt/tf-plugins, or the registry), `terraform validate` of the module
#     and of each example, and `terraform test` (terraform/tests: plan and
#     apply against a mocked AWS provider, no account needed). Without the
#     provider those two are skipped with a message, not failed.
#
# python-hcl2 and checkov are pinned and installed once into a venv at
# ${S3FTP_TOOLS_DIR:-$HOME/.cache/s3ftp-tools}/tf-venv (about a minute; needs
# python3 with venv and PyPI). checkov depends on bc-python-hcl2, a fork that
# is also imported as `hcl2`, so python-hcl2 goes into its own directory
# (tf-venv/python-hcl2) that only step 1 puts on PYTHONPATH.
#
# Nothing here reads stdin. Exit status 0 only when every step passed.

set -euo pipefail

CHECKOV_VERSION=3.3.30
PYTHON_HCL2_VERSION=8.1.4

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tf_dir="$root/terraform"
tools="${S3FTP_TOOLS_DIR:-$HOME/.cache/s3ftp-tools}"
venv="$tools/tf-venv"
hcl2_dir="$venv/python-hcl2"

[[ -d "$tf_dir" ]] || {
    echo "check-terraform: $tf_dir not found" >&2
    exit 1
}

# --- Tools ----------------------------------------------------------------------

# True when $1 (a python) sees distribution $2 at version $3 (with PYTHONPATH as set).
dist_is() {
    "$1" - "$2" "$3" 2>/dev/null <<'PY'
import importlib.metadata as m, sys
sys.exit(0 if m.version(sys.argv[1]) == sys.argv[2] else 1)
PY
}

checkov_ok() {
    [[ -x "$venv/bin/python" && -x "$venv/bin/checkov" ]] &&
        dist_is "$venv/bin/python" checkov "$CHECKOV_VERSION"
}

hcl2_ok() {
    [[ -x "$venv/bin/python" && -d "$hcl2_dir" ]] &&
        PYTHONPATH="$hcl2_dir" dist_is "$venv/bin/python" python-hcl2 "$PYTHON_HCL2_VERSION"
}

pip_install() {
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" </dev/null >&2
}

if ! checkov_ok || ! hcl2_ok; then
    echo "installing checkov $CHECKOV_VERSION and python-hcl2 $PYTHON_HCL2_VERSION into $venv (once)" >&2
    command -v python3 >/dev/null 2>&1 || {
        echo "check-terraform: python3 is needed" >&2
        exit 1
    }
    if ! checkov_ok; then
        mkdir -p "$tools"
        rm -rf "$venv"
        python3 -m venv "$venv" </dev/null >&2 || {
            echo "check-terraform: python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2
            exit 1
        }
        pip_install "checkov==$CHECKOV_VERSION" || {
            echo "check-terraform: pip install checkov==$CHECKOV_VERSION failed" >&2
            exit 1
        }
    fi
    rm -rf "$hcl2_dir"
    pip_install --target "$hcl2_dir" "python-hcl2==$PYTHON_HCL2_VERSION" || {
        echo "check-terraform: pip install python-hcl2==$PYTHON_HCL2_VERSION failed" >&2
        exit 1
    }
    checkov_ok && hcl2_ok || {
        echo "check-terraform: the tools do not work after installation (remove $venv and retry)" >&2
        exit 1
    }
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- 1. Parse and cross-check -----------------------------------------------------

echo "== python-hcl2 $PYTHON_HCL2_VERSION: parse and cross-check terraform/"
PYTHONPATH="$hcl2_dir" "$venv/bin/python" - "$root" <<'PY'
import pathlib, re, sys

import hcl2

root = pathlib.Path(sys.argv[1])
tf_dir = root / "terraform"
problems = []

# S3FTP_* variables the server knows: the rows of the configuration table in
# the repository's README.md ("| `S3FTP_LISTEN` | ... |").
known = set(re.findall(r"^\| `(S3FTP_[A-Z0-9_]+)`", (root / "README.md").read_text(), re.M))
if len(known) < 10:
    sys.exit(f"README.md: found only {len(known)} S3FTP_* rows in the variables table")


def unquote(s):
    return s[1:-1] if isinstance(s, str) and len(s) >= 2 and s[0] == s[-1] == '"' else s


def blocks(doc, kind):
    """(label, body) of every `kind "label" {}` block of a parsed file."""
    for item in doc.get(kind, []):
        for label, body in item.items():
            yield unquote(label), body


def strings(node):
    """Every key and string value in a parsed structure."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)
    elif isinstance(node, str):
        yield node


parsed = {}
for path in sorted([*tf_dir.rglob("*.tf"), *tf_dir.rglob("*.tftest.hcl")]):
    if ".terraform" in path.parts:
        continue
    rel = path.relative_to(root)
    try:
        with path.open() as f:
            parsed[path] = hcl2.load(f)
    except Exception as e:  # the parser's own error types vary by version
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        problems.append(f"{rel}: does not parse: {first_line}")
if not parsed:
    sys.exit("no .tf file under terraform/")

module_files = {p: d for p, d in parsed.items() if p.parent == tf_dir and p.suffix == ".tf"}

# Variables and outputs: described, and documented in terraform/README.md.
variables, outputs = {}, {}
for path, doc in module_files.items():
    for name, body in blocks(doc, "variable"):
        variables[name] = body
        if not str(unquote(body.get("description", ""))).strip():
            problems.append(f"terraform/{path.name}: variable {name} has no description")
    for name, body in blocks(doc, "output"):
        outputs[name] = body
        if not str(unquote(body.get("description", ""))).strip():
            problems.append(f"terraform/{path.name}: output {name} has no description")

readme = (tf_dir / "README.md").read_text()


def table_names(title):
    m = re.search(rf"^## {title}\s*$(.*?)(?=^## |\Z)", readme, re.M | re.S)
    if not m:
        problems.append(f"terraform/README.md: no '## {title}' section")
        return set()
    return set(re.findall(r"^\| `([a-z0-9_]+)`", m.group(1), re.M))


for title, declared in (("Inputs", variables), ("Outputs", outputs)):
    documented = table_names(title)
    for name in sorted(set(declared) - documented):
        problems.append(f"terraform/README.md: '{title}' does not list {name}")
    for name in sorted(documented - set(declared)):
        problems.append(f"terraform/README.md: '{title}' lists {name}, which the module does not declare")

# S3FTP_* names used anywhere in the module are real server variables.
used = {}
for path, doc in module_files.items():
    for s in strings(doc):
        for name in re.findall(r"\bS3FTP_[A-Z0-9_]*[A-Z0-9]", s):
            used.setdefault(name, path.name)
for name, file in sorted(used.items()):
    if name not in known:
        problems.append(f"terraform/{file}: {name} is not a server variable (not in README.md's table)")

# What a deployment behind the load balancer cannot do without.
ecs = module_files.get(tf_dir / "ecs.tf")
if ecs is None:
    problems.append("terraform/ecs.tf is missing")
else:
    set_in_ecs = {n for s in strings(ecs) for n in re.findall(r"\bS3FTP_[A-Z0-9_]*[A-Z0-9]", s)}
    for name in ("S3FTP_LISTEN", "S3FTP_PASV_PORTS", "S3FTP_PASV_ADDRESS", "S3FTP_MOUNTS", "S3FTP_USERS", "S3FTP_LOG_FORMAT"):
        if name not in set_in_ecs:
            problems.append(f"terraform/ecs.tf: the task definition does not set {name}")

# Module calls in the examples: known arguments, every required one given.
meta = {"source", "version", "providers", "count", "for_each", "depends_on", "__is_block__", "__comments__"}
required = {n for n, body in variables.items() if "default" not in body}
calls = 0
for path, doc in parsed.items():
    if path.parent == tf_dir or path.suffix != ".tf":
        continue
    for label, body in blocks(doc, "module"):
        if unquote(body.get("source")) is None:
            continue
        target = (path.parent / unquote(body["source"])).resolve()
        if target != tf_dir.resolve():
            continue
        calls += 1
        rel = path.relative_to(root)
        args = {k for k in body if k not in meta}
        for a in sorted(args - set(variables)):
            problems.append(f"{rel}: module {label} passes {a}, which the module does not declare")
        for r in sorted(required - args):
            problems.append(f"{rel}: module {label} does not pass the required variable {r}")
if calls == 0:
    problems.append("terraform/examples: no example calls the module (source pointing at terraform/)")

# Every checkov suppression says why.
skips = []
for path in sorted(tf_dir.rglob("*.tf")):
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = re.search(r"checkov:skip=([A-Z0-9_]+)(?::(.*))?", line)
        if m:
            where = f"{path.relative_to(root)}:{n}"
            reason = (m.group(2) or "").strip()
            skips.append(f"  suppressed {m.group(1)} at {where}: {reason}")
            if len(reason) < 20:
                problems.append(f"{where}: checkov:skip={m.group(1)} without a written reason")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(
    f"ok: {len(parsed)} files parsed; {len(variables)} variables and {len(outputs)} outputs documented; "
    f"{len(used)} S3FTP_* variables used, all known; {calls} example module call(s); "
    f"{len(skips)} checkov suppression(s), each with a reason:"
)
print("\n".join(skips))
PY

# --- 2. checkov ---------------------------------------------------------------------

echo "== checkov $CHECKOV_VERSION on terraform/"
# No Prisma Cloud API key is given, so nothing is fetched from the platform;
# --skip-download and BC_SKIP_MAPPING say so again, external modules are not
# downloaded, and CKV_SKIP_PACKAGE_UPDATE_CHECK stops the PyPI version check.
status=0
(
    cd "$root"
    CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE \
        "$venv/bin/checkov" --directory terraform --framework terraform \
        --skip-download --download-external-modules false \
        --quiet --compact \
        --output cli --output json --output-file-path "console,$work/checkov.json" </dev/null
) || status=$?

"$venv/bin/python" - "$work/checkov.json" "$status" <<'PY' || status=1
import json, sys

path, status = sys.argv[1], int(sys.argv[2])
try:
    with open(path) as f:
        data = json.load(f)
except (OSError, ValueError) as e:
    sys.exit(f"checkov wrote no readable report ({e}); exit status {status}")
reports = data if isinstance(data, list) else [data]
totals = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}
for r in reports:
    for k in totals:
        totals[k] += r.get("summary", {}).get(k, 0)
# (With --quiet the report lists failed checks only; the suppressions and
# their reasons are listed by step 1.)
print(
    "checkov summary: passed {passed}, failed {failed}, skipped {skipped}, "
    "parsing errors {parsing_errors}, resources {resource_count}".format(**totals)
)
bad = []
if totals["failed"]:
    bad.append(f"{totals['failed']} failed check(s)")
if totals["parsing_errors"]:
    bad.append(f"{totals['parsing_errors']} file(s) checkov could not parse")
if totals["resource_count"] == 0 or totals["passed"] == 0:
    bad.append("checkov scanned nothing")
if status != 0 and not bad:
    bad.append(f"checkov exited with status {status}")
if bad:
    sys.exit("checkov: " + "; ".join(bad))
PY
if ((status != 0)); then
    echo "check-terraform: checkov failed" >&2
    exit 1
fi

# --- 3. terraform: fmt, validate, test -----------------------------------------------

if ! command -v terraform >/dev/null 2>&1; then
    echo "(terraform not installed: fmt, validate and test skipped)"
    echo "check-terraform: all checks passed"
    exit 0
fi

export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
# A TF_CLI_CONFIG_FILE naming a missing file only makes every command warn.
if [[ -n "${TF_CLI_CONFIG_FILE:-}" && ! -e "$TF_CLI_CONFIG_FILE" ]]; then
    unset TF_CLI_CONFIG_FILE
fi

echo "== $(terraform version </dev/null | head -n 1): fmt -check"
terraform fmt -check -recursive -diff "$tf_dir" </dev/null || {
    echo "check-terraform: run terraform fmt -recursive terraform" >&2
    exit 1
}
echo "ok: formatted"

# validate and test need the AWS provider: from a local plugin directory
# (S3FTP_TF_PLUGIN_DIR, default /opt/tf-plugins, laid out like a filesystem
# mirror) or from the registry. Where neither works they are skipped, not
# failed. They run on a copy, so no .terraform directory or lock file is left
# in the repository.
copy="$work/terraform"
mkdir -p "$copy"
(cd "$tf_dir" && tar --exclude=.terraform --exclude=.terraform.lock.hcl -cf - .) | (cd "$copy" && tar -xf -)
plugin_dir="${S3FTP_TF_PLUGIN_DIR:-/opt/tf-plugins}"
init_args=(-backend=false -input=false -no-color)
if [[ -d "$plugin_dir/registry.terraform.io/hashicorp/aws" ]]; then
    init_args+=("-plugin-dir=$plugin_dir")
fi

tf_init() {
    timeout 300 terraform -chdir="$1" init "${init_args[@]}" </dev/null >"$work/init.log" 2>&1
}

if ! tf_init "$copy"; then
    echo "(terraform init cannot install the AWS provider here, so validate and test are skipped:"
    { grep -E -m 2 'Error|could not|Failed' "$work/init.log" || tail -n 2 "$work/init.log"; } | sed 's/^[│ ]*/   /'
    echo " set S3FTP_TF_PLUGIN_DIR to a provider mirror to run them)"
    echo "check-terraform: all checks passed"
    exit 0
fi

echo "== terraform validate"
terraform -chdir="$copy" validate -no-color </dev/null
while IFS= read -r example; do
    tf_init "$example" || {
        cat "$work/init.log" >&2
        echo "check-terraform: terraform init failed in ${example#"$copy"/}" >&2
        exit 1
    }
    printf '%s: ' "terraform/${example#"$copy"/}"
    terraform -chdir="$example" validate -no-color </dev/null
done < <(find "$copy/examples" -name '*.tf' -printf '%h\n' 2>/dev/null | sort -u)

echo "== terraform test (mocked AWS provider)"
terraform -chdir="$copy" test -no-color </dev/null || {
    echo "check-terraform: terraform test failed" >&2
    exit 1
}

echo "check-terraform: all checks passed"
