"""The instructor's tooling, kept out of the learner's package: exercise generation and grading.

    python -m course_tools generate      write exercises/ from solutions/
    python -m course_tools grade ...     grade submitted notebooks into a CSV file

exercises        the student notebooks from solutions/ (nbgrader's format and markers)
autograder       the trusted side: lessons from solutions/, the plan of a run, the tests, rows
sandbox          one bubblewrap sandbox per submission: namespaces, rlimits, output cap, time limit
sandbox_runner   the untrusted side, run inside the sandbox (imports nothing from here)
channel          the data that crosses between them (tagged JSON; never code, never pickle)
grading_build    lessons_lib with the pieces an exercise asks for cut out, checks stubbed
cli              the command line
"""
