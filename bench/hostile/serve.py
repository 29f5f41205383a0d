"""A loopback web server for the hostile-document benchmark.

Serves the files of a folder; a file ending in `.gz` is sent as the document
without that ending would be, compressed on the wire (`Content-Encoding:
gzip`), as a server that compresses its answers does.
"""

import http.server
import os
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        path = self.translate_path(self.path)
        packed = path + ".gz"
        if os.path.isfile(packed):
            with open(packed, "rb") as f:
                body = f.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    root, port = sys.argv[1], int(sys.argv[2])
    os.chdir(root)
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
