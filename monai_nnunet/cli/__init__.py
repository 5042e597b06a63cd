"""Command-line fronts: argument parsing only; the work happens in the library modules."""
