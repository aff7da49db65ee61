"""What model loading keeps between runs: file digests (models/digests.py), rehashed when a file
changes, and graphs rewritten by onnxruntime (models/optimised.py), which run the same."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from reelface.models import digests


def test_cached_digest_is_reused_and_refreshed_on_change(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(digests, "_seen", {})
    weights = tmp_path / "model.onnx"
    weights.write_bytes(b"first weights")
    assert digests.sha256_of(weights) == hashlib.sha256(b"first weights").hexdigest()
    stored = json.loads(digests.cache_path().read_text())
    assert stored[str(weights.resolve())][-1] == hashlib.sha256(b"first weights").hexdigest()

    calls = []
    monkeypatch.setattr(digests, "sha256_file", lambda path: calls.append(path) or "x")
    monkeypatch.setattr(digests, "_seen", {})  # a new process: only the file on disk
    assert digests.sha256_of(weights) == hashlib.sha256(b"first weights").hexdigest()
    assert calls == []  # unchanged: not read again

    weights.write_bytes(b"other weights")  # same size, new mtime and ctime
    os.utime(weights, ns=(1, 1))
    assert digests.sha256_of(weights) == "x"
    assert calls == [weights]


def test_unwritable_cache_still_gives_the_digest(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.setattr(digests, "_seen", {})
    weights = tmp_path / "model.onnx"
    weights.write_bytes(b"weights")
    assert digests.sha256_of(weights) == hashlib.sha256(b"weights").hexdigest()


def _tiny_model(path):
    """A 1×3×8×8 → 1×4×8×8 convolution with a bias and a ReLU: fusable, so rewritten."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_rewritten_graph_is_kept_and_runs_the_same(tmp_path, monkeypatch):
    from reelface.models import optimised, runtime

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(digests, "_seen", {})
    monkeypatch.setattr(runtime, "providers", lambda device=None: ["CPUExecutionProvider"])
    model = tmp_path / "tiny.onnx"
    _tiny_model(model)
    x = np.random.default_rng(1).normal(size=(1, 3, 8, 8)).astype(np.float32)
    first = runtime.session(model).run(None, {"x": x})[0]
    ready = optimised.ready_path(model, runtime.onnxruntime().__version__)
    assert ready.is_file()
    again = runtime.session(model).run(None, {"x": x})[0]  # from the kept copy
    assert np.array_equal(first, again)

    ready.write_bytes(b"damaged")  # a broken copy is made again, not reported
    assert np.array_equal(runtime.session(model).run(None, {"x": x})[0], first)
    assert ready.stat().st_size > len(b"damaged")
