"""What a sync run is asked to do (:class:`SyncJob`), and the import options that follow from it.

Apart from the pipeline so that ``clever2sis doctor`` can check a job (:func:`check_job`) without loading
what a run needs (pandas, Arrow).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from clever2sis.canvas.sis_import import BATCH_ENROLLMENT_DROP_STATUSES, ImportOptions
from clever2sis.config import BuildSettings, CanvasProfile, SyncSettings, UploadSettings, needs_approval
from clever2sis.errors import ApprovalRequiredError, ConfigError, UsageError

DIFFING_IDENTIFIER_TEMPLATE = "clever2sis:{district_id}:{profile}"


@dataclass(frozen=True)
class SyncJob:
    """Everything a run needs from the config: where to upload, how to build, and the sync's own settings."""

    profile: CanvasProfile
    sync: SyncSettings
    build: BuildSettings
    upload: UploadSettings


def import_options(job: SyncJob, *, district_id: str, remaster: bool) -> ImportOptions:
    """The import options of a run: ``[upload]``'s, with the safe defaults of the deletion mode filled in."""
    base = job.upload.options
    sync = job.sync
    mode = sync.deletion_mode
    batch = base.batch_mode or base.multi_term_batch_mode
    diffing = base.diffing_data_set_identifier is not None
    if mode != "batch" and batch:
        raise ConfigError(f'[upload] turns batch mode on; set [sync] deletion_mode = "batch" (now {mode!r})')
    if mode != "diffing" and diffing:
        raise ConfigError(f'[upload] turns diffing on; set [sync] deletion_mode = "diffing" (now {mode!r})')
    if remaster and mode != "diffing":
        raise UsageError(f"--remaster applies to diffing only; [sync] deletion_mode is {mode!r}")
    if mode == "diffing":
        identifier = (
            base.diffing_data_set_identifier
            or sync.diffing_data_set_identifier
            or DIFFING_IDENTIFIER_TEMPLATE.format(district_id=district_id, profile=job.profile.name)
        )
        options = dataclasses.replace(
            base,
            diffing_data_set_identifier=identifier,
            diffing_drop_status=base.diffing_drop_status or sync.enrollment_remove_status,
            diffing_user_remove_status=base.diffing_user_remove_status or sync.user_remove_status,
            change_threshold=base.change_threshold or sync.change_threshold,
            diffing_remaster_data_set=base.diffing_remaster_data_set or remaster,
        )
    elif mode == "batch":
        drop = base.batch_mode_enrollment_drop_status or sync.enrollment_remove_status
        if drop not in BATCH_ENROLLMENT_DROP_STATUSES:
            raise ConfigError(
                f"[sync] enrollment_remove_status = {drop!r} does not exist in batch mode; use one of "
                f"{', '.join(BATCH_ENROLLMENT_DROP_STATUSES)}"
            )
        options = dataclasses.replace(
            base,
            batch_mode=True,
            multi_term_batch_mode=base.batch_mode_term_id is None,
            batch_mode_enrollment_drop_status=drop,
            change_threshold=base.change_threshold or sync.change_threshold,
        )
    else:
        options = base
    options.validate()
    return options


def check_job(job: SyncJob, *, remaster: bool = False) -> None:
    """Refuse, before anything starts, a job that could never upload (bad options, a sign-off gate)."""
    import_options(job, district_id="district", remaster=remaster)
    if needs_approval(job.profile.name, job.profile.require_approval):
        raise ApprovalRequiredError(
            f"profile {job.profile.name!r} needs a person's sign-off for every upload, and sync uploads "
            f"unattended; to let the sync's guard stand in for it, set require_approval = false in "
            f"[profiles.{job.profile.name}]"
        )
