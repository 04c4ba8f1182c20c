"""Capturing runs: the run context and the facts of the machine, user and code."""
