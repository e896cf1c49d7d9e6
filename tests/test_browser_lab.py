"""A real browser: JupyterLab in headless Chromium, driven by Playwright.

The test starts JupyterLab (this project's Python) on a free loopback port, with its own
JUPYTER_* folders and a throw-away LESSONS_PROGRESS_FILE, on a temporary copy of the course.
It opens a notebook holding the SGD explorer and a quiz, runs all cells, moves the
learning-rate slider with the keyboard and checks that the readout and the plot changed, drags
it with the mouse (30 moves in about a second) and checks that the readout ends at the value the
slider shows, checks that no widget failed to render, then answers the quiz and reads the score.

Target notebook: lesson 02 once it contains the explorer (``sgd_explorer(``); until then a
small notebook generated in the temporary copy. On failure, screenshots and the server log
are saved to a temporary folder whose path is printed.

Needs /usr/bin/chromium (Debian's chromium package) and the playwright Python package (never
``playwright install``). Without them the test is skipped with "skipped: no Chromium"; with
LESSONS_REQUIRE_BROWSER=1 (CI) it fails instead. LESSONS_BROWSER_SCREENSHOTS=<folder> also
saves screenshots of a passing run.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
REQUIRE_VARIABLE = "LESSONS_REQUIRE_BROWSER"
LESSON_02 = Path("notebooks") / "02_sgd_zigzag.ipynb"
GENERATED = Path("notebooks") / "_browser_check.ipynb"
FIXTURE_QUIZZES = Path("tests") / "fixtures" / "quizzes"
WIDGET_FAILURES = ("Error displaying widget", "Model not found", "Click to show javascript error")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


# ----------------------------------------------------------------------------- availability

def missing_browser() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (apt-get install chromium chromium-driver)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright; no 'playwright install')"
    return None


def require_browser():
    reason = missing_browser()
    if reason is None:
        return
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"{REQUIRE_VARIABLE}=1 but the browser test cannot run: {reason}")
    pytest.skip(f"skipped: no Chromium ({reason})")


def lesson_02_has_explorer(root: Path = ROOT) -> bool:
    path = root / LESSON_02
    if not path.exists():
        return False
    nb = nbformat.read(path, as_version=4)
    return any(c.cell_type == "code" and "sgd_explorer(" in c.source for c in nb.cells)


# ----------------------------------------------------------------------------- the course copy

def copy_course(dest: Path) -> Path:
    """A copy of the repository without environments, caches and git data."""
    ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__", ".ipynb_checkpoints", "*.egg-info",
                                    "build", ".pytest_cache", "node_modules")
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


def prepare_notebook(course: Path, target: str) -> tuple[Path, Path]:
    """Write the notebook the browser opens; return (its path relative to course, quiz file shown)."""
    if target == "lesson02":
        rel = LESSON_02
        nb = nbformat.read(course / rel, as_version=4)
        if not any(c.cell_type == "code" and "show_quiz(" in c.source for c in nb.cells):
            nb.cells.append(nbformat.v4.new_code_cell(
                "from lessons_lib.quiz import show_quiz\nshow_quiz(\"02\")"))
        quiz = course / "lessons_lib" / "quizzes" / "02.json"
    else:
        rel = GENERATED
        quiz_dir = course / FIXTURE_QUIZZES
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_markdown_cell("# Browser check: SGD explorer and a quiz"),
            nbformat.v4.new_code_cell("from lessons_lib.explorers import sgd_explorer\nsgd_explorer()"),
            nbformat.v4.new_code_cell("from lessons_lib.explorers import compute_sgd\n"
                                      "print(compute_sgd(lr=0.018, steps=40)['readout'])"),
            nbformat.v4.new_code_cell(f"from lessons_lib.quiz import show_quiz\nshow_quiz(\"02\", quiz_dir={str(quiz_dir)!r})"),
        ]
        quiz = quiz_dir / "02.json"
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata.setdefault("language_info", {"name": "python"})
    nbformat.write(nb, course / rel)
    return rel, quiz


# ----------------------------------------------------------------------------- the server

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def project_python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


@contextmanager
def lab_server(course: Path, work: Path, timeout: float = 90):
    """JupyterLab on 127.0.0.1:<free port> with private JUPYTER_* folders; yields (base_url, token, log)."""
    token = secrets.token_hex(16)
    port = free_port()
    env = dict(os.environ)
    for name in ("config", "data", "runtime", "ipython", "mpl", "home"):
        (work / name).mkdir(parents=True, exist_ok=True)
    env.update({
        "JUPYTER_CONFIG_DIR": str(work / "config"), "JUPYTER_DATA_DIR": str(work / "data"),
        "JUPYTER_RUNTIME_DIR": str(work / "runtime"), "IPYTHONDIR": str(work / "ipython"),
        "MPLCONFIGDIR": str(work / "mpl"), "LESSONS_PROGRESS_FILE": str(work / "progress" / "progress.json"),
        "PYTHONPATH": str(course) + os.pathsep + env.get("PYTHONPATH", ""),   # the kernel imports the copy
        "JUPYTER_PLATFORM_DIRS": "1",
    })
    cmd = [project_python(), "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    # no "official Jupyter news?" toast over the page
    settings = work / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    log_path = work / "server.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=course,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {proc.returncode}; log: {log_path}\n"
                                   + log_path.read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer within {timeout} s; log: {log_path}")
            time.sleep(0.3)
        yield base, token, log_path
    finally:
        if proc.poll() is None:
            proc.terminate()                      # the server shuts its kernels down
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


# ----------------------------------------------------------------------------- the page

def wait_idle(page, timeout=120_000):
    """Wait until the status bar reads '... | Idle' and no cell shows [*]."""
    page.wait_for_function(
        """() => {
            const items = [...document.querySelectorAll('.jp-StatusBar-Widget, .jp-StatusBar-TextItem')];
            const idle = items.some(e => /\\|\\s*Idle/.test(e.textContent));
            const busy = [...document.querySelectorAll('.jp-InputPrompt')].some(e => e.textContent.includes('[*]'));
            return idle && !busy;
        }""", timeout=timeout)


def run_all_cells(page):
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).first.click()


def open_and_run(page, base, token, notebook: Path):
    page.goto(f"{base}/lab/tree/{notebook.as_posix()}?token={token}&reset", wait_until="domcontentloaded")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=90_000)
    wait_idle(page)
    run_all_cells(page)
    page.wait_for_timeout(500)
    wait_idle(page, timeout=180_000)


def widget_failures(page) -> list[str]:
    texts = page.locator(".jp-OutputArea-output").all_inner_texts()
    return [f for f in WIDGET_FAILURES for t in texts if f in t]


def answer_quiz(page, quiz: dict, wrong_last: bool = True):
    """Answer every question right except (optionally) the last; press Check; return the score text."""
    box = page.locator(".lessons-quiz").first
    box.scroll_into_view_if_needed()
    questions = quiz["questions"]
    for i, q in enumerate(questions, start=1):
        block = box.locator(f".lessons-quiz-q{i}")
        make_wrong = wrong_last and i == len(questions)
        if q["kind"] == "choice":
            index = (q["answer"] + 1) % len(q["choices"]) if make_wrong else q["answer"]
            block.locator("input[type=radio]").nth(index).check()
        else:
            value = q["answer"] + 10 * q["tolerance"] + 1 if make_wrong else q["answer"]
            field = block.locator("input[type=text]")
            field.fill(repr(float(value)))
            field.press("Tab")
    page.wait_for_timeout(300)
    box.locator(".lessons-quiz-check").click()
    score = box.locator(".lessons-quiz-score")
    score.locator("text=/Score/").wait_for(timeout=30_000)
    return score.inner_text()


@contextmanager
def browser_page(artifacts: Path, viewport=(1400, 1000)):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            console = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.console_messages = console
            yield page
        finally:
            browser.close()


# ----------------------------------------------------------------------------- the test

TARGET = "lesson02" if lesson_02_has_explorer() else "generated"


@pytest.mark.parametrize("target", [TARGET])
def test_explorer_and_quiz_in_jupyterlab(target):
    require_browser()
    work = Path(tempfile.mkdtemp(prefix="lessons-browser-"))
    artifacts = work / "artifacts"
    artifacts.mkdir()
    keep = os.environ.get("LESSONS_BROWSER_SCREENSHOTS")
    course = copy_course(work / "course")
    notebook, quiz_file = prepare_notebook(course, target)
    quiz = json.loads(quiz_file.read_text(encoding="utf-8"))
    ok = False
    try:
        with lab_server(course, work) as (base, token, log_path), browser_page(artifacts) as page:
            try:
                check_explorer_and_quiz(page, base, token, notebook, quiz, artifacts, work)
                ok = True
            except BaseException:
                try:
                    page.screenshot(path=str(artifacts / "failure.png"), full_page=True)
                    (artifacts / "console.log").write_text("\n".join(page.console_messages))
                except Exception:
                    pass
                raise
    finally:
        log = work / "server.log"
        if log.exists():
            shutil.copy(log, artifacts / "server.log")
        if keep:
            shutil.copytree(artifacts, Path(keep), dirs_exist_ok=True)
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"\nbrowser test artifacts (screenshots, server log): {artifacts}")


def check_explorer_and_quiz(page, base, token, notebook, quiz, artifacts, work):
    open_and_run(page, base, token, notebook)
    explorer = page.locator(".lessons-explorer-sgd").first
    explorer.scroll_into_view_if_needed()
    readout = explorer.locator(".lessons-readout")
    image = explorer.locator("img.lessons-plot")
    readout.locator("text=/multipliers/").wait_for(timeout=60_000)
    image.wait_for(timeout=30_000)
    assert widget_failures(page) == []
    before_text = readout.inner_text()
    before_src = image.get_attribute("src")
    before_png = image.screenshot(path=str(artifacts / "explorer_before.png"))
    assert "lr 0.018" in before_text

    handle = explorer.locator(".lessons-control-lr .noUi-handle").first
    handle.click()
    for _ in range(4):
        handle.press("ArrowRight")
    page.wait_for_function(
        "([sel, old]) => { const e = document.querySelector(sel); return e && e.innerText !== old; }",
        arg=[".lessons-explorer-sgd .lessons-readout", before_text], timeout=30_000)
    wait_idle(page)
    page.wait_for_timeout(300)
    after_text = readout.inner_text()
    after_png = image.screenshot(path=str(artifacts / "explorer_after.png"))
    assert after_text != before_text and "multipliers" in after_text
    assert "lr 0.018" not in after_text
    assert image.get_attribute("src") != before_src
    assert after_png != before_png

    # a real drag (many values in a second): the readout ends at the value the slider shows
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 31):
        page.mouse.move(x - 4 * i, y)
        page.wait_for_timeout(30)
    page.mouse.up()
    page.wait_for_function(
        """([readoutSel, sliderSel]) => {
            const r = document.querySelector(readoutSel), s = document.querySelector(sliderSel);
            const m = r && s && r.innerText.match(/^lr ([0-9.e+-]+):/);
            return Boolean(m) && Number(Number(m[1]).toPrecision(3)) === Number(s.innerText.trim());
        }""", arg=[".lessons-explorer-sgd .lessons-readout", ".lessons-explorer-sgd .lessons-control-lr .widget-readout"],
        timeout=30_000)
    dragged = readout.inner_text()
    assert dragged != after_text and "multipliers" in dragged

    score = answer_quiz(page, quiz)
    page.screenshot(path=str(artifacts / "quiz.png"))
    n = len(quiz["questions"])
    assert f"Score {n - 1}/{n}" in score
    assert widget_failures(page) == []
    progress = json.loads((work / "progress" / "progress.json").read_text(encoding="utf-8"))
    assert progress["lessons"][quiz["lesson"]]["best_correct"] == n - 1


def test_missing_chromium_skips_with_a_reason_or_fails_when_required(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv(REQUIRE_VARIABLE, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"^skipped: no Chromium \("):
        require_browser()
    monkeypatch.setenv(REQUIRE_VARIABLE, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_VARIABLE}=1 but the browser test cannot run"):
        require_browser()


def test_target_is_lesson_02_once_it_has_the_explorer(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(1)")]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / LESSON_02)
    assert not lesson_02_has_explorer(tmp_path)
    nb.cells.append(nbformat.v4.new_code_cell("# NBVAL_IGNORE_OUTPUT\nfrom lessons_lib.explorers import sgd_explorer\n"
                                              "sgd_explorer()"))
    nbformat.write(nb, tmp_path / LESSON_02)
    assert lesson_02_has_explorer(tmp_path)
