// Builds hako serve's web UI into OUT_DIR (argument 1): app.js and app.css bundled by esbuild from src/main.ts
// (xterm.js, its stylesheet and noVNC included), index.html copied. Run by scripts/build-web.sh after `npm ci`.
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const out = process.argv[2];
if (!out) {
  console.error("usage: node build.mjs OUT_DIR");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: { app: "src/main.ts" },
  bundle: true,
  minify: true,
  sourcemap: false,
  format: "esm", // noVNC uses top-level await: the bundle is a module (index.html loads it as one)
  target: ["es2022"],
  outdir: out,
  logLevel: "warning",
});
copyFileSync("src/index.html", join(out, "index.html"));
