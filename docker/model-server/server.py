"""A tiny stand-in for an inference server (vLLM-like), standard library only.

    python server.py [--port 8000] [--host 0.0.0.0] [--root-path /inference/NAME]

- `GET /health`: 200 "ok", or 503 when the environment has `UNHEALTHY=1`
  (how a test makes an endpoint fail its probes).
- `GET /v1/models`: the one model, named by `MODEL_NAME` (default `tiny-model`).
- `POST /v1/completions`: a fake OpenAI-style completion of the JSON body's `prompt`;
  the reply names the pod (`served_by`) and `MODEL_VERSION`, so a test can tell
  a canary's answers from the primary's.

Paths answer with and without the `--root-path` prefix, since an Ingress may
or may not strip it. Unknown arguments (a real server's flags) are ignored.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY_BYTES = 1024 * 1024


def _strip_root(path: str, root_path: str) -> str:
    """`path` without the query and without the `root_path` prefix when it has one."""
    path = path.split("?", 1)[0]
    if root_path and (path == root_path or path.startswith(root_path + "/")):
        return path[len(root_path) :] or "/"
    return path


def _completion(request: dict[str, Any]) -> dict[str, Any]:
    """A fake OpenAI-style completion reply to `request` (its `prompt` and `max_tokens`)."""
    prompt = str(request.get("prompt", ""))
    requested = request.get("max_tokens", 16)
    max_tokens = requested if isinstance(requested, int) else 16
    prompt_tokens = len(prompt.split())
    text = f" (fake completion of {len(prompt)} characters)"
    return {
        "id": f"cmpl-{uuid.uuid4().hex[:16]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": os.environ.get("MODEL_NAME", "tiny-model"),
        "choices": [{"index": 0, "text": text, "finish_reason": "length", "logprobs": None}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": max_tokens,
            "total_tokens": prompt_tokens + max_tokens,
        },
        "served_by": socket.gethostname(),
        "version": os.environ.get("MODEL_VERSION", ""),
    }


def make_server(*, host: str, port: int, root_path: str = "") -> ThreadingHTTPServer:
    """A bound (not yet serving) server; port 0 picks a free one."""
    root = root_path.rstrip("/")

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: Any) -> None:
            data = (json.dumps(body) if not isinstance(body, str) else body).encode()
            self.send_response(status)
            kind = "text/plain" if isinstance(body, str) else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = _strip_root(self.path, root)
            if path == "/health":
                if os.environ.get("UNHEALTHY") == "1":
                    self._reply(HTTPStatus.SERVICE_UNAVAILABLE, "unhealthy\n")
                else:
                    self._reply(HTTPStatus.OK, "ok\n")
            elif path == "/v1/models":
                name = os.environ.get("MODEL_NAME", "tiny-model")
                self._reply(
                    HTTPStatus.OK, {"object": "list", "data": [{"id": name, "object": "model"}]}
                )
            else:
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route for GET {path}"})

        def do_POST(self) -> None:
            path = _strip_root(self.path, root)
            if path != "/v1/completions":
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route for POST {path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"})
                return
            try:
                request = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self._reply(HTTPStatus.BAD_REQUEST, {"error": "body must be JSON"})
                return
            if not isinstance(request, dict):
                self._reply(HTTPStatus.BAD_REQUEST, {"error": "body must be a JSON object"})
                return
            self._reply(HTTPStatus.OK, _completion(request))

        def log_message(self, format: str, *args: object) -> None:
            # Probes every few seconds would drown the container's log.
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or Ctrl-C; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--root-path", default="")
    args, _ignored = parser.parse_known_args(argv)
    server = make_server(host=args.host, port=args.port, root_path=args.root_path)

    def _terminate(_signum: int, _frame: object) -> None:
        # As PID 1 in a container, SIGTERM is ignored unless handled.
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    print(f"model server on {args.host}:{server.server_address[1]} root={args.root_path!r}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
