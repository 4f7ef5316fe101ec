#!/usr/bin/env bash
# Puts every pinned tool (helm, kwok, kwokctl, Prometheus, promtool, prometheus-adapter, etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl) into a versioned cache outside
# the checkout, and reuses what is already there. The cache key hashes versions.env and the go.mod
# files (go.sum follows from them), plus the source: built and downloaded binaries never share a
# directory. Safe to re-run; a tool whose binary exists is skipped. The work is done by
# build_tools.py (Python standard library); it prints one line per tool, keeps Go's output in
# build.log next to bin/, and prints the bin directory on its last line.
#
#   TOOLS_CACHE   root of the cache (default: ~/.cache/gpu-inference/tools)
#   TOOLS         space-separated subset (default: all)
#   TOOLS_SOURCE  build (default): build everything from source with Go (the module proxy);
#                 release: download the official checksum-verified release binaries where the
#                 project publishes them (needs HTTPS to dl.k8s.io, get.helm.sh, github.com) and
#                 build the rest (kwok, kwokctl, prometheus-adapter)
#   TOOLS_URL_KUBERNETES, TOOLS_URL_HELM, TOOLS_URL_ETCD, TOOLS_URL_PROMETHEUS
#                 base URLs of the release downloads (a mirror); defaults are the official ones
#
#   hack/build-tools.sh --print-bin   prints the bin directory only (fast; the Makefile calls it)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools_src="$here/tools"

# Comments don't count: only the pins themselves decide whether tools are rebuilt.
key="$(cd "$tools_src" && find . -type f \( -name '*.env' -o -name 'go.mod' \) | LC_ALL=C sort \
  | while read -r f; do echo "== $f"; grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*//' -e '^[[:space:]]*$' "$f"; done \
  | sha256sum | cut -c1-12)"
source="${TOOLS_SOURCE:-build}"
case "$source" in
  build) dir="$key" ;;
  release) dir="$key-release" ;;
  *) echo "[tools] TOOLS_SOURCE=$source is not a source: use build (the default) or release" >&2; exit 2 ;;
esac
cache_root="${TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-inference/tools}"
bin="$cache_root/$dir/bin"
if [[ "${1:-}" == "--print-bin" ]]; then echo "$bin"; exit 0; fi
if [[ $# -gt 0 ]]; then echo "[tools] unknown argument $1: the only option is --print-bin" >&2; exit 2; fi

if ! command -v python3 >/dev/null 2>&1; then
  echo "[tools] python3 is not on PATH: install Python 3.11 (the project needs it anyway)" >&2
  exit 2
fi
exec python3 "$here/build_tools.py" --bin "$bin" --source "$source"
