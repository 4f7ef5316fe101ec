#!/usr/bin/env bash
# Builds every pinned tool with the Go toolchain into a versioned cache outside
# the checkout, and reuses what is already there. The cache key hashes
# versions.env and the go.mod files (go.sum follows from them). Safe to re-run; a tool whose
# binary exists is skipped. Prints the bin directory on its last line.
#
#   TOOLS_CACHE   root of the cache (default: ~/.cache/gpu-inference/tools)
#   TOOLS         space-separated subset to build (default: all)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools_src="$here/tools"
# shellcheck source=tools/versions.env
source "$tools_src/versions.env"

# Comments don't count: only the pins themselves decide whether tools are rebuilt.
key="$(cd "$tools_src" && find . -type f \( -name '*.env' -o -name 'go.mod' \) | sort \
  | while read -r f; do echo "== $f"; grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*//' -e '^[[:space:]]*$' "$f"; done \
  | sha256sum | cut -c1-12)"
cache_root="${TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-inference/tools}"
bin="$cache_root/$key/bin"
if [[ "${1:-}" == "--print-bin" ]]; then echo "$bin"; exit 0; fi
mkdir -p "$bin"

export CGO_ENABLED=0
all="helm kwok kwokctl prometheus promtool prometheus-adapter etcd kube-apiserver kube-controller-manager kube-scheduler kubectl"
wanted="${TOOLS:-$all}"

log() { printf '[tools] %s\n' "$*" >&2; }

# build NAME DIR PKG [go build args...]: DIR is the module to build in ("" = GOPATH mode via go install)
build() {
  local name="$1" dir="$2" pkg="$3"; shift 3
  case " $wanted " in *" $name "*) ;; *) return 0 ;; esac
  if [[ -x "$bin/$name" ]]; then log "$name: cached"; return 0; fi
  local start=$SECONDS tmp="$bin/.$name.tmp"
  log "$name: building $pkg"
  if [[ -z "$dir" ]]; then
    local gobin; gobin="$(mktemp -d)"
    GOBIN="$gobin" go install -trimpath "$@" "$pkg"
    mv "$gobin"/* "$tmp"; rmdir "$gobin"
  else
    (cd "$dir" && go build -trimpath -o "$tmp" "$@" "$pkg")
  fi
  mv "$tmp" "$bin/$name"
  log "$name: built in $((SECONDS - start))s"
}

k8s_ldflags() {
  local v="$1" major minor
  major="${v#v}"; major="${major%%.*}"
  minor="${v#v*.}"; minor="${minor%%.*}"
  local f=""
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  echo "-s -w$f"
}

# Like helm's own Makefile: the default Kubernetes version for `helm template` and lint
# follows the client-go it is built with (v0.37 for helm v3.22); without it helm says v1.20.
helm_kube="-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37"
helm_kube+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37"
build helm "" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION $helm_kube"
build kwok "" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" \
  -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
build kwokctl "" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION" \
  -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
# Only Kubernetes service discovery is compiled in (Prometheus' own build tags): the other
# discovery plugins pull in every cloud SDK and triple the build time.
prom_tags="remove_all_sd,enable_kubernetes_sd"
prom_ldflags="-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_RELEASE"
build prometheus "" "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" -tags "$prom_tags" -ldflags "$prom_ldflags"
build promtool "" "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION" -tags "$prom_tags" -ldflags "$prom_ldflags"
build prometheus-adapter "$tools_src/prometheus-adapter" sigs.k8s.io/prometheus-adapter/cmd/adapter -ldflags "-s -w"
build etcd "$tools_src/etcd" go.etcd.io/etcd/server/v3 -ldflags "-s -w"
k8s_flags="$(k8s_ldflags "$KUBERNETES_VERSION")"
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  build "$c" "$tools_src/kubernetes" "k8s.io/kubernetes/cmd/$c" -tags selinux,notest -ldflags "$k8s_flags"
done

echo "$bin"
