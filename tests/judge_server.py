"""A chat-completions server on loopback whose misbehaviour each test scripts.

The reply to a prompt is chosen by a marker in the prompt: ``[R429x2]`` answers 429 twice and
then succeeds, ``[R500]`` fails once, ``[SLOW]`` stalls past the client's timeout once,
``[MALFORMED]`` sends a non-JSON body once, ``[ALWAYS503]`` never succeeds, ``[E400]`` is refused,
``[PROSE]`` succeeds with text that is not the asked format. Hostile ones: ``[DEEP]`` answers a
body nested 5,000 levels deep, ``[TRICKLE]`` sends a good reply one byte every 0.2 s, ``[HUGE]``
a reply just under 4 MiB, ``[ECHOKEY]`` a 400 whose body repeats the Authorization header,
``[ECHO200]`` a good reply whose text repeats it (tags and a difficulty that parse).
Everything else gets a good reply.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOOD_INSTAG = (
    '```json\n[{"tag": "Math", "explanation": "asks for arithmetic"}, {"tag": "Brevity", "explanation": "x"}]\n```'
)
GOOD_DIFF = "3\nIt is a short arithmetic question."


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()  # marker-free prompt text -> requests seen
        self.auth: set[str] = set()


def _failures(prompt: str) -> tuple[str | None, int]:
    m = re.search(
        r"\[(R429|R500|SLOW|MALFORMED|ALWAYS503|E400|PROSE|DEEP|TRICKLE|HUGE|ECHOKEY|ECHO200)(?:x(\d+))?\]", prompt
    )
    if not m:
        return None, 0
    return m.group(1), int(m.group(2) or 1)


def make_handler(state: State, stall: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = body["messages"][0]["content"]
            with state.lock:
                state.calls[prompt] += 1
                seen = state.calls[prompt]
                state.auth.add(self.headers.get("Authorization", ""))
            kind, times = _failures(prompt)
            if kind == "DEEP":
                return self._send(200, b"[" * 5000 + b"]" * 5000)
            if kind == "ECHO200":
                auth = self.headers.get("Authorization")
                content = (
                    f'[{{"tag": "echo {auth}", "explanation": "header {auth}"}}]'
                    if "intentions" in prompt
                    else f"4\nYour header was Authorization: {auth}"
                )
                reply = {"choices": [{"message": {"content": content}}]}
                return self._send(200, json.dumps(reply).encode())
            if kind == "ECHOKEY":
                return self._send(400, f'{{"error": "bad key {self.headers.get("Authorization")}"}}'.encode())
            if kind == "TRICKLE":
                body = json.dumps({"choices": [{"message": {"content": GOOD_DIFF}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
                return None
            if kind == "HUGE":
                content = GOOD_DIFF + "x" * ((4 << 20) - 200)
                return self._send(200, json.dumps({"choices": [{"message": {"content": content}}]}).encode())
            if kind == "E400":
                return self._send(400, b'{"error": "bad request"}')
            if kind == "ALWAYS503" or (kind and seen <= times):
                if kind == "R429":
                    return self._send(429, b'{"error": "slow down"}')
                if kind == "SLOW":
                    time.sleep(stall)
                    return self._send(200, b"{}")
                if kind == "MALFORMED":
                    return self._send(200, b"<html>gateway hiccup</html>", "text/html")
                if kind in ("R500", "ALWAYS503"):
                    return self._send(503 if kind == "ALWAYS503" else 500, b'{"error": "oops"}')
            if kind == "PROSE":
                content = "I would rather not answer in that format."
            else:
                content = GOOD_INSTAG if "intentions" in prompt else GOOD_DIFF
            reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
            self._send(200, json.dumps(reply).encode())

    return Handler


class QuietServer(ThreadingHTTPServer):
    """A client that times out closes its end; the stalled handler's late write is expected.

    The listen backlog is far above the judge's concurrency: with the default of 5, a loaded
    machine's accept loop can fall behind eight simultaneous connections, and the kernel drops
    one; the client then counts an attempt the server never saw, and request counts drift.
    """

    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        pass


@contextmanager
def judge_server(stall: float = 1.0) -> Iterator[tuple[str, State]]:
    """Serve on a free loopback port; yields (base URL, state)."""
    state = State()
    server = QuietServer(("127.0.0.1", 0), make_handler(state, stall))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", state
    finally:
        server.shutdown()
        server.server_close()
