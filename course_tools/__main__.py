"""python -m course_tools: the instructor's tools (see course_tools.cli)."""
import sys

from .cli import main

sys.exit(main())
