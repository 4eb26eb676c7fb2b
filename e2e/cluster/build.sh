#!/usr/bin/env bash
# Builds the pinned test control plane from Go modules into a cache outside the
# repository, keyed by version, so only the first build is slow.
#   kube-apiserver, kube-controller-manager, kube-scheduler  (k8s.io/kubernetes)
#   etcd (go.etcd.io/etcd/server/v3), kwok (sigs.k8s.io/kwok), helm (helm.sh/helm/v3)
# Usage: build.sh [component...]   (default: all). Prints the binary directory.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/versions.env"
cache="${FINETUNE_CACHE_DIR:-$HOME/.cache/finetune-operator}"
bin="$cache/bin"
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

build() { # name dir package ldflags
  local name=$1 dir=$2 pkg=$3 ldflags=$4 out="$bin/$1-$5"
  if [[ -x "$out" ]]; then return 0; fi
  local start=$SECONDS
  echo "building $name $5 (first build only; cached in $bin)" >&2
  (cd "$here/build/$dir" && go build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
  echo "built $name in $((SECONDS - start))s" >&2
}

minor=$(cut -d. -f2 <<<"$KUBE_VERSION")
kv="-X k8s.io/component-base/version.gitVersion=v$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
want=("$@"); [[ ${#want[@]} -eq 0 ]] && want=(etcd kwok kube-apiserver kube-controller-manager kube-scheduler helm)
for c in "${want[@]}"; do
  case $c in
    kube-apiserver|kube-controller-manager|kube-scheduler)
      build "$c" kube "k8s.io/kubernetes/cmd/$c" "$kv -X k8s.io/component-base/version.gitTreeState=clean" "$KUBE_VERSION" ;;
    etcd) build etcd etcd . "" "$ETCD_VERSION" ;;
    kwok) build kwok kwok sigs.k8s.io/kwok/cmd/kwok "-X sigs.k8s.io/kwok/pkg/consts.Version=v$KWOK_VERSION" "$KWOK_VERSION" ;;
    helm) build helm helm helm.sh/helm/v3/cmd/helm "-X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" "$HELM_VERSION" ;;
    *) echo "unknown component $c" >&2; exit 2 ;;
  esac
done
echo "$bin"
