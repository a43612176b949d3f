import { defineConfig } from "vitest/config";

// Served by the query API under /console/ (query-api/src/console.rs): hashed
// assets under /console/assets/ are cached for a year, index.html never.
export default defineConfig({
  base: "/console/",
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false },
  test: { environment: "node" },
});
