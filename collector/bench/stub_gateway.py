#!/usr/bin/env python3
"""A stand-in for POST /v1/events that answers 202 (counts events): for the
collector's figures without the whole pipeline.  python3 stub_gateway.py PORT"""
import gzip, http.server, json, sys

count = 0

class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        n = len(json.loads(body)["events"])
        count += n
        out = json.dumps({"accepted": n, "rejected": [], "directives": []}).encode()
        self.send_response(202)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
