#!/usr/bin/env bash
# Builds Kubeflow Trainer's controller manager and the JobSet controller from their
# Go modules (module proxy) into the same cache as the test control plane, keyed by
# version, so only the first bench run against Kubeflow pays for the build.
#   trainer-controller-manager  (github.com/kubeflow/trainer/v2, ./cmd/trainer-controller-manager)
#   jobset-manager              (sigs.k8s.io/jobset, module root)
# Each builds inside a copy of its own module (from `go mod download`, its go.mod and go.sum,
# no replace directives), which is what their releases build. Not `go install pkg@version`:
# that also reads the module's version list (@v/list) for deprecations, which the proxy here
# refuses for sigs.k8s.io/jobset (403).
# Usage: build.sh TRAINER_VERSION JOBSET_VERSION. Prints the binary directory.
set -euo pipefail
trainer_version=${1:?trainer version}
jobset_version=${2:?jobset version}
cache="${FINETUNE_CACHE_DIR:-$HOME/.cache/finetune-operator}"
bin="$cache/bin"
mkdir -p "$bin"
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

build() { # name module version package-in-module
  local name=$1 module=$2 version=$3 pkg=$4 out="$bin/$1-$3"
  if [[ -x "$out" ]]; then return 0; fi
  local start=$SECONDS dir work
  echo "building $name $version (first build only; cached in $bin)" >&2
  dir=$(go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [[ -n "$dir" ]] || { echo "go mod download $module@$version gave no module directory" >&2; return 1; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  cp -r "$dir/." "$work/" && chmod -R u+w "$work"
  (cd "$work" && go build -mod=readonly -trimpath -ldflags "-s -w" -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
  echo "built $name in $((SECONDS - start))s" >&2
}

build kubeflow-trainer github.com/kubeflow/trainer/v2 "$trainer_version" ./cmd/trainer-controller-manager
build jobset sigs.k8s.io/jobset "$jobset_version" .
echo "$bin"
