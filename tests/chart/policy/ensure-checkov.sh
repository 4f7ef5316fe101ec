#!/usr/bin/env bash
# Installs the pinned checkov (policy scanner for the rendered chart) into its own virtual
# environment in the tool cache, outside the checkout, and prints the path of its binary.
# Its own venv because checkov pins boto3/packaging versions that clash with tooling/pyproject.toml.
# Safe to re-run: a complete install of the same version is reused; a partial one is redone.
#
#   TOOLS_CACHE   root of the tool cache (default: ~/.cache/gpu-inference/tools)
#   PYTHON        interpreter for the venv (default: python3.11, else python3)
set -euo pipefail

CHECKOV_VERSION=3.3.30
cache_root="${TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-inference/tools}"
venv="$cache_root/checkov-$CHECKOV_VERSION"

if [[ ! -f "$venv/.complete" ]]; then
  python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
  printf '[tools] checkov %s: installing into %s\n' "$CHECKOV_VERSION" "$venv" >&2
  start=$SECONDS
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" >&2
  touch "$venv/.complete"
  printf '[tools] checkov: installed in %ss\n' "$((SECONDS - start))" >&2
fi
echo "$venv/bin/checkov"
