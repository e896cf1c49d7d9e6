"""The instructor's command line: write exercises/ from solutions/, grade submissions.

    python -m course_tools generate [--solutions DIR] [--exercises DIR] [--check]
    python -m course_tools grade --out grades.csv [--timeout 120] [--solutions DIR] FILE...

Run it from the course folder (solutions/ and exercises/ are looked up there), or pass the
folders explicitly.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .autograder import grade, summary, write_csv
from .exercises import DEFAULT_EXERCISES, DEFAULT_SOLUTIONS, ClassroomError, generate

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_tools", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write exercises/ from solutions/")
    gen.add_argument("--solutions", type=Path, default=DEFAULT_SOLUTIONS)
    gen.add_argument("--exercises", type=Path, default=DEFAULT_EXERCISES)
    gen.add_argument("--check", action="store_true", help="write nothing; exit 1 if exercises/ is out of date")
    gr = sub.add_parser("grade", help="grade submitted notebooks into a CSV file")
    gr.add_argument("files", nargs="+", type=Path, metavar="FILE")
    gr.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    gr.add_argument("--timeout", type=float, default=120.0, help="seconds per notebook (default 120)")
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
        if args.timeout <= 0:
            parser.error(f"--timeout must be > 0; got {args.timeout}")
        out = args.out.resolve()
        if any(out == f.resolve() for f in args.files):
            parser.error("--out names one of the submissions; grading never writes to a submission")
        rows = grade(args.files, args.solutions, args.timeout)
        write_csv(rows, args.out)
        for line in summary(rows):
            print(line)
        print(f"{len(rows)} rows written to {args.out}")
        return 0
    except ClassroomError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

