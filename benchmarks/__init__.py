"""Performance benchmarks of the course (run with `make bench`)."""
