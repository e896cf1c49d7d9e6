"""Execute notebooks in place in a fresh kernel and store their outputs.

    python tools/execute_notebooks.py notebooks/02_sgd_zigzag.ipynb [...]

Run it after any change to lessons_lib or a notebook, then review `git diff`: a changed
number in a stored output is a decision, not a chore. Prints each notebook's run time.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def execute(path: Path, timeout: int = 120) -> float:
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata.setdefault("language_info", {"name": "python"})
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    elapsed = time.perf_counter() - start
    for cell in nb.cells:  # keep stored notebooks free of run-specific metadata
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
    return elapsed


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    # quizzes write progress somewhere harmless while notebooks are stored
    os.environ["LESSONS_PROGRESS_FILE"] = str(Path(tempfile.mkdtemp()) / "progress.json")
    for name in argv:
        seconds = execute(Path(name))
        print(f"{name}: executed in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
