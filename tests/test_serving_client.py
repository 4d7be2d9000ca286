"""scripts/serving_client.py against loopback stand-ins for TF Serving's REST and gRPC
predict APIs.

The REST stand-in follows TF Serving's documented REST conventions (columnar "inputs",
binary values as {"b64": ...} for `_bytes` names, errors as {"error": ...}); the gRPC one
is a PredictionService of tensorflow-serving-api's protos, errors as INVALID_ARGUMENT. Both
answer by running the exported model through the session loader, as TF Serving would.
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

pytestmark = pytest.mark.slow  # an export, and the client in a subprocess

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


@pytest.fixture(scope="module")
def grpc_server(served):
    grpc = pytest.importorskip("grpc")
    pytest.importorskip("tensorflow_serving", reason="the serving extra is not installed")
    from concurrent import futures

    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    requests = []

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            requests.append(request)
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            try:
                outputs = served.run(request.model_spec.signature_name, **inputs)
            except Exception as e:  # what TF Serving does with a failed check
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e).strip().splitlines()[-2])
            response = predict_pb2.PredictResponse()
            response.model_spec.CopyFrom(request.model_spec)
            for k, v in outputs.items():
                response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", requests
    server.stop(0)


def test_grpc_request_writes_the_stylized_image(grpc_server, tmp_path):
    address, requests = grpc_server
    out = tmp_path / "served.png"
    result = client(
        "--protocol=grpc", f"--server={address}", "--model=nst", f"--content={CONTENT_PATH}",
        f"--style={STYLE_PATH}", f"--output={out}", "--num_steps=2", "--max_size=48",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with Image.open(out) as img:
        assert img.format == "PNG" and max(img.size) == 48
    request = requests[-1]
    assert (request.model_spec.name, request.model_spec.signature_name) == (
        "nst",
        "serving_default",
    )
    assert set(request.inputs) == {"content_bytes", "style_bytes", "num_steps", "max_size"}


def test_grpc_errors_are_one_line_and_write_nothing(grpc_server, tmp_path):
    address, _ = grpc_server
    out = tmp_path / "served.png"
    result = client(
        "--protocol=grpc", f"--server={address}", "--model=nst", f"--content={CONTENT_PATH}",
        f"--style={STYLE_PATH}", f"--output={out}", "--num_steps=100000",
    )  # fmt: skip
    assert result.returncode == 1
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "INVALID_ARGUMENT" in line and "max_steps" in line
    assert not out.exists()
