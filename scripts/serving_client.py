#!/usr/bin/env python3
"""Send a style-transfer request to a running TensorFlow Serving and write the image.

    python scripts/serving_client.py --content=photo.jpg --style=painting.jpg --output=out.png
    python scripts/serving_client.py --protocol=grpc --server=localhost:8500 ...

REST needs nothing beyond the standard library. gRPC needs the TF Serving API protos:
`pip install 'nst_tf[serving]'` (tensorflow-serving-api of the installed TensorFlow's
version; grpcio comes with TensorFlow).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.request

from absl import app, flags

flags.DEFINE_string("content", None, "Content image file (JPEG or PNG).")
flags.DEFINE_string("style", None, "Style image file (JPEG or PNG).")
flags.DEFINE_string("output", "out.png", "Where to write the stylized PNG.")
flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "TF Serving API to use.")
flags.DEFINE_string("server", None, "host:port; default localhost:8501 (REST), :8500 (gRPC).")
flags.DEFINE_string("model", "nst_tf", "Model name in the server's model config.")
flags.DEFINE_integer("model_version", None, "Model version; default: the server's latest.")
flags.DEFINE_integer("num_steps", None, "Optimizer steps; default: the export's.")
flags.DEFINE_integer("max_size", None, "Longest side of the result; default: the export's.")
flags.DEFINE_float("timeout", 600.0, "Seconds to wait for the answer.")
flags.mark_flags_as_required(["content", "style"])
FLAGS = flags.FLAGS


def predict_rest(
    server: str,
    model: str,
    inputs: dict,
    version: int | None = None,
    timeout: float = 600.0,
) -> dict:
    """POST a columnar ("inputs") predict request; bytes values are sent as {"b64": ...}."""
    path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "") + ":predict"
    body = {
        "signature_name": "serving_default",
        "inputs": {
            k: {"b64": base64.b64encode(v).decode()} if isinstance(v, bytes) else v
            for k, v in inputs.items()
        },
    }
    request = urllib.request.Request(
        f"http://{server}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            outputs = json.load(response)["outputs"]
    except urllib.error.HTTPError as e:
        raise RuntimeError(_server_error(e)) from None
    return {
        "stylized_bytes": base64.b64decode(outputs["stylized_bytes"][0]["b64"]),
        "loss": float(outputs["loss"][0]),
    }


def predict_grpc(
    server: str,
    model: str,
    inputs: dict,
    version: int | None = None,
    timeout: float = 600.0,
) -> dict:
    """The same request over gRPC (tensorflow-serving-api)."""
    import grpc

    from nst_tf.options import start_tensorflow

    start_tensorflow([])  # TensorFlow for its tensor protos, without its start-up notices
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "serving_default"
    if version:
        request.model_spec.version.value = version
    for k, v in inputs.items():
        request.inputs[k].CopyFrom(tf.make_tensor_proto(v))
    options = [("grpc.max_receive_message_length", 256 << 20)]
    with grpc.insecure_channel(server, options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            result = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as e:  # its text is a multi-line report; details() the message
            raise RuntimeError(f"{e.code().name}: {e.details()}") from None
    return {
        "stylized_bytes": tf.make_ndarray(result.outputs["stylized_bytes"])[0],
        "loss": float(tf.make_ndarray(result.outputs["loss"])[0]),
    }


def _server_error(e: urllib.error.HTTPError) -> str:
    try:
        return json.load(e)["error"]
    except ValueError:
        return f"HTTP {e.code}"


def main(argv):
    del argv
    if not FLAGS.output.lower().endswith(".png"):
        sys.exit(f"serving_client: error: {FLAGS.output}: the server returns PNG; use a .png name")
    inputs = {"content_bytes": _read(FLAGS.content), "style_bytes": _read(FLAGS.style)}
    for name in ("num_steps", "max_size"):
        if FLAGS[name].value is not None:
            inputs[name] = FLAGS[name].value
    predict, port = (predict_rest, 8501) if FLAGS.protocol == "rest" else (predict_grpc, 8500)
    server = FLAGS.server or f"localhost:{port}"
    try:
        result = predict(server, FLAGS.model, inputs, FLAGS.model_version, FLAGS.timeout)
    except Exception as e:  # network, server and protocol errors alike: one line
        sys.exit(f"serving_client: error: {server}: {str(e).strip().splitlines()[0]}")
    tmp = f"{FLAGS.output}.tmp"
    with open(tmp, "wb") as f:
        f.write(result["stylized_bytes"])
    os.replace(tmp, FLAGS.output)
    print(f"wrote {FLAGS.output} (loss {result['loss']:.4g})")


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        sys.exit(f"serving_client: error: {path}: {e.strerror}")


if __name__ == "__main__":
    app.run(main)
