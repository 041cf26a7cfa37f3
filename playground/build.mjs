// Builds the page's script and style sheet into engine/playground/static/ (next to the hand-written index.html;
// committed, so users need no Node.js). Run: npm ci && npm run build
// static/sources.sha256 records the sources built from: tests/playground/test_workspaces.py fails when a source
// changed without a build.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";

const out = new URL("../engine/playground/static/", import.meta.url).pathname;
mkdirSync(out, { recursive: true });
await build({ entryPoints: ["src/main.js"], bundle: true, minify: true, format: "iife", target: "es2020",
  outfile: `${out}playground.js`, legalComments: "linked", logLevel: "info" });
await build({ entryPoints: ["src/style.css"], bundle: true, minify: true, outfile: `${out}playground.css`,
  logLevel: "info" });
const sources = ["build.mjs", "package-lock.json", ...readdirSync("src").sort().map((name) => `src/${name}`)];
writeFileSync(`${out}sources.sha256`, sources.map((name) =>
  `${createHash("sha256").update(readFileSync(name)).digest("hex")}  playground/${name}\n`).join(""));
