/**
 * The published `peel` command: one self-contained, tree-shaken bundle (`pnpm run bundle`, run by `prepack`).
 * Everything is inlined — `effect`, `@effect/platform-node`, the Peel packages, `yaml` — so the command loads
 * only the code it uses: `peel --help` peaks near 75 MB RSS instead of 180 MB from sources. The first-party
 * channel plugins are imported by the CLI itself (`src/plugins.ts`), so they land in the bundle (a chunk each,
 * loaded when a pipeline names it) and share its `effect`; a third-party plugin brings its own `effect`, and
 * core decodes its configuration with that copy. Everything the command runs is inside, so the package has
 * no `dependencies` (in package.json they are all `devDependencies`: the monorepo runs it from sources).
 */
export default {
  entry: ["src/bin.ts"],
  format: "esm",
  platform: "node",
  target: "node22",
  outDir: "dist",
  clean: true,
  dts: false,
  logLevel: "warn",
  deps: { alwaysBundle: [/.*/] },
  // Module source stays in memory as a string (for Function.prototype.toString): without comments it is a
  // third smaller, and in ASCII V8 keeps it at one byte a character instead of two (any "—" in a file makes
  // the whole file two-byte). `peel --help` 80 → 71 MB, `peel validate` 90 → 79 MB. Names are not mangled.
  outputOptions: { comments: false, charset: "ascii" },
}
