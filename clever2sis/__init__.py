"""clever2sis: roster Canvas LMS from Clever.

The pipeline, one package per step: ``clever`` pulls a district into a snapshot, ``sis`` builds Canvas SIS
Import CSVs from it and zips them, ``canvas`` uploads the zip and follows the import.
"""

__version__ = "0.1.0"
