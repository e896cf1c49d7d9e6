"""The instructor's command line: write exercises/ from solutions/, grade submissions.

    python -m course_tools generate [--solutions DIR] [--exercises DIR] [--check]
    python -m course_tools grade --out grades.csv [--feedback DIR] [--jobs N] [--timeout 120]
                                 [--memory MB] [--max-output MB] [--no-sandbox] [--solutions DIR]
                                 FILE_OR_FOLDER...

Run it from the course folder (solutions/ and exercises/ are looked up there), or pass the
folders explicitly. A folder argument means the notebooks (*.ipynb) directly inside it.

Exit status of grade (for scripts and CI, as in GitHub Classroom):
    0   every submission was graded and every auto-graded exercise passed
    1   every submission was graded; at least one exercise failed or was not attempted
    2   nothing was graded: a usage or setup error (bad --out, no sandbox, no solutions/)
    3   at least one submission could not be graded (missing, unreadable, not a lesson's
        notebook, or its sandbox failed to start); the others were graded
    130 interrupted (Ctrl-C or SIGTERM): the CSV holds the submissions graded until then
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from .autograder import GradeOptions, grade
from .reports import Journal, feedback_text, summary, write_csv
from .exercises import DEFAULT_EXERCISES, DEFAULT_SOLUTIONS, ClassroomError, generate
from .sandbox import UNSANDBOXED_WARNING, Limits, SandboxUnavailable, check_bwrap, find_bwrap

EXIT_OK, EXIT_FAILED_TESTS, EXIT_USAGE, EXIT_UNGRADED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:      # macOS
        return os.cpu_count() or 1


def expand(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Files to grade (folders become their *.ipynb), each once; and notes on what was dropped."""
    files, seen, notes = [], {}, []
    for p in paths:
        if p.is_dir():
            found = sorted(q for q in p.glob("*.ipynb") if q.is_file())
            if not found:
                notes.append(f"{p}: a folder without notebooks (*.ipynb); nothing to grade there")
            candidates = found
        else:
            candidates = [p]
        for q in candidates:
            key = os.path.realpath(q)
            if key in seen:
                notes.append(f"{q}: given more than once (same file as {seen[key]}); graded once")
                continue
            seen[key] = q
            files.append(q)
    return files, notes


def _check_out(out: Path, files: list[Path], feedback: Path | None, parser) -> None:
    """Refuse an --out (or --feedback) that cannot be written, before anything is graded."""
    if out.suffix.lower() == ".ipynb" or any(out.resolve() == f.resolve() for f in files):
        parser.error("--out names one of the submissions; grading never writes to a submission")
    if out.is_dir():
        parser.error(f"--out {out} is a folder; give a file name such as {out / 'grades.csv'}")
    parent = out.resolve().parent
    if not parent.is_dir():
        parser.error(f"--out {out}: the folder {parent} does not exist (create it first)")
    if not os.access(parent, os.W_OK):
        parser.error(f"--out {out}: the folder {parent} is not writable")
    if out.exists() and not os.access(out, os.W_OK):
        parser.error(f"--out {out} exists and is not writable")
    if feedback is not None:
        if feedback.exists() and not feedback.is_dir():
            parser.error(f"--feedback {feedback} is a file; give a folder")
        base = feedback if feedback.exists() else feedback.resolve().parent
        if not base.is_dir() or not os.access(base, os.W_OK):
            parser.error(f"--feedback {feedback}: cannot create or write that folder")


def _feedback_names(files: list[str]) -> dict[str, str]:
    """One file name per submission: its folder (usually the student) and its notebook's name."""
    names, used = {}, set()
    for f in files:
        p = Path(f)
        base = f"{p.parent.name}__{p.stem}" if p.parent.name else p.stem
        base = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in base)
        name, k = f"{base}.txt", 2
        while name in used:
            name, k = f"{base}_{k}.txt", k + 1
        used.add(name)
        names[f] = name
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_tools", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write exercises/ from solutions/")
    gen.add_argument("--solutions", type=Path, default=DEFAULT_SOLUTIONS)
    gen.add_argument("--exercises", type=Path, default=DEFAULT_EXERCISES)
    gen.add_argument("--check", action="store_true", help="write nothing; exit 1 if exercises/ is out of date")
    gr = sub.add_parser("grade", help="grade submitted notebooks into a CSV file",
                        epilog=__doc__[__doc__.index("Exit status"):], formatter_class=argparse.RawDescriptionHelpFormatter)
    gr.add_argument("files", nargs="+", type=Path, metavar="FILE_OR_FOLDER")
    gr.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    gr.add_argument("--feedback", type=Path, help="a folder for one feedback file per submission")
    gr.add_argument("--jobs", type=int, default=_cores(), help=f"submissions graded at once (default: cores, {_cores()})")
    gr.add_argument("--timeout", type=float, default=120.0, help="wall-clock seconds per notebook (default 120)")
    gr.add_argument("--memory", type=int, default=Limits.memory_mb, help="MB of memory per notebook (default 2048)")
    gr.add_argument("--max-output", type=float, default=Limits.output_mb,
                    help="MB a notebook may print (default 4)")
    gr.add_argument("--no-sandbox", action="store_true",
                    help="run submissions without bubblewrap, with your permissions (read the warning)")
    gr.add_argument("--solutions", type=Path, default=DEFAULT_SOLUTIONS)
    args = parser.parse_args(argv)

    try:
        if args.command == "generate":
            changed = generate(args.solutions, args.exercises, check=args.check)
            if args.check:
                for p in changed:
                    print(f"out of date: {p}")
                return 1 if changed else 0
            print(f"{len(changed)} exercise notebook(s) written" + (": " + ", ".join(p.name for p in changed) if changed else ""))
            return 0
        return _grade(args, parser)
    except ClassroomError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _interruptible() -> None:
    """Ctrl-C (SIGINT) and SIGTERM stop grading cleanly, even when the shell started us with SIGINT
    ignored (a background job): the running sandboxes are killed and the CSV keeps what was graded."""
    def stop(signum, frame):
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, stop)
        except (ValueError, OSError):    # not the main thread (an embedding program)
            pass


def _grade(args, parser) -> int:
    if args.timeout <= 0:
        parser.error(f"--timeout must be > 0; got {args.timeout}")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1; got {args.jobs}")
    if args.memory < 256 or args.max_output <= 0:
        parser.error("--memory must be at least 256 (MB) and --max-output above 0")
    files, notes = expand(args.files)
    _check_out(args.out, files, args.feedback, parser)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if not files:
        print("error: no notebooks to grade", file=sys.stderr)
        return EXIT_USAGE
    if args.no_sandbox:
        bwrap = None
        print(UNSANDBOXED_WARNING, file=sys.stderr)
    else:
        try:
            bwrap = check_bwrap(find_bwrap())
        except SandboxUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    options = GradeOptions(Limits(timeout=args.timeout, memory_mb=args.memory, output_mb=args.max_output), bwrap)
    names = _feedback_names([str(f) for f in files])
    if args.feedback:
        args.feedback.mkdir(parents=True, exist_ok=True)
    journal = Journal(args.out)
    done: list = []
    _interruptible()

    def on_graded(graded):
        journal.add(graded.rows)
        done.append(graded)
        if args.feedback:
            (args.feedback / names[graded.file]).write_text(feedback_text(graded), encoding="utf-8")

    try:
        grade(files, args.solutions, options, jobs=args.jobs, on_graded=on_graded)
    except ClassroomError:
        journal.close(remove=True)
        raise
    except KeyboardInterrupt:
        order = {str(f): i for i, f in enumerate(files)}
        done.sort(key=lambda g: order[g.file])
        write_csv([r for g in done for r in g.rows], args.out)
        journal.close(remove=True)
        print(f"interrupted: {len(done)} of {len(files)} submissions graded; their rows are in {args.out}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    order = {str(f): i for i, f in enumerate(files)}
    done.sort(key=lambda g: order[g.file])
    rows = [r for g in done for r in g.rows]
    write_csv(rows, args.out)
    journal.close(remove=True)
    for line in summary(rows):
        print(line)
    print(f"{len(rows)} rows written to {args.out}" + (f"; feedback in {args.feedback}" if args.feedback else ""))
    ungraded = [g.file for g in done if g.ungraded]
    if ungraded:
        print(f"{len(ungraded)} submission(s) could not be graded: " + ", ".join(ungraded), file=sys.stderr)
        return EXIT_UNGRADED
    if any(r.points is not None and r.points < r.max_points for r in rows):
        return EXIT_FAILED_TESTS
    return EXIT_OK
