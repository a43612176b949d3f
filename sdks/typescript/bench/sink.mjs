// A stand-in gateway for the benchmark, in its own process: gunzips and parses each body,
// answers 202 {accepted: n}. Prints its port on stdout; exits when its parent goes away.
import { createServer } from "node:http";
import { gunzipSync } from "node:zlib";

let events = 0;
const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let raw = Buffer.concat(chunks);
    if (req.headers["content-encoding"] === "gzip") raw = gunzipSync(raw);
    const n = JSON.parse(raw.toString("utf8")).events.length;
    events += n;
    res.writeHead(202, { "content-type": "application/json" });
    res.end(JSON.stringify({ accepted: n, rejected: [], directives: [] }));
  });
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.on("message", (m) => {
  if (m === "count") process.send?.({ events });
});
process.on("disconnect", () => process.exit(0));
