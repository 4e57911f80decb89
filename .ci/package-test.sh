#!/usr/bin/env bash
# The out-of-monorepo test (issue 13): bundle every library package to JavaScript + .d.ts (tsdown), `pnpm pack`
# them (publishConfig points exports and bin at dist/), install the tarballs with plain npm into a fresh
# temporary project, and there run (a) the Promise API, (b) the Effect API, (c) the CLI through `npx peel`,
# (d) third-party plugins (Promise-style and Effect-style) — against the simulator, on Node 22 and Node 24,
# both taken from the `node` npm package. Needs only Node and npm (and the npm registry).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
node_versions=(${PEEL_PACKAGE_TEST_NODES:-22.23.3 24.21.0})
packages=(core gemini-wire openai-wire channel-google-ai-studio channel-vertex-ai channel-openrouter
  channel-openai-compatible channel-google-batch simulator observability testkit cli)

work=$(mktemp -d "${TMPDIR:-/tmp}/peel-package-test-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tarballs" "$work/app"

echo "== package test: bundle and pack ${#packages[@]} packages"
for package in "${packages[@]}"; do
  (
    cd "packages/$package"
    npx pnpm run --silent bundle >"$work/bundle-$package.log" 2>&1 || { cat "$work/bundle-$package.log"; exit 1; }
    npx pnpm pack --pack-destination "$work/tarballs" >/dev/null
    rm -rf dist # the monorepo runs from src/
  )
done

echo "== package test: npm install the tarballs into $work/app"
cp "$root"/.ci/package-test/* "$work/app/"
cd "$work/app"
printf '{ "name": "peel-package-test", "private": true, "type": "module" }\n' >package.json
npm install --no-audit --no-fund --loglevel=error "$work"/tarballs/*.tgz effect@4.1.0 >"$work/npm.log" 2>&1 ||
  { cat "$work/npm.log"; exit 1; }

for version in "${node_versions[@]}"; do
  echo "== package test: Node $version"
  on_node() { npm exec --yes --package="node@$version" -- "$@"; }
  on_node node --version
  on_node node promise.mjs
  on_node node effect.mjs
  on_node node plugins.mjs
  # (c) the CLI: validate without secrets, the catalog, then a run against `peel simulate`
  on_node peel validate --offline pipeline.yaml
  on_node peel models | grep -q "gemini-3.1-flash-image" || { echo "peel models lists no gemini-3.1-flash-image"; exit 1; }
  on_node peel simulate --port 0 >"$work/simulator.out" 2>&1 &
  simulator=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$work/simulator.out" && break; sleep 0.2; done
  url=$(sed -n 's/^simulator listening on \(http:[^ ]*\).*/\1/p' "$work/simulator.out")
  [ -n "$url" ] || { cat "$work/simulator.out"; kill "$simulator"; exit 1; }
  result=$(GEMINI_BASE_URL="$url" GEMINI_API_KEY=packaged-test-key-1234 \
    on_node peel run pipeline.yaml --prompt "a red fox" --out "$work/out-$version" --json)
  kill "$simulator" 2>/dev/null || true
  wait "$simulator" 2>/dev/null || true
  echo "$result" | grep -q '"ok":true' || { echo "peel run failed: $result"; exit 1; }
  echo "npx peel ok on Node $version"
done
echo "package test: ok (${node_versions[*]})"
