#!/usr/bin/env bash
# Builds KEDA's operator (keda-operator) and metrics API server (keda-adapter) from the wrapper
# module in this folder, with the same settings as the other tools (CGO_ENABLED=0, -trimpath,
# stripped), into a cache outside the checkout keyed by this folder's go.mod. A binary that is
# already there is skipped. Prints the bin directory on its last line. Not part of the default
# tool set: KEDA is optional and its operator alone takes about 17 minutes on 2 busy cores.
# `make keda` runs this; `gpu-inference local up --autoscaler keda` runs what it built.
#
#   KEDA_CACHE   root of the cache (default: ~/.cache/gpu-inference/keda)
#
#   hack/keda/build.sh --print-bin   prints the bin directory only
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Version stamp for `keda-operator` logs; must match the require in go.mod.
version="v2.21.0"
if ! grep -q "github.com/kedacore/keda/v2 $version " "$here/go.mod"; then
  echo "hack/keda/build.sh: go.mod does not require github.com/kedacore/keda/v2 $version; update version= in this script" >&2
  exit 2
fi

# Comments don't count, as in build-tools.sh.
key="$(grep -v -e '^[[:space:]]*//' -e '^[[:space:]]*$' "$here/go.mod" | sha256sum | cut -c1-12)"
bin="${KEDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-inference/keda}/$key/bin"
if [[ "${1:-}" == "--print-bin" ]]; then echo "$bin"; exit 0; fi
mkdir -p "$bin"

export CGO_ENABLED=0
ldflags="-s -w -X github.com/kedacore/keda/v2/version.Version=${version#v} -X github.com/kedacore/keda/v2/version.GitCommit=$version"
for cmd in operator adapter; do
  name="keda-$cmd"
  if [[ -x "$bin/$name" ]]; then echo "[keda] $name: cached" >&2; continue; fi
  start=$SECONDS
  echo "[keda] $name: building github.com/kedacore/keda/v2/cmd/$cmd@$version" >&2
  (cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$bin/.$name.tmp" "github.com/kedacore/keda/v2/cmd/$cmd")
  mv "$bin/.$name.tmp" "$bin/$name"
  echo "[keda] $name: built in $((SECONDS - start))s" >&2
done
echo "$bin"
