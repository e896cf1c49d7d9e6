"""The prose guard: every number a lesson's text quotes is printed by that lesson.

nbval fails when a stored output drifts; this fails when the text that quotes an output goes
stale, or quotes a number no cell prints. A number in a lesson's markdown (or in its quiz's
prompts, explanations, correct choices and numeric answers) is *supported* when

  (a) a stored text output of the same notebook prints it, exactly or as the rounding of a
      printed number to the digits the prose quotes ("0.17" is supported by a printed 0.168,
      "300" by a printed 297: one significant digit), or
  (b) it is a parameter or constant in a code cell's source (comments excluded), or
  (c) it is listed in tests/prose_allowlist.json with a reason.

Integers 0-10 are exempt unless they make a claim ("factor of 3", "3 times", "3x", "3%").
Vague magnitudes ("thousands of times", "orders of magnitude") are always flagged: quote the
printed number instead. The guard also checks each lesson's section order.

    python tests/prose_guard.py notebooks/05_adam.ipynb [...]     # list the problems
"""
from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWLIST = ROOT / "tests" / "prose_allowlist.json"
QUIZZES = ROOT / "lessons_lib" / "quizzes"

NUMBER = re.compile(r"(?<![\w.^_])\d+(?:\.\d+)?(?:[eE][-+−]?\d+)?(?:\s*%)?(?![\w.]*\w)")
CLAIM_AFTER = re.compile(r"^\s*(?:%|×(?!\s*\d)|times\b(?!\s*\d)|-?fold\b|standard (?:deviations?|errors?)\b|sigma\b|σ)")
WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())}
WORDS.update(twenty=20, thirty=30, fifty=50, hundred=100, thousand=1000)
NUMBER_WORD = re.compile(r"\b(" + "|".join(WORDS) + r")(?=\s*(?:times\b|-?fold\b|standard (?:deviations?|errors?)\b))",
                         re.IGNORECASE)
MATH = re.compile(r"\$\$.+?\$\$|\$[^$]+\$", re.DOTALL)
OPERATOR = re.compile(r"\\times|\\cdot|\\frac|\\tfrac|\\sqrt|[-+*/^·×−]")
POWER_OF_TEN = re.compile(r"(?:(\d+(?:\.\d+)?)\s*(?:\\times|\\cdot|×)\s*)?10\^\{?([-−]?\d+)\}?")
CLAIM_BEFORE = re.compile(r"factor of\s*(?:about\s*|roughly\s*|~\s*)?$")
VAGUE = re.compile(r"\b(?:hundreds|thousands|millions|billions)\s+of\s+times\b|\borders?\s+of\s+magnitude\b"
                   r"|\bmany times (?:lower|higher|smaller|larger|faster|slower)\b", re.IGNORECASE)
# text that contains digits but quotes no measurement: links, file names, lesson references
NOT_A_CLAIM = [
    re.compile(r"\|\s*\d\d\s*\|(?=\s*\[[^\]]*\]\(\d\d_)"),                 # a lesson map row's number
    re.compile(r"\]\([^)]*\)"),                                   # link targets
    re.compile(r"https?://\S+"),
    re.compile(r"`?[\w./-]*\d\d_\w+(?:\.ipynb|\.json)?`?"),        # notebook and file names
    re.compile(r"\b[Ll]essons?\s+\d+(?:\s*(?:-|–|,|and|to|or)\s*\d+)*"),
    re.compile(r"\b(?:[Qq]uiz|[Cc]ells?|[Ss]ection)\s+\d+(?:\s*(?:-|–|,|and|to)\s*\d+)*"),
    re.compile(r"\d+-bit\b"),
    re.compile(r"^#\s.*$", re.MULTILINE),                          # the lesson's title line
    re.compile(r"^##\s+\d+\.", re.MULTILINE),                      # section numbers
    re.compile(r"\b(?:PyTorch|torch|Python|numpy|NumPy|JupyterLab|ipywidgets)\s+[\d.]+x?\b"),
]

# a factor or percentage must be printed by one of the code cells around the text that quotes
# it (the Summary may quote the whole lesson): conclusions stay next to their evidence
NEAR_BEFORE, NEAR_AFTER = 3, 1

LESSON_ORDER = ["What you will be able to do", None, "Explore", "Summary", "Check yourself", "Exercises"]


@dataclass(frozen=True)
class Quoted:
    text: str          # as written, e.g. "0.17" or "3%"
    value: float
    step: float        # half a unit in the last quoted digit: the rounding tolerance
    percent: bool
    magnitude: bool = False   # "10^{-15}": only the order of magnitude is quoted


@dataclass(frozen=True)
class Problem:
    notebook: str
    where: str         # "cell 14" or "quiz 04 question 'bias'"
    quote: str         # the number or phrase
    context: str
    reason: str

    def __str__(self):
        return f"{self.notebook} {self.where}: {self.quote!r} {self.reason}\n    ...{self.context}..."


def _quoted(token: str) -> Quoted:
    percent = token.rstrip().endswith("%")
    text = token.rstrip("% ").replace("−", "-")
    mantissa, _, exponent = text.lower().partition("e")
    scale = 10.0 ** int(exponent) if exponent else 1.0
    if "." in mantissa:
        unit = 10.0 ** -len(mantissa.split(".")[1])
    else:
        trailing = len(mantissa) - len(mantissa.rstrip("0")) if mantissa.strip("0") else 0
        unit = 10.0 ** trailing
    return Quoted(token.strip(), float(text), 0.5 * unit * scale * (1 + 1e-9), percent)


def numbers_in(text: str) -> list[Quoted]:
    return [_quoted(m.group(0)) for m in NUMBER.finditer(text)]


def _strip_comments(source: str) -> str:
    return "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in source.splitlines())


class Evidence:
    """The numbers a notebook prints (stored text outputs) and the numbers its code sets."""

    def __init__(self, printed: str, code: str):
        self.printed = numbers_in(printed)
        self.code = numbers_in(_strip_comments(code))

    def supports(self, q: Quoted, claim: bool = False) -> bool:
        """A factor ("3 times") needs a printed number, a percentage a printed percentage."""
        candidates = self.printed if (claim or q.percent) else self.printed + self.code
        for n in candidates:
            if q.percent and not n.percent:   # a quoted percentage needs a printed percentage
                continue
            if claim and "." not in n.text and n.value <= 10:
                continue                      # a printed count such as "step 3" is not a factor
            if q.magnitude:
                if n.value and -0.5 <= math.log10(abs(n.value)) - math.log10(q.value) < 1:
                    return True
            elif abs(abs(n.value) - abs(q.value)) <= q.step:
                return True
        return False


def _cells(nb: dict) -> list[dict]:
    cells = []
    for c in nb["cells"]:
        source = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        if "text_outputs" in c:            # the fixture format: outputs already reduced to text
            texts = c["text_outputs"]
        else:
            texts = []
            for out in c.get("outputs", []):
                if out.get("output_type") == "stream":
                    texts.append("".join(out["text"]))
                elif "data" in out and "text/plain" in out["data"]:
                    t = out["data"]["text/plain"]
                    texts.append(t if isinstance(t, str) else "".join(t))
        cells.append({"type": c["cell_type"], "source": source, "outputs": "\n".join(texts)})
    return cells


def load_notebook(path: Path) -> tuple[str, list[dict]]:
    """(lesson stem, cells) for a stored .ipynb or a fixture .json of the same notebook."""
    return path.stem, _cells(json.loads(path.read_text(encoding="utf-8")))


def _allowed(stem: str, allowlist: dict) -> set[str]:
    entries = allowlist.get("every lesson", []) + allowlist.get(stem, [])
    return {e["number"] for e in entries}


def _context(text: str, start: int, end: int) -> str:
    return " ".join(text[max(0, start - 60):end + 40].split())


def _mask(text: str, span: re.Match) -> str:
    return text[:span.start()] + " " * (span.end() - span.start()) + text[span.end():]


def check_text(stem: str, where: str, text: str, evidence: Evidence, allowed: set[str],
               used: set[tuple[str, str]], near: Evidence | None = None) -> list[Problem]:
    """Problems with the numbers of one text; a factor or percentage must be printed `near` it."""
    near = evidence if near is None else near
    problems = []
    quoted = []   # (start, end, Quoted, claim)
    masked = re.sub(r"(?<=\d)x(?!\w)", "×", text)          # "3x" is "3×"
    for pattern in NOT_A_CLAIM:
        masked = pattern.sub(lambda m: " " * len(m.group(0)), masked)
    for m in VAGUE.finditer(masked):
        problems.append(Problem(stem, where, m.group(0), _context(text, m.start(), m.end()),
                                "is a vague magnitude: quote the printed number instead"))
    for m in NUMBER_WORD.finditer(masked):
        quoted.append((m.start(), m.end(), Quoted(m.group(0), float(WORDS[m.group(1).lower()]), 0.5, False), True))
    for span in list(MATH.finditer(masked)):
        body = span.group(0)
        if OPERATOR.search(body) and re.search(r"=|\\approx|≈", body):
            masked = _mask(masked, span)      # a worked derivation: the learner checks it by hand
            continue
        for p in POWER_OF_TEN.finditer(body):
            start, end = span.start() + p.start(), span.start() + p.end()
            if p.group(1):
                q = _quoted(f"{p.group(1)}e{p.group(2).replace('−', '-')}")
            else:
                q = Quoted(p.group(0), 10.0 ** int(p.group(2).replace("−", "-")), 0.0, False, magnitude=True)
            quoted.append((start, end, q, False))
            masked = masked[:start] + " " * (end - start) + masked[end:]
        inner = re.sub(r"[\^_]\{[^}]*\}|[\^_]\d", lambda m: " " * len(m.group(0)), masked[span.start():span.end()])
        masked = masked[:span.start()] + inner + masked[span.end():]
    for m in NUMBER.finditer(masked):
        q = _quoted(m.group(0))
        claim = bool(CLAIM_AFTER.match(masked[m.end():]) or CLAIM_BEFORE.search(masked[:m.start()]))
        if q.value.is_integer() and q.value <= 10 and not q.percent and not claim:
            continue
        quoted.append((m.start(), m.end(), q, claim))
    for start, end, q, claim in sorted(quoted, key=lambda item: item[0]):
        key = q.text.replace(" ", "")
        if key in allowed:
            used.add((stem, key))
            continue
        if (near if (claim or q.percent) else evidence).supports(q, claim):
            continue
        what = "a printed number (a factor or percentage is a measurement)" if (claim or q.percent) else \
            "any printed number or code constant"
        problems.append(Problem(stem, where, q.text, _context(text, start, end),
                                f"matches {what} of this notebook"))
    return problems


def quiz_texts(stem: str, quiz_dir: Path = QUIZZES) -> list[tuple[str, str]]:
    """The quiz prose that must be true: prompts, explanations, correct choices, numeric answers."""
    path = quiz_dir / f"{stem[:2]}.json"
    if not path.exists():
        return []
    out = []
    for q in json.loads(path.read_text(encoding="utf-8"))["questions"]:
        where = f"quiz {stem[:2]} question '{q['id']}'"
        parts = [q["prompt"], q["explanation"]]
        if q["kind"] == "choice":
            parts.append(q["choices"][q["answer"]])
        else:
            parts.append(repr(q["answer"]))
        out.append((where, "\n".join(parts)))
    return out


def structure_problems(stem: str, cells: list[dict]) -> list[Problem]:
    """Lessons 01+: goals, the argument, Explore (if any), Summary, Check yourself, Exercises."""
    if stem.startswith("00"):
        return []
    headings = []   # (cell index, title, starts its cell)
    for i, c in enumerate(cells):
        if c["type"] != "markdown":
            continue
        lines = c["source"].strip().splitlines()
        for n, line in enumerate(lines):
            if line.startswith("## "):
                headings.append((i, line[3:].strip(), n == 0 or (n > 0 and lines[0].startswith("# ")
                                                                 and all(not l.startswith("## ") for l in lines[1:n]))))
    titles = [t for _, t, _ in headings]
    problems = []

    def fail(msg):
        problems.append(Problem(stem, "structure", " | ".join(titles), "", msg))

    fixed = ["Summary", "Check yourself", "Exercises"]
    if not titles or titles[0] != LESSON_ORDER[0]:
        fail(f"must open with '## {LESSON_ORDER[0]}'")
    if titles[-3:] != fixed:
        fail("must end with '## Summary', '## Check yourself', '## Exercises' in that order")
    argument = titles[1:-3]
    if "Explore" in argument:
        if argument[-1] != "Explore" or argument.count("Explore") > 1:
            fail("'## Explore' must come once, after the whole argument, just before '## Summary'")
        argument = argument[:-1]
    if not argument:
        fail("has no argument sections between the goals and the summary")
    for i, title, own_cell in headings:
        if title in fixed + ["Explore"] and not own_cell:
            fail(f"'## {title}' must start its own markdown cell (cell {i})")
    if "Explore" in titles:
        start = next(i for i, t, _ in headings if t == "Explore")
        end = next(i for i, t, _ in headings if t == "Summary")
        for i in range(start + 1, end):
            c = cells[i]
            if c["type"] == "code" and "explorer" not in c["source"] and "compute_" not in c["source"]:
                fail(f"cell {i} in the Explore section runs no explorer: the argument belongs before Explore")
    return problems


def check_notebook(path: Path, allowlist: dict | None = None, quiz_dir: Path = QUIZZES,
                   used: set | None = None) -> list[Problem]:
    allowlist = json.loads(ALLOWLIST.read_text(encoding="utf-8")) if allowlist is None else allowlist
    used = set() if used is None else used
    stem, cells = load_notebook(path)
    evidence = Evidence("\n".join(c["outputs"] for c in cells),
                        "\n".join(c["source"] for c in cells if c["type"] == "code"))
    allowed = _allowed(stem, allowlist)
    problems = []
    code_cells = [i for i, c in enumerate(cells) if c["type"] == "code"]
    for i, c in enumerate(cells):
        if c["type"] != "markdown":
            continue
        before = [j for j in code_cells if j < i][-NEAR_BEFORE:]
        after = [j for j in code_cells if j > i][:NEAR_AFTER]
        near = None if "## Summary" in c["source"] else Evidence(
            "\n".join(cells[j]["outputs"] for j in before + after), "")
        problems += check_text(stem, f"cell {i}", c["source"], evidence, allowed, used, near)
    for where, text in quiz_texts(stem, quiz_dir):
        problems += check_text(stem, where, text, evidence, allowed, used)
    return problems + structure_problems(stem, cells)


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    total = 0
    for path in paths:
        problems = check_notebook(path)
        total += len(problems)
        for p in problems:
            print(p)
    print(f"{total} problem(s) in {len(paths)} notebook(s)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
