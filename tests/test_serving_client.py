"""scripts/serving_client.py against a loopback stand-in for TF Serving's REST predict API.

The stand-in follows TF Serving's documented REST conventions (columnar "inputs", binary
values as {"b64": ...} for `_bytes` names, errors as {"error": ...}) and answers by running
the exported model through the session loader, as TF Serving would.
"""

import base64
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from tests.conftest import CONTENT_PATH, STYLE_PATH

CLIENT = os.path.join(os.path.dirname(__file__), "..", "scripts", "serving_client.py")


def _decode(name, value):
    if isinstance(value, dict) and "b64" in value:
        return base64.b64decode(value["b64"])
    return value


def _encode(name, value: np.ndarray):
    if name.endswith("_bytes"):
        return [{"b64": base64.b64encode(v).decode()} for v in value]
    return value.tolist()


@pytest.fixture(scope="module")
def rest_server(served):
    requests = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append((self.path, body))
            try:
                inputs = {k: _decode(k, v) for k, v in body["inputs"].items()}
                outputs = served.run(body.get("signature_name", "serving_default"), **inputs)
                status, answer = 200, {"outputs": {k: _encode(k, v) for k, v in outputs.items()}}
            except Exception as e:  # what TF Serving does with InvalidArgument: 400 + message
                status, answer = 400, {"error": str(e).strip().splitlines()[-2]}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()


def client(*args):
    return subprocess.run(
        [sys.executable, CLIENT, *args], capture_output=True, text=True, timeout=300
    )


def test_rest_request_writes_the_stylized_image(rest_server, tmp_path):
    address, requests = rest_server
    out = tmp_path / "served.png"
    result = client(
        f"--server={address}", "--model=nst", f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}",
        f"--output={out}", "--num_steps=2", "--max_size=48",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with Image.open(out) as img:
        assert img.format == "PNG" and max(img.size) == 48
    path, body = requests[-1]
    assert path == "/v1/models/nst:predict"
    assert set(body["inputs"]) == {"content_bytes", "style_bytes", "num_steps", "max_size"}


def test_server_errors_are_one_line_and_write_nothing(rest_server, tmp_path):
    address, _ = rest_server
    out = tmp_path / "served.png"
    result = client(
        f"--server={address}", "--model=nst", f"--content={CONTENT_PATH}", f"--style={STYLE_PATH}",
        f"--output={out}", "--num_steps=100000",
    )  # fmt: skip
    assert result.returncode == 1
    assert "max_steps" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
