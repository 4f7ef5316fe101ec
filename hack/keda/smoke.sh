#!/usr/bin/env bash
# End-to-end check of the KEDA build (not part of any test suite; needs `make tools` and
# hack/keda/build.sh first). Runs KEDA's operator and metrics API server as host processes
# against a throwaway kwokctl cluster, the way the local cluster runs prometheus-adapter:
#   metrics-api trigger (value 7 from a local HTTP server, targetValue 2) -> operator -> gRPC
#   (mTLS) -> metrics API server -> APIService (ExternalName 127.0.0.1) -> HPA -> replicas 4.
# Exits 0 when the Deployment reaches 4 replicas within 120 s. Stops everything it started.
# Ports used on 127.0.0.1: 18080-18082, 18090, 19666, 16443.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
S="$(mktemp -d /tmp/keda-smoke.XXXXXX)"
TOOLS="$("$here/../build-tools.sh" --print-bin)"
KB="$("$here/build.sh" --print-bin)"
KEDA_SRC="$(cd "$here" && go list -m -f '{{.Dir}}' github.com/kedacore/keda/v2)"
for b in "$TOOLS/kube-apiserver" "$TOOLS/kwokctl" "$TOOLS/kubectl" "$KB/keda-operator" "$KB/keda-adapter"; do
  [[ -x "$b" ]] || { echo "smoke.sh: $b is missing; run make tools and hack/keda/build.sh first" >&2; exit 2; }
done
export PATH=$TOOLS:$PATH
mkdir -p "$S/certs"
KC=$S/kubeconfig
export KWOK_WORKDIR=$S/kwok
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null; s=$(date +%s.%N)
    for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then echo "== pid $p still running 15s after SIGTERM; SIGKILL"; kill -9 "$p"; else echo "== pid $p exited $(echo "$(date +%s.%N) - $s" | bc) s after SIGTERM"; fi
  done
  kwokctl delete cluster --name keda-smoke --kubeconfig "$KC" >/dev/null 2>&1
  echo "== cleaned up (logs in $S)"
}
trap cleanup EXIT
t0=$SECONDS
ts() { echo "== [$((SECONDS - t0))s] $*"; }

ts "create cluster"
kwokctl create cluster --name keda-smoke --runtime binary --kubeconfig "$KC" --wait 120s --disable-qps-limits \
  --etcd-binary "$TOOLS/etcd" --kube-apiserver-binary "$TOOLS/kube-apiserver" \
  --kube-controller-manager-binary "$TOOLS/kube-controller-manager" --kube-scheduler-binary "$TOOLS/kube-scheduler" \
  --kwok-controller-binary "$TOOLS/kwok" \
  --extra-args kube-controller-manager=horizontal-pod-autoscaler-sync-period=5s \
  --extra-args kube-apiserver=bind-address=127.0.0.1 >"$S/kwokctl.log" 2>&1 || { tail -20 "$S/kwokctl.log"; exit 1; }
k() { kubectl --kubeconfig "$KC" "$@"; }

ts "certs"
cd "$S/certs"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=keda-smoke-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout tls.key -out tls.csr -subj /CN=keda 2>/dev/null
printf 'subjectAltName=DNS:keda-metrics-apiserver.keda.svc,DNS:keda-operator.keda.svc,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' > ext.cnf
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out tls.crt -days 2 -extfile ext.cnf 2>/dev/null
rm -f tls.csr ca.key ca.srl ext.cnf
cd - >/dev/null

ts "namespace + CRDs"
k create namespace keda >/dev/null
k apply --server-side -f "$KEDA_SRC/config/crd/bases/" 2>&1 | sed 's/^/   /'
k wait --for=condition=Established crd --all --timeout=60s >/dev/null

ts "start operator"
env WATCH_NAMESPACE= KEDA_CLUSTER_OBJECT_NAMESPACE=keda POD_NAMESPACE=keda \
  "$KB/keda-operator" --kubeconfig="$KC" --cert-dir="$S/certs" \
  --metrics-bind-address=127.0.0.1:18080 --health-probe-bind-address=127.0.0.1:18081 \
  --metrics-service-bind-address=127.0.0.1:19666 --zap-encoder=console >"$S/operator.log" 2>&1 &
pids+=($!)
ts "start adapter"
env WATCH_NAMESPACE= POD_NAMESPACE=keda \
  "$KB/keda-adapter" --kubeconfig="$KC" --lister-kubeconfig="$KC" --authentication-kubeconfig="$KC" \
  --authorization-kubeconfig="$KC" --secure-port=16443 --bind-address=127.0.0.1 --cert-dir="$S/certs" \
  --tls-cert-file="$S/certs/tls.crt" --tls-private-key-file="$S/certs/tls.key" \
  --metrics-service-address=127.0.0.1:19666 --port=18082 --zap-encoder=console >"$S/adapter.log" 2>&1 &
pids+=($!)

ts "metric source (value 7)"
mkdir -p "$S/www/api/v1" && echo '{"value": 7}' > "$S/www/api/v1/value"
python3 -m http.server 18090 --bind 127.0.0.1 --directory "$S/www" >"$S/http.log" 2>&1 &
pids+=($!)

ts "service + APIService"
CA=$(base64 -w0 "$S/certs/ca.crt")
k apply -f - <<EOF | sed 's/^/   /'
apiVersion: v1
kind: Service
metadata: {name: keda-metrics-apiserver, namespace: keda}
spec: {type: ExternalName, externalName: 127.0.0.1, ports: [{name: https, port: 16443}]}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.external.metrics.k8s.io}
spec:
  service: {name: keda-metrics-apiserver, namespace: keda, port: 16443}
  group: external.metrics.k8s.io
  version: v1beta1
  caBundle: $CA
  groupPriorityMinimum: 100
  versionPriority: 100
EOF

ts "workload + ScaledObject"
k apply -f - <<EOF | sed 's/^/   /'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: fake}]}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: smoke, namespace: default}
spec:
  scaleTargetRef: {name: web}
  minReplicaCount: 1
  maxReplicaCount: 10
  pollingInterval: 5
  triggers:
  - type: metrics-api
    metadata:
      url: "http://127.0.0.1:18090/api/v1/value"
      valueLocation: "value"
      targetValue: "2"
EOF

ok=0
for i in $(seq 1 60); do
  r=$(k get deploy web -o jsonpath='{.spec.replicas}' 2>/dev/null)
  if [[ "$r" == "4" ]]; then ok=1; break; fi
  sleep 2
done
ts "deployment replicas: $r (want 4) ok=$ok"
ts "APIService status:"; k get apiservice v1beta1.external.metrics.k8s.io -o jsonpath='{.status.conditions[0].status} {.status.conditions[0].reason} {.status.conditions[0].message}'; echo
ts "ScaledObject:"; k get scaledobject smoke -o wide 2>&1 | sed 's/^/   /'
ts "HPA:"; k get hpa -A -o wide 2>&1 | sed 's/^/   /'
metric=$(k get hpa keda-hpa-smoke -o jsonpath='{.spec.metrics[0].external.metric.name}' 2>/dev/null)
ts "external metric $metric via aggregator:"
k get --raw "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/$metric?labelSelector=scaledobject.keda.sh%2Fname%3Dsmoke" 2>&1 | head -c 600; echo
ts "process RSS (KiB): operator $(ps -o rss= -p "${pids[0]}") adapter $(ps -o rss= -p "${pids[1]}")"
ts "operator log tail"; grep -iE 'error|fail' "$S/operator.log" | head -10; tail -5 "$S/operator.log"
ts "adapter log tail"; grep -iE 'error|fail' "$S/adapter.log" | head -10; tail -5 "$S/adapter.log"
[[ $ok == 1 ]]
