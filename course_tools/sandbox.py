"""One sandbox per submission: bubblewrap namespaces, rlimits, an output cap and a wall-clock limit.

With bubblewrap (Debian's ``bubblewrap``, the sandbox Flatpak uses) each submission runs
in its own user, mount, pid, network, IPC and UTS namespaces, as an unprivileged user with
no capabilities. It sees

    /usr (and the /bin, /lib links), the Python installation and its site-packages   read-only
    /grading/course/lessons_lib   the lesson's grading build of the library            read-only
    /grading/submission           a copy of the submission's folder                     read-only
    /grading/work                 private scratch (a size-capped tmpfs), the working folder
    /tmp                          private (a size-capped tmpfs)

and nothing else: not solutions/, not the course folder, not the other submissions, not the
grades file, no network. ``--die-with-parent`` and the pid namespace mean that killing the
sandbox (or the grader dying) ends every process the submission started, daemons included.
Inside, the runner sets rlimits (address space, CPU seconds, processes, file size, open
files) before any student code runs. The grader reads the printed output and kills the
sandbox past the output cap or the notebook's wall-clock deadline.

Without bubblewrap (``--no-sandbox``) the same runner, limits and channel are used in a plain
child process: see UNSANDBOXED_WARNING for what that exposes.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .channel import ChannelError, SandboxGone

RUNNER = Path(__file__).with_name("sandbox_runner.py")
BWRAP_VARIABLE = "COURSE_TOOLS_BWRAP"     # a path to bwrap, or "" to act as if it were missing
MOUNT = "/grading"

UNSANDBOXED_WARNING = """\
WARNING: --no-sandbox: submissions run as plain processes with YOUR user's permissions.
  Expected values and hidden tests still stay in the grader, and each notebook still gets its
  rlimits, output cap and time limit, but a submission CAN: read solutions/ and any of your
  files, change or delete them (other submissions and the grades file included), use the
  network, and leave processes running after grading. Use it only for code you trust, or
  inside a disposable container (README, "For instructors")."""


_ACTIVE: set = set()
_ACTIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()


def kill_all() -> None:
    """End every running sandbox and refuse new ones (the grader was interrupted)."""
    with _ACTIVE_LOCK:
        _STOPPING.set()
        active = list(_ACTIVE)
    for box in active:
        box.gone = box.gone or "grading was interrupted"
        if box.proc is not None:
            box._kill_quietly()


def allow_new() -> None:
    """Sandboxes may start again (a new grading run in the same process)."""
    _STOPPING.clear()


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here."""


@dataclass
class Limits:
    """Per-submission limits. timeout: wall-clock seconds for the whole notebook."""
    timeout: float = 120.0
    memory_mb: int = 2048
    cpu_seconds: int | None = None      # default: the timeout, rounded up, plus 5
    processes: int = 64
    file_size_mb: int = 64
    open_files: int = 256
    output_mb: float = 4.0
    scratch_mb: int = 256

    def rlimits(self) -> dict:
        cpu = self.cpu_seconds or int(self.timeout) + 5
        return {"memory": self.memory_mb * 2**20, "cpu": cpu, "processes": self.processes,
                "file_size": self.file_size_mb * 2**20, "open_files": self.open_files}


def find_bwrap() -> str | None:
    if BWRAP_VARIABLE in os.environ:
        path = os.environ[BWRAP_VARIABLE]
        return path if path and os.access(path, os.X_OK) else None
    return shutil.which("bwrap")


def _python_paths() -> list[str]:
    """Folders the sandbox's Python needs (read-only): the installation, the venv, site-packages."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable))}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(sysconfig.get_paths()[key])
    paths.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    out = []
    for p in sorted(paths, key=len):
        p = os.path.realpath(p) if not p.startswith(sys.prefix) else p
        if os.path.isdir(p) and not any(p == q or p.startswith(q.rstrip("/") + "/") for q in out):
            out.append(p)
    return out


def _hidden_packages() -> list[str]:
    """Installed (non-editable) copies of the course's packages: hidden so the full library,
    with the pieces the exercises ask for, cannot be imported from site-packages."""
    hidden = []
    for sp in set(site.getsitepackages() if hasattr(site, "getsitepackages") else []):
        for name in ("lessons_lib", "course_tools", "benchmarks", "solutions"):
            if os.path.isdir(os.path.join(sp, name)):
                hidden.append(os.path.join(sp, name))
    return hidden


def bwrap_command(bwrap: str, build: Path, submission: Path, limits: Limits) -> list[str]:
    cmd = [bwrap, "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
           "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv",
           "--ro-bind", "/usr", "/usr"]
    for link in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        target = f"/{link}"
        if os.path.islink(target):
            cmd += ["--symlink", os.readlink(target), target]
        elif os.path.isdir(target):
            cmd += ["--ro-bind", target, target]
    scratch = str(limits.scratch_mb * 2**20)
    # the private /tmp first: the Python installation or the course's venv may live under /tmp
    # (a CI checkout), and a later mount overlays an earlier one
    cmd += ["--size", scratch, "--tmpfs", "/tmp"]
    for p in _python_paths():
        if not p.startswith("/usr/"):
            cmd += ["--ro-bind", p, p]
    for p in _hidden_packages():
        cmd += ["--tmpfs", p]
    cmd += ["--proc", "/proc", "--dev", "/dev",
            "--size", scratch, "--tmpfs", f"{MOUNT}/work",
            "--ro-bind", str(build), f"{MOUNT}/course",
            "--ro-bind", str(submission), f"{MOUNT}/submission",
            "--ro-bind", str(RUNNER), f"{MOUNT}/runner.py",
            "--chdir", f"{MOUNT}/work"]
    for key, value in _environment(f"{MOUNT}/course", f"{MOUNT}/work").items():
        cmd += ["--setenv", key, value]
    return cmd + ["--", sys.executable, f"{MOUNT}/runner.py"]


def _environment(course: str, work: str) -> dict:
    return {"PYTHONPATH": course, "HOME": work, "TMPDIR": "/tmp", "PATH": "/usr/bin:/bin",
            "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{work}/.matplotlib", "IPYTHONDIR": f"{work}/.ipython",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "LANG": "C.UTF-8",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "LESSONS_PROGRESS_FILE": f"{work}/progress.json"}


_checked: dict[str, str | None] = {}


def check_bwrap(bwrap: str | None) -> str:
    """The path to a bwrap that works here, or SandboxUnavailable saying why not."""
    if bwrap is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed, so submissions cannot be sandboxed. Install it "
            "(Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap), grade "
            "inside a container (README, \"For instructors\"), or pass --no-sandbox to run "
            "submissions unsandboxed with your permissions.")
    if bwrap not in _checked:
        try:
            done = subprocess.run([bwrap, "--unshare-all", "--unshare-user", "--die-with-parent",
                                   "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"],
                                  capture_output=True, text=True, timeout=30)
            _checked[bwrap] = None if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            _checked[bwrap] = str(exc)
    if _checked[bwrap]:
        raise SandboxUnavailable(
            f"bubblewrap ({bwrap}) cannot create a sandbox here: {_checked[bwrap]}. User namespaces "
            "may be disabled (some containers do this); grade inside a container as in the README, "
            "or pass --no-sandbox to run submissions unsandboxed with your permissions.")
    return bwrap


@dataclass(eq=False)
class Sandbox:
    """A running submission process and the channel to it. Use as a context manager."""
    build: Path
    submission: Path
    limits: Limits
    bwrap: str | None            # None: --no-sandbox
    proc: subprocess.Popen | None = None
    output_bytes: int = 0
    gone: str | None = None
    _buffer: bytes = b""
    _next_id: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self.deadline = time.monotonic() + self.limits.timeout

    # ---------------------------------------------------------------- life cycle
    def __enter__(self):
        with _ACTIVE_LOCK:
            if _STOPPING.is_set():
                raise SandboxGone("grading was interrupted")
            _ACTIVE.add(self)
        try:
            return self._start()
        except BaseException:
            with _ACTIVE_LOCK:
                _ACTIVE.discard(self)
            raise

    def _start(self):
        spec = {"limits": self.limits.rlimits()}
        if self.bwrap:
            spec["copy_from"] = f"{MOUNT}/submission"
            cmd = bwrap_command(self.bwrap, self.build, self.submission, self.limits) + [json.dumps(spec)]
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, close_fds=True)
        else:
            self._workdir = Path(self.submission).parent / "work"
            self._workdir.mkdir(exist_ok=True)
            spec["copy_from"] = str(self.submission)
            env = dict(os.environ)
            env.pop("PYTHONPATH", None)
            env.update(_environment(str(self.build), str(self._workdir)))
            env["PATH"] = os.environ.get("PATH", env["PATH"])
            self.proc = subprocess.Popen([sys.executable, str(RUNNER), json.dumps(spec)], cwd=self._workdir,
                                         env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, close_fds=True, start_new_session=True)
        with _ACTIVE_LOCK:
            if _STOPPING.is_set():          # interrupted while it was starting
                self.gone = "grading was interrupted"
                self._kill_quietly()
        self._drain = threading.Thread(target=self._read_output, daemon=True)
        self._drain.start()
        self._watchdog = threading.Timer(max(0.0, self.deadline - time.monotonic()) + 0.5, self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()
        try:
            ready = self._receive(0, starting=True)
            if not ready.get("ok"):
                raise SandboxUnavailable(f"the sandbox did not start: {ready.get('ename')}: {ready.get('evalue')}")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        self.kill()
        self._watchdog.cancel()
        with _ACTIVE_LOCK:
            _ACTIVE.discard(self)
        return False


    def kill(self) -> None:
        """End the sandbox and everything in it (the pid namespace goes with its first process)."""
        proc = self.proc
        if proc is None:
            return
        try:
            if self.bwrap:
                proc.kill()
            else:
                os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._drain.join(timeout=5)

    def _expire(self):
        if self.gone is None:
            self.gone = f"timed out: the notebook ran past the {self.limits.timeout:g} s limit"
        self._kill_quietly()

    def _kill_quietly(self):
        try:
            if self.bwrap:
                self.proc.kill()
            else:
                os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass

    def _read_output(self):
        cap = self.limits.output_mb * 2**20
        fd = self.proc.stderr.fileno()
        self.first_output = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            if len(self.first_output) < 4096:
                self.first_output += chunk[: 4096 - len(self.first_output)]
            self.output_bytes += len(chunk)
            if self.output_bytes > cap and self.gone is None:
                self.gone = (f"printed more than {self.limits.output_mb:g} MB (the output limit): "
                             "a print in a loop?")
                self._kill_quietly()

    # ---------------------------------------------------------------- the channel
    def request(self, op: str, **fields) -> dict:
        """Send one request and wait (until the notebook's deadline) for its reply."""
        with self._lock:
            if self.gone:
                raise SandboxGone(self.gone)
            rid = self._next_id
            self._next_id += 1
            line = json.dumps({"id": rid, "op": op, **fields}, allow_nan=False).encode() + b"\n"
            try:
                self.proc.stdin.write(line)
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                raise SandboxGone(self._why_gone()) from None
            return self._receive(rid)

    def _receive(self, rid: int, starting: bool = False) -> dict:
        fd = self.proc.stdout.fileno()
        max_line = 64 * 2**20
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line, self._buffer = self._buffer[:newline], self._buffer[newline + 1:]
                try:
                    reply = json.loads(line)
                    if not isinstance(reply, dict):
                        raise ChannelError("not an object")
                except (ValueError, RecursionError) as exc:
                    self.gone = f"the notebook broke the grader's channel (an unreadable reply: {type(exc).__name__})"
                    self._kill_quietly()
                    raise SandboxGone(self.gone) from None
                if reply.get("id") != rid:
                    continue     # a stale or forged line: only the reply to this request counts
                return reply
            if len(self._buffer) > max_line:
                self.gone = "the notebook broke the grader's channel (a reply over 64 MB)"
                self._kill_quietly()
                raise SandboxGone(self.gone)
            left = self.deadline - time.monotonic()
            if left <= 0:
                self._expire()
                raise SandboxGone(self.gone)
            try:
                ready, _, _ = select.select([fd], [], [], left)
            except (OSError, ValueError):
                raise SandboxGone(self._why_gone()) from None
            if not ready:
                continue
            try:
                chunk = os.read(fd, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                if starting and self.gone is None:
                    self.proc.wait(timeout=10)
                    self._drain.join(timeout=5)
                    detail = self.first_output.decode(errors="replace").strip().splitlines()
                    raise SandboxUnavailable("the sandbox did not start" + (f": {detail[-1]}" if detail else ""))
                raise SandboxGone(self._why_gone())
            self._buffer += chunk

    def _why_gone(self) -> str:
        if self.gone:
            return self.gone
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        self._drain.join(timeout=2)
        if self.gone:
            return self.gone
        if code is not None and code < 0 and -code == signal.SIGXCPU:
            self.gone = "the notebook used up its CPU time limit"
        else:
            self.gone = ("the notebook's process died while it was being graded (os._exit, a crash, or a "
                         "resource limit: memory, processes, file size)")
        return self.gone
