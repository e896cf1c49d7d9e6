"""The grading build of lessons_lib and the grader's data channel (no sandbox, no kernel: fast)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from course_tools import channel, grading_build
from lessons_lib.checks import blocking

from grading_helpers import SOLUTIONS, require_sandbox

BUILT_PIECES = ("optimizers", "schedules", "clip_by_global_norm", "loss_scaler", "run", "memory", "logistic_hessian",
               "lr_schedulers", "lean")


def test_every_piece_the_checks_block_is_marked_in_the_library_source():
    """One list of pieces: each function the learner-side block switches off has its body marked,
    so the grading build cuts exactly what the learner is told not to call."""
    import inspect

    marked = grading_build.marked_pieces()
    assert set(marked) == set(blocking.PIECES)
    for piece, (_, functions) in blocking.PIECES.items():
        for fn in functions:
            assert f"# BEGIN GRADED PIECE {piece}" in inspect.getsource(fn), fn.__qualname__


def test_every_lesson_says_which_pieces_its_grading_build_leaves_out():
    names = sorted(p.name for p in SOLUTIONS.glob("*.ipynb"))
    assert sorted(grading_build.LESSON_PIECES) == sorted(n[:2] for n in names)
    assert set().union(*grading_build.LESSON_PIECES.values()) == set(BUILT_PIECES)


def test_unbalanced_markers_are_refused():
    with pytest.raises(grading_build.BuildError, match="without END"):
        grading_build.cut_pieces("def f():\n    # BEGIN GRADED PIECE run: f\n    return 1\n", {"run"})
    with pytest.raises(grading_build.BuildError, match="without BEGIN"):
        grading_build.cut_pieces("x = 1\n# END GRADED PIECE\n", {"run"})


PROBE = r"""
import importlib, inspect, json, sys, types
import numpy as np
out = {}
from lessons_lib import optimizers, schedules, memory, runner, logistic
from lessons_lib.surfaces import COURSE, START
opt = optimizers.AdamW(lr=0.1)
for label, call in [
    ("AdamW.step", lambda: opt.step(START, COURSE.grad(START), opt.init(START))),
    ("reloaded AdamW.step", lambda: importlib.reload(optimizers).AdamW(lr=0.1).step(START, COURSE.grad(START), opt.init(START))),
    ("run", lambda: runner.run(optimizers.SGD(0.01), 3)),
    ("a copy of Adam.step", lambda: types.FunctionType(optimizers.Adam.step.__code__, optimizers.Adam.step.__globals__, "s", optimizers.Adam.step.__defaults__)(opt, START, COURSE.grad(START), opt.init(START))),
    ("warmup_cosine", lambda: schedules.warmup_cosine(1e-3, 0.0, 2, 10)(0)),
    ("state_gigabytes", lambda: memory.state_gigabytes("Adam", 1e9)),
]:
    try:
        call()
        out[label] = "ran"
    except RuntimeError as exc:
        out[label] = str(exc)
out["step source"] = inspect.getsource(optimizers.Adam.step)
out["STATE_BUFFERS" ] = hasattr(memory, "STATE_BUFFERS")
from lessons_lib import checks
r = checks.one_sgd_step()
out["check"] = [bool(r), r.status]
with checks.library_blocked("optimizers"):
    pass
print(json.dumps(out))
"""


def test_the_grading_build_has_the_pieces_cut_out_and_the_checks_stubbed(tmp_path):
    grading_build.build(tmp_path, ("optimizers", "run", "memory"))
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for label in ("AdamW.step", "reloaded AdamW.step", "run", "a copy of Adam.step", "state_gigabytes"):
        assert "not available while grading" in out[label], (label, out[label])
    assert out["warmup_cosine"] == "ran", "pieces not named stay"
    assert "m_hat" not in out["step source"] and "sqrt" not in out["step source"], "the code is not in the file"
    assert out["STATE_BUFFERS"] is False
    assert out["check"] == [False, "not run"]
    assert not (tmp_path / "lessons_lib" / "checks" / "framework.py").exists()


def test_learners_keep_the_full_library():
    from lessons_lib import memory
    from lessons_lib.optimizers import AdamW
    from lessons_lib.surfaces import COURSE, START

    opt = AdamW(lr=0.1)
    w, _ = opt.step(START, COURSE.grad(START), opt.init(START))
    assert np.all(np.isfinite(w)) and memory.state_gigabytes("Adam", 1e9) == 8.0


# ------------------------------------------------------------------ the channel


def test_the_channel_carries_numbers_arrays_and_sequences_exactly():
    values = [None, True, 3, 0.1, float("inf"), "text", np.float32(1.5), np.bool_(True),
              np.arange(6, dtype=np.int64).reshape(2, 3), np.array([1e-300, np.nan]), (1.0, [2, 3])]
    for value in values:
        back = channel.decode(json.loads(json.dumps(channel.encode(value))))
        if isinstance(value, np.ndarray):
            assert back.dtype == value.dtype and back.shape == value.shape
            assert np.array_equal(back, value, equal_nan=True)
        elif isinstance(value, float) and value != value:
            assert back != back
        else:
            assert back == value and type(back) is type(value)


@pytest.mark.parametrize("bad", [
    {"t": "pickle", "v": "gASV"},
    {"t": "ndarray", "dtype": "object", "shape": [1], "v": [1]},
    {"t": "ndarray", "dtype": "float64", "shape": [3], "v": [1.0, 2.0]},
    {"t": "ndarray", "dtype": "float64", "shape": [1], "v": ["__import__('os')"]},
    {"t": "ndarray", "dtype": "int8", "shape": [1], "v": [1000]},
    {"t": "int", "v": 2**80},
    {"t": "float", "v": "1e5"},
    {"t": "list", "v": [{"t": "list", "v": []}] * 3, "extra": 1} | {"v": 5},
    "not a dict",
])
def test_the_channel_refuses_anything_outside_its_vocabulary(bad):
    with pytest.raises(channel.ChannelError):
        channel.decode(bad)


def test_deep_nesting_and_huge_replies_are_refused():
    deep = {"t": "none"}
    for _ in range(20):
        deep = {"t": "list", "v": [deep]}
    with pytest.raises(channel.ChannelError, match="deeply"):
        channel.decode(deep)
    with pytest.raises(channel.ChannelError, match="too many"):
        channel.decode({"t": "ndarray", "dtype": "bool", "shape": [channel.MAX_ITEMS + 1],
                        "v": [True] * (channel.MAX_ITEMS + 1)})


def test_objects_and_functions_arrive_as_type_names_or_remote_calls():
    opaque = channel.decode({"t": "opaque", "type": "DataFrame"})
    assert isinstance(opaque, channel.Opaque) and type(opaque).__name__ == "DataFrame"
    calls = []
    fn = channel.decode({"t": "callable", "type": "function"}, rpc=lambda *a: calls.append(a) or 7, name="f")
    assert isinstance(fn, channel.RemoteFunction) and fn(1, x=2) == 7 and calls == [("f", (1,), {"x": 2})]


def test_a_student_exception_keeps_its_builtin_type_and_never_becomes_a_base_exception():
    assert type(channel.remote_exception("ValueError", "nan in the norm")) is ValueError
    assert isinstance(channel.remote_exception("NotImplementedError", ""), NotImplementedError)
    for name in ("SystemExit", "KeyboardInterrupt", "LessonError"):
        exc = channel.remote_exception(name, "x")
        assert isinstance(exc, Exception) and type(exc).__name__ == name


# ------------------------------------------------------------------ what a sandbox can see and do

PROBE_CELL = r"""
import os, resource, socket
seen = sorted(os.listdir("/"))
grading = sorted(os.listdir("/grading"))
course = sorted(os.listdir("/grading/course"))
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    network = "reached"
except OSError as exc:
    network = type(exc).__name__
limits = [resource.getrlimit(r)[0] for r in (resource.RLIMIT_AS, resource.RLIMIT_NPROC, resource.RLIMIT_FSIZE,
                                             resource.RLIMIT_NOFILE, resource.RLIMIT_CPU)]
try:
    open("/grading/course/lessons_lib/new.py", "w")
    course_writable = True
except OSError:
    course_writable = False
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
uid = os.getuid()
here = sorted(p for p in os.listdir(".") if not p.startswith("."))
"""


@pytest.mark.slow
def test_a_sandbox_sees_only_python_its_build_and_its_copy_without_network(tmp_path):
    from course_tools.sandbox import Limits, Sandbox

    build = grading_build.build(tmp_path / "build", ("optimizers",))
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "data.txt").write_text("mine")
    limits = Limits(timeout=20, memory_mb=1024, processes=32, file_size_mb=8, open_files=128)
    with Sandbox(build, submission, limits, require_sandbox()) as box:
        assert box.request("run", source=PROBE_CELL)["ok"]
        reply = box.request("get", names=["seen", "grading", "course", "network", "limits", "course_writable",
                                          "pids", "uid", "here"])
    got = {k: channel.decode(v) for k, v in reply["values"].items()}
    assert set(got["seen"]) <= {"bin", "dev", "grading", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr",
                                *(p.split("/")[1] for p in (sys.prefix, sys.base_prefix))}, got["seen"]
    assert got["here"] == ["data.txt"], "its working folder: a private copy of its own folder"
    assert got["grading"] == ["course", "runner.py", "submission", "work"]
    assert got["course"] == ["lessons_lib"]
    assert got["network"] != "reached"
    assert got["limits"] == [1024 * 2**20, 32, 8 * 2**20, 128, 25]
    assert got["course_writable"] is False
    assert max(got["pids"]) < 10, "its own pid namespace"
    assert got["uid"] == 65534


def test_the_python_installation_is_mounted_over_the_private_tmp(monkeypatch):
    """A checkout under /tmp (as in CI) keeps its venv visible: /tmp's tmpfs comes first."""
    from course_tools import sandbox
    monkeypatch.setattr(sandbox, "_python_paths", lambda: ["/tmp/ci/.venv", "/opt/python"])
    cmd = sandbox.bwrap_command("bwrap", Path("/tmp/build"), Path("/tmp/sub"), sandbox.Limits(timeout=5))
    tmpfs_at = next(i for i in range(len(cmd) - 1) if cmd[i] == "--tmpfs" and cmd[i + 1] == "/tmp")
    venv_at = next(i for i in range(len(cmd) - 2) if cmd[i:i + 3] == ["--ro-bind", "/tmp/ci/.venv", "/tmp/ci/.venv"])
    assert tmpfs_at < venv_at
