"""Pipelines: whole experiments built from the stages below (what `lrt demo` runs)."""
