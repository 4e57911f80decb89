#!/usr/bin/env bash
# The out-of-monorepo test (issue 13): `pnpm pack` every library package (its `prepack` script bundles it to
# JavaScript + .d.ts with tsdown; publishConfig points exports and bin at dist/), check that every path the
# packed package.json names (exports, bin, main, types) is a file inside the tarball, install the tarballs with plain npm into a fresh
# temporary project, and there run (a) the Promise API, (b) the Effect API, (c) the CLI through `npx peel`,
# (d) third-party plugins (Promise-style and Effect-style) — against the simulator, on Node 22 and Node 24,
# both taken from the `node` npm package. Needs only Node and npm (and the npm registry).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
node_versions=(${PEEL_PACKAGE_TEST_NODES:-22.23.3 24.21.0})
packages=(contract core gemini-wire openai-wire channel-google-ai-studio channel-vertex-ai channel-openrouter
  channel-openai-compatible channel-google-batch simulator observability testkit cli)

work=$(mktemp -d "${TMPDIR:-/tmp}/peel-package-test-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tarballs" "$work/app"

# Every path a packed package.json points at (exports, bin, main, types) must be a file in the tarball:
# a publish must never ship exports that point at a missing dist/.
check_tarball() {
  node - "$1" <<'CHECK'
const { execFileSync } = require("node:child_process")
const tarball = process.argv[2]
const listed = new Set(execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" }).split("\n").filter(Boolean))
const manifest = JSON.parse(execFileSync("tar", ["-xOzf", tarball, "package/package.json"], { encoding: "utf8" }))
const paths = []
const collect = (value) => {
  if (typeof value === "string") paths.push(value)
  else if (value !== null && typeof value === "object") for (const entry of Object.values(value)) collect(entry)
}
collect(manifest.exports)
collect(manifest.bin)
collect(manifest.main)
collect(manifest.types)
const missing = paths.filter((path) => !listed.has(`package/${path.replace(/^\.\//, "")}`))
if (paths.length === 0 || missing.length > 0) {
  console.error(`${tarball}: ${paths.length === 0 ? "no exports or bin" : `missing ${missing.join(", ")}`}`)
  process.exit(1)
}
console.log(`${manifest.name}: ${paths.length} exported path(s), all in the tarball`)
CHECK
}

echo "== package test: pack ${#packages[@]} packages (each bundles itself on prepack)"
for package in "${packages[@]}"; do
  (
    cd "packages/$package"
    rm -rf dist # pack must build what it ships: no dist/ left from an earlier bundle
    mkdir -p "$work/pack-$package"
    npx pnpm pack --pack-destination "$work/pack-$package" >"$work/pack-$package.log" 2>&1 ||
      { cat "$work/pack-$package.log"; exit 1; }
    rm -rf dist # the monorepo runs from src/
    check_tarball "$work/pack-$package"/*.tgz
    mv "$work/pack-$package"/*.tgz "$work/tarballs/"
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
  # with the secret set: the bundled CLI decodes a first-party channel's Redacted key with its own effect
  GEMINI_API_KEY=packaged-test-key-1234 GEMINI_BASE_URL=http://127.0.0.1:9 on_node peel validate pipeline.yaml
  on_node peel models | grep -q "gemini-3.1-flash-image" || { echo "peel models lists no gemini-3.1-flash-image"; exit 1; }
  # its own session, so stopping it stops npm's child node too (killing npm alone left the simulator running)
  setsid npm exec --yes --package="node@$version" -- peel simulate --port 0 >"$work/simulator.out" 2>&1 &
  simulator=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$work/simulator.out" && break; sleep 0.2; done
  url=$(sed -n 's/^simulator listening on \(http:[^ ]*\).*/\1/p' "$work/simulator.out")
  [ -n "$url" ] || { cat "$work/simulator.out"; kill -- -"$simulator"; exit 1; }
  result=$(GEMINI_BASE_URL="$url" GEMINI_API_KEY=packaged-test-key-1234 \
    on_node peel run pipeline.yaml --prompt "a red fox" --out "$work/out-$version" --json)
  kill -- -"$simulator" 2>/dev/null || true
  wait "$simulator" 2>/dev/null || true
  echo "$result" | grep -q '"ok":true' || { echo "peel run failed: $result"; exit 1; }
  echo "npx peel ok on Node $version"
done
echo "package test: ok (${node_versions[*]})"
