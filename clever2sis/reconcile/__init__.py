"""Reconcile: compare what Canvas holds (its provisioning report) with what the product sent, and fix drift.

Diffing compares CSVs, not Canvas: a row Canvas rejected once is never sent again while it stays the same,
and what people change by hand in Canvas is never seen. Reconcile reads Canvas itself:

* :mod:`~clever2sis.reconcile.report` reads a provisioning report (the zip Canvas makes, or its CSVs),
  streamed in blocks into compact Arrow columns;
* :mod:`~clever2sis.reconcile.expected` reads what Canvas should hold: the present rows of a build;
* :mod:`~clever2sis.reconcile.drift` compares the two, file by file, with vectorised joins;
* :mod:`~clever2sis.reconcile.fix` turns the drift into a small corrective build directory;
* :mod:`~clever2sis.reconcile.run` does the whole of ``clever2sis reconcile``, and
  :mod:`~clever2sis.reconcile.nightly` the weekly one inside ``clever2sis sync``.
"""
