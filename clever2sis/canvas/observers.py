"""What an upload of observer links should know: Canvas's diffing cannot carry their removals.

Canvas's diff pairs user_observers.csv rows by ``observer_id`` alone (``identifying_fields`` in
``lib/sis/csv/user_observer_importer.rb``) and keeps one row per key (``gems/csv_diff``), so when a parent
observes several students, a removed link or a new sibling can produce no row at all. ``clever2sis sync``
sends the links in plain imports of their own (clever2sis/sync/observers.py); a build uploaded by hand keeps
user_observers.csv in its zip, and :func:`diffing_observers_warning` says what diffing does to it.
"""

from __future__ import annotations

import zipfile

from clever2sis.build_dir import BuildZip
from clever2sis.canvas.sis_import import ImportOptions
from clever2sis.sis import files


def diffing_observers_warning(build: BuildZip, options: ImportOptions) -> str | None:
    """The warning for an upload that diffs a zip holding observer links (None: nothing to warn of)."""
    if options.diffing_data_set_identifier is None:
        return None
    with zipfile.ZipFile(build.path) as archive:
        if files.USER_OBSERVERS not in archive.namelist():
            return None
    return (
        f"warning: {build.path} holds {files.USER_OBSERVERS} and the upload is diffed "
        "(diffing_data_set_identifier): Canvas pairs user_observers.csv rows by observer_id alone, so a link "
        "removed from a parent of several students, or a sibling added, may never reach Canvas. Upload "
        "without diffing, or let `clever2sis sync` send the links in imports of their own"
    )
