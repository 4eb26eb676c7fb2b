#!/usr/bin/env bash
# Reproduces the contents of the operator image (see Dockerfile) without a
# container engine, then smoke-tests them under Node 24 with production
# dependencies only:
#   1. build stage:   tsc -p tsconfig.build.json (relative .ts imports -> .js),
#                     + dist/trainer/launcher/*.py, minus source maps and generate-crd
#   2. deps stage:    npm ci --omit=dev --ignore-scripts (from package-lock.json),
#                     minus type declarations, source maps and @types
#   3. runtime:       /app = package.json + node_modules + dist, as the Dockerfile copies them
# Checks: every runtime module imports (no dev dependency, no missing file); the
# launcher is readable the way the operator reads it; `node dist/main.js` against
# an unreachable API server serves /healthz 200, /readyz 503 and /metrics, and
# exits on SIGTERM, also with OTLP export on and the collector down; with
# FINETUNE_CHECK_CLUSTER=1 (and a test cluster running) it also syncs its caches
# against the real API server and turns ready.
# Prints the installed size (du) of the runtime tree.
#
# Usage: scripts/check-image.sh [--keep]   (--keep leaves the temp dir for inspection)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
keep=0; [[ "${1:-}" == "--keep" ]] && keep=1
tmp="$(mktemp -d "${TMPDIR:-/tmp}/finetune-image.XXXXXX")"
op_pid=""
cleanup() {
  if [[ -n "$op_pid" ]] && kill -0 "$op_pid" 2>/dev/null; then kill -KILL "$op_pid" 2>/dev/null || true; fi
  if (( keep )); then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
fail() { echo "check-image: FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

# Node 24, as in the image: the project's own node (npm's node@24 devDependency), else a system node >= 24.
node_bin=""
for candidate in "$root/node_modules/node/bin/node" "$(command -v node || true)"; do
  [[ -n "$candidate" && -x "$candidate" ]] || continue
  if (( $("$candidate" -p 'process.versions.node.split(".")[0]') >= 24 )); then node_bin="$candidate"; break; fi
done
[[ -n "$node_bin" ]] || fail "needs Node.js >= 24 (run npm ci first)"
echo "node: $("$node_bin" --version) ($node_bin)"
[[ -x "$root/node_modules/typescript/bin/tsc" ]] || fail "typescript is not installed (run npm ci first)"

app="$tmp/app"
mkdir -p "$app"

step "build stage: tsc -p tsconfig.build.json"
# The Dockerfile's build stage sees only what .dockerignore lets through: package files, tsconfigs, src/ minus tests.
mkdir -p "$tmp/build"
cp "$root/package.json" "$root/package-lock.json" "$root/tsconfig.json" "$root/tsconfig.build.json" "$tmp/build/"
(cd "$root" && tar --exclude='*.test.ts' --exclude='__pycache__' --exclude='testdata' --exclude='src/trainer/tests' -cf - src) | tar -xf - -C "$tmp/build"
ln -s "$root/node_modules" "$tmp/build/node_modules"
(cd "$tmp/build" && "$node_bin" node_modules/typescript/bin/tsc -p tsconfig.build.json) || fail "npm run build (tsc -p tsconfig.build.json) failed"
[[ -f "$tmp/build/src/trainer/launcher/launcher.py" ]] || fail "src/trainer/launcher/launcher.py is missing"
mkdir -p "$tmp/build/dist/trainer/launcher"
cp "$tmp/build/src/trainer/launcher/"*.py "$tmp/build/dist/trainer/launcher/"
find "$tmp/build/dist" -name '*.map' -delete
rm -f "$tmp/build/dist/api/generate-crd.js"
if grep -rlE "from ['\"][.]{1,2}/[^'\"]*[.]ts['\"]" "$tmp/build/dist" >/dev/null; then fail "dist/ still imports .ts files: $(grep -rlE "from ['\"][.]{1,2}/[^'\"]*[.]ts['\"]" "$tmp/build/dist" | head -3)"; fi

step "deps stage: npm ci --omit=dev --ignore-scripts"
cp "$root/package.json" "$root/package-lock.json" "$app/"
(cd "$app" && PATH="$(dirname "$node_bin"):$PATH" npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error) || fail "npm ci --omit=dev failed"
rm "$app/package-lock.json" # the runtime stage copies package.json and node_modules only
before_prune=$(du -sk "$app/node_modules" | cut -f1)
find "$app/node_modules" \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) -type f -delete
rm -rf "$app/node_modules/@types"
cp -R "$tmp/build/dist" "$app/dist"
for dev in typescript node; do
  [[ ! -e "$app/node_modules/$dev" ]] || fail "dev dependency $dev is in the runtime tree"
done

step "runtime: every module of dist/ imports with production dependencies only"
(cd "$app" && NODE_ENV=production "$node_bin" --input-type=module -e '
  import { readdirSync } from "node:fs";
  const files = readdirSync("dist", { recursive: true }).filter((f) => f.endsWith(".js")).sort();
  for (const f of files) await import(`./dist/${f}`);
  const { launcherSource } = await import("./dist/trainer/source.js");
  const src = launcherSource();
  if (!src["launcher.py"]?.includes("def main")) throw new Error("dist/trainer/launcher/launcher.py does not look like the launcher");
  const bytes = Object.values(src).reduce((n, text) => n + text.length, 0);
  console.log(`imported ${files.length} modules; launcher: ${Object.keys(src).length} Python modules, ${bytes} bytes`);
') || fail "a runtime module does not load"

# Runs the operator from $app as the image does (cwd /app, `node --no-opt --no-maglev dist/main.js`); waits for its "starting" log line.
start_operator() { # kubeconfig log extra-args...
  local kubeconfig=$1 log=$2; shift 2
  (cd "$app" && exec env -i PATH=/usr/bin:/bin HOME="$tmp" NODE_ENV=production KUBECONFIG="$kubeconfig" \
    POD_NAME=check-image POD_NAMESPACE=default FINETUNE_PORT=0 FINETUNE_BIND_ADDRESS=127.0.0.1 \
    "$node_bin" --no-opt --no-maglev dist/main.js "$@" >"$log" 2>&1) &
  op_pid=$!
  for _ in $(seq 1 100); do
    port="$(grep -o '"port":[0-9]*,[^}]*"msg":"starting"' "$log" 2>/dev/null | head -1 | sed 's/"port":\([0-9]*\).*/\1/')" || true
    [[ -n "$port" ]] && return 0
    kill -0 "$op_pid" 2>/dev/null || { cat "$log" >&2; fail "the operator exited before it started"; }
    sleep 0.1
  done
  cat "$log" >&2; fail "no \"starting\" log line within 10 s"
}
http_status() { "$node_bin" -e 'fetch(process.argv[1]).then((r) => console.log(r.status), () => console.log(0))' "$1"; }
stop_operator() { # log
  kill -TERM "$op_pid"
  for _ in $(seq 1 100); do kill -0 "$op_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$op_pid" 2>/dev/null; then cat "$1" >&2; fail "the operator did not exit within 10 s of SIGTERM"; fi
  wait "$op_pid" 2>/dev/null || true
  op_pid=""
}

step "runtime: node dist/main.js against an unreachable API server"
cat >"$tmp/bogus-kubeconfig" <<'KC'
apiVersion: v1
kind: Config
clusters: [{name: nowhere, cluster: {server: "https://127.0.0.1:9", insecure-skip-tls-verify: true}}]
users: [{name: nobody, user: {token: bogus}}]
contexts: [{name: nowhere, context: {cluster: nowhere, user: nobody}}]
current-context: nowhere
KC
start_operator "$tmp/bogus-kubeconfig" "$tmp/bogus.log" --leader-elect=false
sleep 1
[[ "$(http_status "http://127.0.0.1:$port/healthz")" == 200 ]] || fail "/healthz is not 200"
[[ "$(http_status "http://127.0.0.1:$port/readyz")" == 503 ]] || fail "/readyz must be 503 while the caches cannot sync"
[[ "$(http_status "http://127.0.0.1:$port/metrics")" == 200 ]] || fail "/metrics is not 200"
grep -q '"level":50' "$tmp/bogus.log" || grep -q '"level":40' "$tmp/bogus.log" || fail "no warning/error logged about the unreachable API server"
stop_operator "$tmp/bogus.log"
if grep -qv '^{' "$tmp/bogus.log"; then grep -v '^{' "$tmp/bogus.log" | head -5 >&2; fail "non-JSON output (a stack trace?) on stdout/stderr"; fi
echo "healthz 200, readyz 503, metrics 200, JSON logs only, exits on SIGTERM"

step "runtime: with an OTLP endpoint that is down (the SDK is loaded lazily, from dist/)"
start_operator "$tmp/bogus-kubeconfig" "$tmp/otlp.log" --leader-elect=false --otlp-endpoint=http://127.0.0.1:9
sleep 1
grep -q '"msg":"OTLP export enabled"' "$tmp/otlp.log" || { cat "$tmp/otlp.log" >&2; fail "no \"OTLP export enabled\" log line with --otlp-endpoint"; }
[[ "$(http_status "http://127.0.0.1:$port/healthz")" == 200 ]] || fail "/healthz is not 200 with OTLP export on"
[[ "$(http_status "http://127.0.0.1:$port/metrics")" == 200 ]] || fail "/metrics is not 200 with OTLP export on"
stop_operator "$tmp/otlp.log"
if grep -qv '^{' "$tmp/otlp.log"; then grep -v '^{' "$tmp/otlp.log" | head -5 >&2; fail "non-JSON output with OTLP export on"; fi
echo "OTLP SDK loads from dist/, healthz 200, metrics 200, exits on SIGTERM with the collector down"

if [[ "${FINETUNE_CHECK_CLUSTER:-0}" == 1 ]]; then
  step "runtime: against the local test cluster"
  kubeconfig="$(cd "$root" && npm run -s cluster:kubeconfig 2>/dev/null | head -1)"
  [[ -f "$kubeconfig" ]] || fail "no test cluster kubeconfig (npm run cluster:up)"
  start_operator "$kubeconfig" "$tmp/cluster.log" --leader-elect=false --namespace=default
  for _ in $(seq 1 100); do [[ "$(http_status "http://127.0.0.1:$port/readyz")" == 200 ]] && break; sleep 0.1; done
  [[ "$(http_status "http://127.0.0.1:$port/readyz")" == 200 ]] || { cat "$tmp/cluster.log" >&2; fail "/readyz did not turn 200 against the test cluster"; }
  grep -q '"msg":"caches synced"' "$tmp/cluster.log" || fail "no \"caches synced\" log line"
  stop_operator "$tmp/cluster.log"
  echo "caches synced, readyz 200"
fi

step "size"
mib() { du -sk "$1" | awk '{ printf "%.1f MiB", $1 / 1024 }'; }
packages=$("$node_bin" -p 'Object.keys(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).packages).length' "$app/node_modules/.package-lock.json")
echo "/app/node_modules  $(mib "$app/node_modules") ($packages packages; $(awk -v k="$before_prune" 'BEGIN { printf "%.1f MiB", k / 1024 }') before dropping type declarations and source maps)"
echo "/app/dist          $(mib "$app/dist")"
echo "/app total         $(mib "$app")   (added to the gcr.io/distroless/nodejs24-debian12 base layers)"
echo "check-image: OK"
