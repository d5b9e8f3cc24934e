# shellcheck shell=bash disable=SC2034  # variables used by the scripts that source this
# SPDX-License-Identifier: GPL-3.0-or-later
# Shared by the scripts in scripts/: source it, do not run it.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
VENV=$REPO/.venv
VENV_OLDEST=$REPO/.venv-oldest
PY=$VENV/bin/python
UML_RUN=$REPO/scripts/uml-run
HAS_TUNNELS=$REPO/scripts/has-tunnels

# Molecule scenarios live in the top-level molecule/ directory on purpose
# (not extensions/molecule/): say so, instead of relying on molecule's
# guess (which warns).
export MOLECULE_GLOB="molecule/*/molecule.yml"

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
    _B=$'\033[1m' _R=$'\033[31m' _G=$'\033[32m' _Y=$'\033[33m' _N=$'\033[0m'
else
    _B='' _R='' _G='' _Y='' _N=''
fi
info() { printf '%s==>%s %s\n' "$_B" "$_N" "$*"; }
warn() { printf '%swarning:%s %s\n' "$_Y" "$_N" "$*" >&2; }
fatal() { printf '%serror:%s %s\n' "$_R" "$_N" "$*" >&2; exit 1; }

# Print a directory D such that D/ansible_collections/linuxnet/tunnels is this
# checkout (creating it), for ANSIBLE_COLLECTIONS_PATH and PYTHONPATH.
collection_path() {
    "$PY" "$REPO/scripts/collection_path.py"
}

# Activate the dev virtualenv for this shell.
use_venv() {
    [ -x "$PY" ] || fatal "no virtualenv at $VENV: run scripts/setup (make setup)"
    export VIRTUAL_ENV=$VENV
    export PATH=$VENV/bin:$PATH
    unset PYTHONHOME
}

# Does the kernel we run on create ipip links?
have_tunnels() { "$HAS_TUNNELS"; }
