"""The nightly job: pull → build → guard → upload → wait as one run, with a lock, a run directory
and history."""
