// Builds the page's script and style sheet into engine/playground/static/ (next to the hand-written index.html) (committed: users need no Node.js). Run: npm ci && npm run build
import { build } from "esbuild";
import { mkdirSync } from "node:fs";

const out = new URL("../engine/playground/static/", import.meta.url).pathname;
mkdirSync(out, { recursive: true });
await build({ entryPoints: ["src/main.js"], bundle: true, minify: true, format: "iife", target: "es2020",
  outfile: `${out}playground.js`, legalComments: "linked", logLevel: "info" });
await build({ entryPoints: ["src/style.css"], bundle: true, minify: true, outfile: `${out}playground.css`,
  logLevel: "info" });
