"""Benchmarks that compare methods side by side on one model and budget (``fer-nla bench``)."""
