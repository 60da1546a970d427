"""Held schools: which rows of a build belong to a school, and what a school the guard holds sends tonight.

A school is a Canvas sub-account (accounts.csv). Its rows are

* its account row, its courses (courses.csv ``account_id``), their sections and their enrollments, and
  the admins.csv rows of its account;
* the people who belong to it and to no other school: users whose enrollments are all in its courses,
  and contacts who observe only its students (user_observers.csv); with their observer links.

People of several schools belong to none of them alone: a student moving between two schools, a teacher
or a co-taught class at two campuses. Users without an enrollment or an observed student (staff, school
admins) have no rows that tie them to a school; the schools Clever last listed for them are kept in the
applied state's identities (identities.csv ``account_ids``: a staff member's ``roles.staff.schools``, a
student's or teacher's ``school``, as Canvas account ids). District admins have none.

When the guard holds a school (:func:`apply_holds`), tonight's rows of that school are replaced by the rows
Canvas holds (the applied state's present rows), so nothing of it is removed or changed in Canvas tonight:

* its account, courses, sections and enrollments are sent as Canvas has them; tonight's rows of those
  courses and sections (Clever's, broken or not) are left out, as are tonight's new courses of the school;
* a person who appears tonight in a school that is not held keeps tonight's user row (updated as Clever
  says), while their enrollments in the held school's courses are sent as Canvas has them;
* a person who appears tonight only in held schools, or whom Canvas holds in a held school and who is in
  no other school tonight, is held whole: their user row, every enrollment and admins.csv row of theirs
  (in other schools too: tonight's data says nothing sound about them) and their observer links are sent
  as Canvas has them; a person new tonight only in a held school waits; a contact who observes only held
  people is held with them;
* a person Canvas holds without an enrollment or an observed student who is not in tonight's users.csv,
  and whose recorded schools include a held school, is held whole too (:func:`vanished_staff`): their
  user row and admins.csv rows as Canvas has them. One held school among several is enough, the others
  sound: the export that lost the school may have lost them with it, and they are removed once it
  recovers if Clever really dropped them. Such a person still in tonight's data is tonight's; one whose
  schools are all sound (or who has none recorded) is removed as tonight says;
* the admins.csv rows of a held school's account are Canvas's, whoever holds them (a district admin of
  every school too), and tonight's are left out.

Everything here is pure: frames in, frames out, vectorised over the rows.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from clever2sis.build_dir import Frames, empty_frames
from clever2sis.sis import files
from clever2sis.sis.arrow import arrow_strings, string_series
from clever2sis.sis.builders.identities import ACCOUNT_SEPARATOR
from clever2sis.sync.changes import among

STUDENT_ROLE = "student"


@dataclass(frozen=True)
class SchoolSets:
    """The ids of one side's rows that belong to some schools: their courses and sections, the people in
    them (``in_schools``) and the people who also appear elsewhere (``elsewhere``)."""

    courses: pd.Series
    sections: pd.Series
    in_schools: pd.Series
    elsewhere: pd.Series


def _ids(values: pd.Series) -> pd.Series:
    """The distinct ids of ``values`` (Arrow's unique)."""
    return string_series(pc.drop_null(pc.unique(arrow_strings(values))))


def _union(*parts: pd.Series) -> pd.Series:
    return _ids(pd.concat([part.astype("string") for part in parts], ignore_index=True))


def _observers_of(frames: Mapping[str, pd.DataFrame], students: pd.Series) -> pd.Series:
    links = frames[files.USER_OBSERVERS]
    if links.empty or students.empty:
        return pd.Series([], dtype="string")
    observers: pd.Series = links.loc[among(links["student_id"], students), "observer_id"]
    return observers


def school_sets(frames: Mapping[str, pd.DataFrame], accounts: Collection[str]) -> SchoolSets:
    """The courses, sections and people of ``frames`` in the schools ``accounts`` (see the module doc)."""
    courses = frames[files.COURSES]
    in_courses = courses.loc[among(courses["account_id"], accounts), "course_id"]
    sections = frames[files.SECTIONS]
    in_sections = sections.loc[among(sections["course_id"], in_courses), "section_id"]
    enrollments = frames[files.ENROLLMENTS]
    inside = among(enrollments["course_id"], in_courses) | among(enrollments["section_id"], in_sections)
    people = enrollments.loc[inside, "user_id"]
    others = enrollments.loc[~inside, "user_id"]
    return SchoolSets(
        courses=_ids(in_courses),
        sections=_ids(in_sections),
        in_schools=_union(people, _observers_of(frames, people)),
        elsewhere=_union(others, _observers_of(frames, others)),
    )


def _held_masks(
    frames: Mapping[str, pd.DataFrame],
    accounts: Collection[str],
    courses: pd.Series,
    sections: pd.Series,
    people: pd.Series,
) -> dict[str, np.ndarray]:
    """Per school file, which rows of ``frames`` belong to the held schools (by the ids given)."""
    masks = {}
    frame = frames[files.ACCOUNTS]
    masks[files.ACCOUNTS] = among(frame["account_id"], accounts)
    frame = frames[files.COURSES]
    masks[files.COURSES] = among(frame["course_id"], courses)
    frame = frames[files.SECTIONS]
    masks[files.SECTIONS] = among(frame["section_id"], sections) | among(frame["course_id"], courses)
    frame = frames[files.ENROLLMENTS]
    masks[files.ENROLLMENTS] = (
        among(frame["course_id"], courses)
        | among(frame["section_id"], sections)
        | among(frame["user_id"], people)
    )
    frame = frames[files.USERS]
    masks[files.USERS] = among(frame["user_id"], people)
    frame = frames[files.USER_OBSERVERS]
    masks[files.USER_OBSERVERS] = among(frame["student_id"], people) | among(frame["observer_id"], people)
    frame = frames[files.ADMINS]
    masks[files.ADMINS] = among(frame["account_id"], accounts) | among(frame["user_id"], people)
    return masks


def school_rows(frames: Mapping[str, pd.DataFrame], accounts: Collection[str]) -> Frames:
    """The rows of ``frames`` that belong to the schools ``accounts`` (the people only in them)."""
    found = school_sets(frames, accounts)
    people = found.in_schools.loc[~among(found.in_schools, found.elsewhere)]
    masks = _held_masks(frames, accounts, found.courses, found.sections, people)
    out = empty_frames()
    for name, mask in masks.items():
        out[name] = frames[name].loc[mask].reset_index(drop=True)
    return out


def without_schools(frames: Mapping[str, pd.DataFrame], accounts: Collection[str]) -> Frames:
    """``frames`` without the rows of the schools ``accounts`` (:func:`school_rows`)."""
    if not accounts:
        return dict(frames)
    found = school_sets(frames, accounts)
    people = found.in_schools.loc[~among(found.in_schools, found.elsewhere)]
    masks = _held_masks(frames, accounts, found.courses, found.sections, people)
    return {
        name: frame.loc[~masks[name]].reset_index(drop=True) if name in masks else frame
        for name, frame in frames.items()
    }


@dataclass(frozen=True)
class Held:
    """Tonight's frames with the held schools' rows as Canvas has them, and those rows (``rows``)."""

    frames: Frames
    rows: Frames


def vanished_staff(
    canvas: Mapping[str, pd.DataFrame],
    tonight: Mapping[str, pd.DataFrame],
    accounts: Collection[str],
    identities: pd.DataFrame | None,
) -> pd.Series:
    """The user_ids of the people ``canvas`` holds without an enrollment or an observed student (staff,
    school admins) who are not in ``tonight``'s users.csv and whose schools, as ``identities`` (the
    identities.csv rows of the users Canvas holds) recorded them, include one of ``accounts``.

    One held school among several is enough: the export that lost the school may have lost them with it.
    """
    if identities is None or not accounts:
        return pd.Series([], dtype="string")
    users = canvas[files.USERS]["user_id"]
    gone = users.loc[~among(users, tonight[files.USERS]["user_id"])]
    if gone.empty:
        return pd.Series([], dtype="string")
    tied = _union(canvas[files.ENROLLMENTS]["user_id"], canvas[files.USER_OBSERVERS]["observer_id"])
    gone = gone.loc[~among(gone, tied)]
    known = identities.loc[among(identities["user_id"], gone)]
    if known.empty:
        return pd.Series([], dtype="string")
    schools = pc.split_pattern(pc.fill_null(arrow_strings(known["account_ids"]), ""), ACCOUNT_SEPARATOR)
    owners = pc.list_parent_indices(schools).to_numpy()
    held = among(string_series(pc.list_flatten(schools)), accounts)
    return _ids(known["user_id"].iloc[np.unique(owners[held])])


def apply_holds(
    canvas: Mapping[str, pd.DataFrame],
    tonight: Mapping[str, pd.DataFrame],
    accounts: Collection[str],
    identities: pd.DataFrame | None = None,
) -> Held:
    """Tonight's frames with the schools ``accounts`` as ``canvas`` (what Canvas holds) has them.

    A school's courses and sections are those of either side, so a course the school had, or has tonight,
    is sent as Canvas has it (or not at all when Canvas has no such course). People: see the module doc;
    ``identities`` are those of the users Canvas holds (the applied state's; None: a state kept before
    identities.csv existed, so no staff member is known to belong to a school).
    """
    if not accounts:
        return Held(frames=dict(tonight), rows=empty_frames())
    before, after = school_sets(canvas, accounts), school_sets(tonight, accounts)
    courses = _union(before.courses, after.courses)
    sections = _union(before.sections, after.sections)
    candidates = _union(before.in_schools, after.in_schools)
    people = _union(
        candidates.loc[~among(candidates, after.elsewhere)],
        vanished_staff(canvas, tonight, accounts, identities),
    )
    drop = _held_masks(tonight, accounts, courses, sections, people)
    take = _held_masks(canvas, accounts, courses, sections, people)
    frames = dict(tonight)
    rows = empty_frames()
    for name in drop:
        kept = canvas[name].loc[take[name]]
        columns = list(tonight[name].columns)
        rows[name] = kept.reindex(columns=columns, fill_value="").reset_index(drop=True)
        frames[name] = pd.concat([tonight[name].loc[~drop[name]], rows[name]], ignore_index=True)
    return Held(frames=frames, rows=rows)
