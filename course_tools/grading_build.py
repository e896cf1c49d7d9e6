"""The grading build of lessons_lib: the library with the pieces an exercise asks for cut out.

In the learner's library each such piece is marked in its source, like the solutions are:

    def step(self, params, grads, state, lr=None):
        # BEGIN GRADED PIECE optimizers: Adam.step
        ...the implementation...
        # END GRADED PIECE

``build`` copies lessons_lib into a folder and cuts every region of the named pieces: inside a
function the region becomes ``raise RuntimeError("... not available while grading ...")``;
at module level (a table such as memory.STATE_BUFFERS) it is removed. So at grade time there
is nothing to copy, save, reload or call: the code is not in the files. The learner-facing
checks are replaced by stubs that run nothing (they cannot be used as an oracle while
grading; the trusted grader does the checking). Learners' own runs keep the full library.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import lessons_lib
import lessons_lib.checks

LIBRARY = Path(lessons_lib.__file__).resolve().parent
BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN GRADED PIECE (?P<piece>[a-z_]+)(?::\s*(?P<label>.+?))?\s*$")
END = re.compile(r"^\s*# END GRADED PIECE\s*$")


class BuildError(ValueError):
    """Unbalanced or unknown markers in the library source."""


def cut_pieces(source: str, pieces, where: str = "module") -> tuple[str, set]:
    """The source with the regions of `pieces` cut; returns (source, pieces found in it)."""
    out, inside, found = [], None, set()
    for number, line in enumerate(source.split("\n"), 1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if inside is not None:
                raise BuildError(f"{where}:{number}: nested GRADED PIECE markers")
            inside = begin
            found.add(begin["piece"])
            if begin["piece"] in pieces and begin["indent"]:
                label = begin["label"] or begin["piece"]
                out.append(f"{begin['indent']}raise RuntimeError(\"the library's {label} is not available while "
                           f"grading: the exercise asks you to write it yourself\")")
            elif begin["piece"] in pieces:
                out.append(f"# ({begin['piece']}: removed from the grading build)")
        elif end:
            if inside is None:
                raise BuildError(f"{where}:{number}: END GRADED PIECE without BEGIN")
            inside = None
        elif inside is None or inside["piece"] not in pieces:
            out.append(line)
    if inside is not None:
        raise BuildError(f"{where}: BEGIN GRADED PIECE {inside['piece']} without END")
    return "\n".join(out), found


def marked_pieces(library: Path = LIBRARY) -> dict[str, set]:
    """piece -> the modules (relative paths) that mark it."""
    out: dict[str, set] = {}
    for path in sorted(library.rglob("*.py")):
        _, found = cut_pieces(path.read_text(encoding="utf-8"), (), str(path))
        for piece in found:
            out.setdefault(piece, set()).add(str(path.relative_to(library)))
    return out


CHECKS_STUB = '''"""The learner-facing checks do not run while grading (this is the grading build).

The grader checks every answer itself, outside this process; these stand-ins only keep
`from lessons_lib import checks` and `checks.<name>()` working, and give no verdict.
"""
import contextlib


class LibraryUsedError(RuntimeError):
    pass


class CheckResult:
    status = "not run"
    passed = False
    message = "The checks do not run while grading."

    def __init__(self, exercise=""):
        self.exercise = exercise

    def __bool__(self):
        return False

    def __repr__(self):
        return "CheckResult(not run while grading)"


def _stub(name):
    def check(*args, **kwargs):
        print("(checks do not run while grading)")
        return CheckResult(name)
    check.__name__ = name
    return check


@contextlib.contextmanager
def library_blocked(*names):
    yield


__all__ = {names!r}
for _name in __all__:
    if _name not in globals():
        globals()[_name] = _stub(_name)
'''


def build(dest: Path, pieces, library: Path = LIBRARY) -> Path:
    """Write dest/lessons_lib: the library without `pieces`, with stub checks. Returns dest."""
    dest = Path(dest)
    known = set(marked_pieces(library))
    unknown = set(pieces) - known
    if unknown:
        raise BuildError(f"no GRADED PIECE markers for {sorted(unknown)} in {library}; known: {sorted(known)}")
    target = dest / "lessons_lib"
    for path in sorted(library.rglob("*")):
        rel = path.relative_to(library)
        if "__pycache__" in rel.parts or rel.parts[0] == "checks" or path.is_dir():
            continue
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".py":
            text, _ = cut_pieces(path.read_text(encoding="utf-8"), set(pieces), str(rel))
            out.write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(path, out)
    (target / "checks").mkdir(parents=True, exist_ok=True)
    (target / "checks" / "__init__.py").write_text(
        CHECKS_STUB.replace("{names!r}", repr(list(lessons_lib.checks.__all__))), encoding="utf-8")
    return dest


# The library pieces each lesson's exercises ask the learner to write, by lesson number: cut
# from that lesson's grading build. The learner-facing checks block the same pieces by name
# (lessons_lib.checks.blocking.PIECES) in learners' own runs.
LESSON_PIECES = {
    "01": ("optimizers",),                 # one SGD step, by hand
    "02": ("optimizers", "run"),           # the stability limit, and SGD written as a loop
    "03": ("optimizers",),                 # SGD and momentum paths, by hand
    "04": ("optimizers",),                 # AdaGrad's effective lr by hand, an RMSprop step
    "05": ("optimizers",),                 # Adam's first step and three steps, by hand
    "06": ("optimizers",),                 # an AdamW step from the equations
    "07": ("schedules",),                  # warmup-cosine
    "08": ("clip_by_global_norm",),        # the clipping factor and global-norm clipping
    "09": ("loss_scaler",),                # the dynamic loss-scaler update
    "10": ("run", "memory"),               # the training loop and the state-memory table
    "11": ("logistic_hessian",),           # the logistic Hessian and its condition number
    "12": ("lr_schedulers",),              # CosineAnnealingWarmRestarts' rate
    "13": ("lean",),                       # a Lion step, one block's linear int8 quantize/dequantize
}


def pieces_for(lesson_name: str) -> tuple:
    """The pieces cut from the grading build of a lesson (by its NN_ prefix)."""
    number = lesson_name[:2]
    if number not in LESSON_PIECES:
        raise BuildError(f"course_tools.grading_build.LESSON_PIECES has no entry for {lesson_name}: say which "
                         "library pieces its exercises ask for (an empty tuple if none)")
    return LESSON_PIECES[number]
