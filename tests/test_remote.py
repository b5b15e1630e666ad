"""The student's functions called from the trusted grader: the wire format, and a real driver
running a notebook in the sandbox (or, where there is none, as a plain process)."""

from __future__ import annotations

import socket
import warnings

import nbformat
import numpy as np
import pytest

from cnnlib.grading import remote, sandbox, wire
from cnnlib.tutorial import Conv3x3, MaxPool2, Softmax

SANDBOXED = sandbox.probe().ok


# ------------------------------------------------------------------------------------ wire
def _round_trip(value):
    a, b = socket.socketpair()
    with a, b:
        arrays: dict = {}
        wire.send(a, {"v": wire.encode(value, "v", arrays)}, arrays)
        header, got = wire.receive(b)
    return wire.decode(header["v"], got)


def test_values_travel_as_data():
    x = np.arange(6.0).reshape(2, 3)
    got = _round_trip((x, 3, 2.5, float("nan"), "s", None, [np.int64(4)], {"k": x}))
    assert isinstance(got, tuple) and np.array_equal(got[0], x) and got[0] is not x
    assert got[1:3] == (3, 2.5) and np.isnan(got[3]) and got[4:6] == ("s", None)
    assert got[6][0] == 4 and np.array_equal(got[7]["k"], x)
    assert isinstance(_round_trip(object()), wire.Unsupported)
    assert isinstance(_round_trip(np.array(["a"], dtype=object)), wire.Unsupported)


def test_the_tutorial_layers_travel_by_their_weights():
    conv, pool, soft = Conv3x3(2, rng=0), MaxPool2(), Softmax(8, 3, rng=1)
    c2, p2, s2 = _round_trip((conv, pool, soft))
    assert type(c2) is Conv3x3 and type(p2) is MaxPool2 and type(s2) is Softmax
    assert np.array_equal(c2.filters, conv.filters) and np.array_equal(s2.weights, soft.weights)


def test_a_message_that_is_not_json_is_refused():
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"\x00\x00\x00\x03abc" + b"\x00" * 8)
        with pytest.raises(wire.WireError, match="not JSON"):
            wire.receive(b)


# ------------------------------------------------------------------------------------ driver
STUDENT = [
    "import numpy as np, warnings, sys\nfrom cnnlib.layers.pool import MaxPool2D",
    "def double(x):\n    return 2 * x",
    "def scale_in_place(x):\n    x *= 3\n    return None",
    "def todo(x):\n    raise NotImplementedError()",
    "def noisy(x):\n    warnings.warn('careful', RuntimeWarning)\n"
    "    print('to stderr', file=sys.stderr)\n    return x",
    "def cheat(x):\n    layer = MaxPool2D(2)\n    return layer.backward(layer.forward(x))",
    "def spin(x):\n    while True:\n        pass",
    "def train(conv, x):\n    conv.filters[...] = 7.0\n    return 1",
    "answer = 42",
]


@pytest.fixture(scope="module", params=["sandboxed", "plain"])
def session(request, tmp_path_factory):
    if request.param == "sandboxed" and not SANDBOXED:
        pytest.skip(f"no sandbox here: {sandbox.probe().message}")
    workdir = tmp_path_factory.mktemp("driver")
    workdir.chmod(0o755)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s, id=f"c{i}")
                                         for i, s in enumerate(STUDENT)])
    nbformat.write(nb, workdir / "run.ipynb")
    with remote.Session(workdir, sandboxed=request.param == "sandboxed",
                        guard=("cnnlib.layers.pool:MaxPool2D.backward",)) as s:
        statuses = s.run("run.ipynb", cell_timeout=30)
        assert [st["status"] for st in statuses] == ["ok"] * len(STUDENT)
        yield s


def test_a_function_returns_its_value(session):
    x = np.arange(3.0)
    assert np.array_equal(session.function("double")(x), 2 * x)


def test_in_place_changes_come_back_to_the_callers_arrays_and_layers(session):
    x = np.ones(4)
    session.function("scale_in_place")(x)
    assert np.array_equal(x, [3.0] * 4)
    conv = Conv3x3(2, rng=0)
    assert session.function("train")(conv, x) == 1
    assert np.all(conv.filters == 7.0)


def test_the_students_exception_is_raised_here_as_the_same_type(session):
    with pytest.raises(NotImplementedError):
        session.function("todo")(1)
    with pytest.raises(NameError, match="not defined"):
        session.function("nothere")(1)


def test_warnings_and_stderr_are_passed_on_here(session, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session.function("noisy")(1)
    assert [w.category for w in caught] == [RuntimeWarning]
    assert "to stderr" in capsys.readouterr().err


def test_the_answer_key_is_guarded_only_where_it_is_armed(session):
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    armed = session.function("cheat", guard=("cnnlib.layers.pool:MaxPool2D.backward",))
    with pytest.raises(remote.AnswerKeyUsed, match="MaxPool2D.backward"):
        armed(x)
    assert any("MaxPool2D.backward" in a for a in session.answer_key)
    assert session.function("cheat")(x).shape == x.shape  # not armed: an ordinary call


def test_a_call_past_its_limit_times_out_and_the_driver_goes_on(session):
    with pytest.raises(TimeoutError):
        session.function("spin", timeout=1.0)(1)
    assert session.function("double")(2) == 4


def test_values_and_descriptions(session):
    assert session.function("answer").value() == 42
    assert session.function("double").callable and not session.function("nothere").exists


@pytest.mark.skipif(not SANDBOXED, reason="needs the sandbox")
def test_a_cell_stuck_in_compiled_code_is_named_and_the_sandbox_ended(tmp_path):
    tmp_path.chmod(0o755)
    cells = ["from numba import njit\n@njit\ndef forever(n):\n    i = 0\n"
             "    while n > 0:\n        i += 1\n    return i",
             "forever(1)", "x = 1"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s, id=f"c{i}")
                                         for i, s in enumerate(cells)])
    nbformat.write(nb, tmp_path / "run.ipynb")
    with remote.Session(tmp_path) as s, pytest.raises(remote.CellStuck) as stuck:
        s.run("run.ipynb", cell_timeout=3)
    assert stuck.value.cell_id == "c1"
    assert s.result is not None and s.result.limit == "wall"
