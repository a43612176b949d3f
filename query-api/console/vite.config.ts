import { defineConfig } from "vitest/config";

// Served by the query API under /console/ (query-api/src/console.rs): hashed
// assets under /console/assets/ are cached for a year, index.html never;
// every other /console/<path> answers index.html, so the client-side
// router's paths work when opened directly.
//
// JSX (.tsx) compiles with Vite's own Oxc transform to Preact's automatic
// runtime (`preact/jsx-runtime`), matching tsconfig's `jsx: react-jsx` and
// `jsxImportSource: preact`; no extra plugin.
export default defineConfig({
  base: "/console/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false },
  test: { environment: "node" },
});
