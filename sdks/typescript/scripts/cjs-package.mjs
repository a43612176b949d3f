// The package is "type": "module", so the CommonJS build gets its own package.json
// saying its .js files are CommonJS.
import { writeFileSync } from "node:fs";
writeFileSync("dist/cjs/package.json", JSON.stringify({ type: "commonjs" }, null, 2) + "\n");
