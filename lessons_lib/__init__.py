"""lessons_lib: the helper library of the optimizer course."""
