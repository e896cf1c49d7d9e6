"""The instructor's tooling, kept out of the learner's package: exercise generation and grading.

    python -m course_tools generate      write exercises/ from solutions/
    python -m course_tools grade ...     grade submitted notebooks into a CSV file
"""
