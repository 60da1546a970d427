"""clever2sis: roster Canvas LMS from Clever.

The pipeline, one package per step: ``clever`` pulls a district into a snapshot, ``sis`` builds Canvas SIS
Import CSVs from it and zips them, ``review`` reports on a build and what changed since an older one,
``canvas`` uploads the zip (after a sign-off, for production) and follows the import.
"""

__version__ = "0.1.0"
