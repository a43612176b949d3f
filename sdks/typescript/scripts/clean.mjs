// Removes build output (no rimraf: the package has no dependencies beyond TypeScript).
import { rmSync } from "node:fs";
const dirs = process.argv.slice(2);
for (const d of dirs.length ? dirs : ["dist", ".test-build"]) rmSync(d, { recursive: true, force: true });
