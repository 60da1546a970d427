"""A synthetic Clever district: a snapshot shaped exactly like a real v3.0 pull, at any size, from a seed.

``generate_district`` writes the same six collections a pull writes (see :mod:`clever2sis.clever.snapshot`;
their columnar copy is made from the JSONL when the snapshot is finished), with Clever's record shapes and
field order, realistic proportions (per 1,000,000 students: ~1,000,000 contacts, ~60,000 teachers, ~15,000
staff, ~50 district admins, ~2,000 schools, ~250,000 sections and ~6.5 enrollments per student) and, on
purpose, the quirks real districts have (duplicate term names, sections without a term or course, dangling
ids, co-teachers, cross-school enrollments, multi-role users, awkward names and emails). ``QUIRKS`` in the
tests lists what a build must survive.

Everything random comes from one ``numpy.random.Generator(PCG64(seed))``, drawn in a fixed order, so a seed
always gives byte-identical files. Choices are made on whole numpy arrays (names, schools, rosters by
sorting and splitting the enrollment arrays); Python touches each record only to build and serialise it.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from clever2sis.clever.snapshot import SnapshotWriter
from clever2sis.errors import SnapshotError, UsageError
from clever2sis.progress import Progress, silent

IntArray = npt.NDArray[np.int64]
StrArray = npt.NDArray[Any]  # numpy StringDType

MIN_STUDENTS = 50
_STR = np.dtypes.StringDType()
_GRADES = ("Kindergarten", *(str(grade) for grade in range(1, 13)))
_BAND_OF_GRADE = np.array([0] * 6 + [1] * 3 + [2] * 4, dtype=np.int64)  # elementary, middle, high
_SLOTS = 8  # class periods a student can be enrolled in

# Per-million-student proportions, and the minimum each count gets in a small district.
_PER_STUDENT = {"schools": 0.002, "teachers": 0.06, "staff": 0.015, "admins": 0.00005}
_MINIMUM = {"schools": 3, "teachers": 6, "staff": 3, "admins": 2}

# ---------------------------------------------------------------------------------------------------
# Name pools. "Name=slug" gives the ASCII form used in emails and usernames where stripping accents
# is not enough (CJK, Hangul, Đ, ß).


def _listing(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(","))


_CULTURES: tuple[tuple[str, float, str, str], ...] = (
    (
        "anglo",
        0.42,
        "James Olivia Liam Emma Noah Ava Elijah Charlotte William Sophia Benjamin Amelia Lucas Harper Henry "
        "Evelyn Theodore Abigail Jack Emily Owen Ella Wyatt Scarlett Caleb Grace Isaac Lily Nathan Hannah "
        "Jayden Zoë DeShawn Aaliyah Malik Imani Tyrone Keisha Mary-Kate D'Andre Brooklyn Jaxon Riley Avery",
        "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Jackson Martin "
        "Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott Green Baker Adams "
        "Nelson Hill Campbell Mitchell Roberts Carter Phillips Evans Turner Parker Collins Smith-Jones "
        "Washington Brooks Bennett",
    ),
    (
        "hispanic",
        0.25,
        "José María Sofía Mateo Santiago Valentina Camila Diego Lucía Alejandro Ximena Iñaki Begoña Jesús "
        "Ángel Guadalupe Andrés Mónica Raúl Inés Joaquín Martín Renata Emiliano",
        "García Rodríguez Martínez Hernández López González Pérez Sánchez Ramírez Torres Flores Rivera Gómez "
        "Díaz Cruz Morales Reyes Gutiérrez Ortiz Muñoz Peña Castañeda Ibáñez Núñez Mendoza",
    ),
    (
        "german",
        0.06,
        "Jürgen Lukas Jonas Lena Lea Anna Felix Maximilian Jörg Günter Käthe Mia",
        "Müller Schäfer Schröder Bäcker Groß=gross Weiß=weiss Köhler Fischer Wagner Becker Hoffmann Krüger",
    ),
    (
        "french",
        0.05,
        "François Chloé Renée Hélène Zoé Noël Amélie Étienne Léa Jérôme Anaïs Gaël",
        "Lefèvre Dupont Bérubé Côté Gagnon Roy Lévesque Fontaine D'Amboise Boucher Thériault",
    ),
    (
        "irish",
        0.06,
        "Siobhán Seán Aoife Niamh Ciarán Saoirse Declan Róisín Patrick Bríd Eoin",
        "O'Brien O'Connor O'Sullivan McCarthy MacNeil Kelly Murphy Gallagher O'Neill Ó_Briain=obriain",
    ),
    (
        "vietnamese",
        0.08,
        "Minh Thảo Đức=duc Huy Linh Phương Tuấn Ngọc Hạnh Quang Bảo Trâm",
        "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng=dang Bùi Đỗ=do",
    ),
    (
        "east-asian",
        0.08,
        "伟=wei 芳=fang 秀英=xiuying 静=jing 翔太=shota 陽菜=hina 结衣=yui 美玲=meiling "
        "Wei Mei Jun Hiroshi Yuki 서연=seoyeon 민준=minjun",
        "王=wang 李=li 張=zhang 陈=chen 刘=liu 黄=huang 佐藤=sato 鈴木=suzuki 高橋=takahashi "
        "김=kim 박=park Chen Wang Li Kim Park Tanaka",
    ),
)

_STREETS = _listing(
    "Oak Street, Maple Avenue, Cedar Lane, Pine Road, Elm Street, Lakeview Drive, Hillcrest Road, Sunset "
    "Boulevard, River Road, Mill Street, Church Street, Highland Avenue, Washington Street, Park Avenue, "
    "Jefferson Way, Willow Court, Cherry Lane, Meadow Drive, Ridge Road, Valley View Road, Camino Real, "
    "Avenida del Sol, Chestnut Street, Birch Way, Spring Street"
)
_PLACES = _listing(
    "Riverbend, Cedar Falls, Lakeside, Maple Grove, Pine Hills, Fairview, Oakridge, Brookhaven, Silver "
    "Creek, Willow Springs, Eastwood, Northgate, Clearwater, Stonebridge, Harborview, Sunnyvale, Westfield, "
    "Greenfield, Highland Park, Mesa Verde, Canyon Ridge, Prairie View, Red Rock, Bayside, Glenwood, "
    "Kingsport, Ashford, Fox Hollow, Sierra Vista, Linden"
)
_NAMESAKES = _listing(
    "Lincoln, Washington, Roosevelt, Jefferson, Kennedy, Franklin, Douglass, Tubman, Chávez, Mandela, "
    "Earhart, Curie, Carver, Keller, King, Parks, Sotomayor, Ochoa, Hawking, Einstein, Whitman, Dickinson, "
    "Twain, Hughes, Angelou, O'Keeffe, Ride, Jemison, Muir, Thoreau"
)
_STAFF_TITLES = (
    ("Counselor", "Student Services"),
    ("Librarian", "Library Media"),
    ("School Nurse", "Health Services"),
    ("Instructional Coach", "Curriculum & Instruction"),
    ("Technology Specialist", "Technology"),
    ("Front Office Manager", "Administration"),
    ("Assistant Principal", "Administration"),
    ("Speech-Language Pathologist", "Special Education"),
    ("Paraprofessional", "Special Education"),
    ("Registrar", "Administration"),
)
_ADMIN_TITLES = (
    "Superintendent",
    "Deputy Superintendent",
    "Director of Technology",
    "Director of Curriculum",
    "Data Manager",
    "Chief Academic Officer",
)
_TEACHER_TITLES = (
    ("Classroom Teacher", "Grade Level Teacher", "Reading Specialist", "Teacher"),
    ("Teacher", "Math Teacher", "Science Teacher", "English Teacher", "Social Studies Teacher"),
    (
        "Teacher",
        "Math Teacher",
        "English Teacher",
        "Science Teacher",
        "World Languages Teacher",
        "CTE Teacher",
    ),
)

# ---------------------------------------------------------------------------------------------------
# Course catalogue: per grade band, per slot (class period), the course options offered. "{g}" is the
# grade's label ("Kindergarten", "Grade 3"); high-school slots list one option list per grade 9..12.

_Option = tuple[str, str, bool]  # name, Clever subject, semester-long?
_ELEMENTARY: tuple[tuple[_Option, ...], ...] = (
    (("{g} Homeroom", "homeroom/advisory", False),),
    (("{g} Reading", "english/language arts", False),),
    (("{g} Writing", "english/language arts", False),),
    (("{g} Math", "math", False),),
    (("{g} Science", "science", False),),
    (("{g} Social Studies", "social studies", False),),
    (("{g} Art", "arts and music", True), ("{g} Music", "arts and music", True)),
    (("{g} Physical Education", "PE and health", False), ("{g} Library & Media", "other", True)),
)
_MIDDLE: tuple[tuple[_Option, ...], ...] = (
    (("Advisory {n}", "homeroom/advisory", False),),
    (("English {n}", "english/language arts", False),),
    (("Math {n}", "math", False), ("Accelerated Math {n}", "math", False)),
    (("Science {n}", "science", False),),
    (("Social Studies {n}", "social studies", False),),
    (("PE {n}", "PE and health", False), ("Health {n}", "PE and health", True)),
    (
        ("Spanish I", "language", False),
        ("Band", "arts and music", False),
        ("Art {n}", "arts and music", True),
    ),
    (
        ("Computer Science Discoveries", "technology and engineering", True),
        ("Orchestra", "arts and music", False),
        ("Study Skills", "interventions/online learning", True),
    ),
)
_HIGH: tuple[tuple[tuple[_Option, ...], ...], ...] = (
    tuple(
        (
            ("English {n}", "english/language arts", False),
            ("Honors English {n}", "english/language arts", False),
        )
        for _ in range(4)
    ),
    (
        (("Algebra I", "math", False), ("Geometry", "math", False)),
        (("Geometry", "math", False), ("Algebra II", "math", False)),
        (("Algebra II", "math", False), ("Pre-Calculus", "math", False)),
        (("Pre-Calculus", "math", False), ("AP Calculus AB", "math", False), ("Statistics", "math", True)),
    ),
    (
        (("Biology", "science", False),),
        (("Chemistry", "science", False), ("Earth & Space Science", "science", False)),
        (("Physics", "science", False), ("Environmental Science", "science", False)),
        (("AP Biology", "science", False), ("Anatomy & Physiology", "science", False)),
    ),
    (
        (("World Geography", "social studies", False),),
        (("World History", "social studies", False), ("AP World History", "social studies", False)),
        (("U.S. History", "social studies", False), ("AP U.S. History", "social studies", False)),
        (("Government", "social studies", True), ("Economics", "social studies", True)),
    ),
    tuple(
        ((f"Spanish {level}", "language", False), (f"French {level}", "language", False))
        for level in ("I", "II", "III", "IV")
    ),
    (
        (("Physical Education", "PE and health", False),),
        (("Health", "PE and health", True), ("Physical Education", "PE and health", False)),
        (("Weight Training", "PE and health", True), ("Yoga & Wellness", "PE and health", True)),
        (("Weight Training", "PE and health", True), ("Yoga & Wellness", "PE and health", True)),
    ),
    tuple(
        (
            ("Art I", "arts and music", True),
            ("Concert Choir", "arts and music", False),
            ("Computer Science Principles", "technology and engineering", False),
            ("Journalism", "english/language arts", True),
        )
        for _ in range(4)
    ),
    tuple(
        (
            ("Advisory {n}", "homeroom/advisory", False),
            ("Women's Studies", "social studies", True),
            ("Credit Recovery", "interventions/online learning", False),
        )
        for _ in range(4)
    ),
)


@dataclass(frozen=True)
class _Course:
    name: str
    number: str
    subject: str
    semester: bool
    grade: int


@dataclass(frozen=True)
class _Catalogue:
    """Courses in id order; ``offset[grade, slot]``/``count[grade, slot]`` index the options of a period."""

    courses: tuple[_Course, ...]
    offset: IntArray
    count: IntArray


def _catalogue() -> _Catalogue:
    courses: list[_Course] = []
    offset = np.zeros((len(_GRADES), _SLOTS), dtype=np.int64)
    count = np.zeros((len(_GRADES), _SLOTS), dtype=np.int64)
    for grade in range(len(_GRADES)):
        band = int(_BAND_OF_GRADE[grade])
        label = "Kindergarten" if grade == 0 else f"Grade {grade}"
        for slot in range(_SLOTS):
            if band == 0:
                options = _ELEMENTARY[slot]
            elif band == 1:
                options = _MIDDLE[slot]
            else:
                options = _HIGH[slot][grade - 9]
            offset[grade, slot] = len(courses)
            count[grade, slot] = len(options)
            for choice, (name, subject, semester) in enumerate(options):
                courses.append(
                    _Course(
                        name=name.format(g=label, n=grade),
                        number=f"{band + 1}{slot + 1}{grade:02d}{choice}",
                        subject=subject,
                        semester=semester,
                        grade=grade,
                    )
                )
    return _Catalogue(tuple(courses), offset, count)


# ---------------------------------------------------------------------------------------------------
# Small vectorised helpers


def _slug(name: str) -> str:
    """Lower-case ASCII letters only: what an SIS makes of a name for usernames and emails."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return "".join(char for char in folded.lower() if char.isalnum())


@dataclass(frozen=True)
class _Pool:
    """Names of every culture concatenated; ``offset[c]``/``count[c]`` select culture ``c``'s names."""

    names: StrArray
    slugs: StrArray
    offset: IntArray
    count: IntArray

    @classmethod
    def build(cls, per_culture: Sequence[str]) -> _Pool:
        names: list[str] = []
        slugs: list[str] = []
        offset: list[int] = []
        for words in per_culture:
            offset.append(len(names))
            for word in words.split():
                name, _, slug = word.partition("=")
                name = name.replace("_", " ")
                names.append(name)
                slugs.append(slug or _slug(name))
        return cls(
            np.array(names, dtype=_STR),
            np.array(slugs, dtype=_STR),
            np.array(offset, dtype=np.int64),
            np.diff(np.array([*offset, len(names)], dtype=np.int64)).astype(np.int64),
        )

    def pick(self, rng: np.random.Generator, culture: IntArray) -> IntArray:
        """One name index per element, uniform within that element's culture."""
        return self.offset[culture] + (rng.random(culture.size) * self.count[culture]).astype(np.int64)

    def index(self, name: str) -> int:
        return int(np.flatnonzero(self.names == name)[0])


_FIRST = _Pool.build([culture[2] for culture in _CULTURES])
_LAST = _Pool.build([culture[3] for culture in _CULTURES])
_CULTURE_WEIGHTS = np.array([culture[1] for culture in _CULTURES]) / sum(c[1] for c in _CULTURES)


def _cat(*parts: StrArray | str) -> StrArray:
    """Element-wise string concatenation of arrays and constants."""
    out: StrArray = np.asarray(parts[0], dtype=_STR)
    for part in parts[1:]:
        out = np.strings.add(out, np.asarray(part, dtype=_STR))
    return out


def _digits(values: npt.NDArray[np.integer[Any]], width: int = 0) -> StrArray:
    text: StrArray = np.asarray(values).astype(_STR)
    return np.strings.zfill(text, width) if width else text


def _group_offsets(sorted_keys: IntArray, groups: int) -> IntArray:
    """Start of each group 0..groups-1 (and the end) in an array sorted by group key."""
    return np.searchsorted(sorted_keys, np.arange(groups + 1)).astype(np.int64)


def _timestamps(epoch_ms: IntArray) -> list[str]:
    """Clever's ``YYYY-MM-DDTHH:MM:SS.SSSZ`` for each epoch millisecond."""
    text = np.datetime_as_string(epoch_ms.astype("datetime64[ms]"), unit="ms", timezone="UTC")
    return list(text.tolist())


class _Ids:
    """ObjectId-like ids: 8 hex of creation second, 10 hex of "machine", 6 hex of counter.

    Creation seconds are spread over ``[start, end]`` and strictly increasing (the span is widened when
    there are more records than seconds), so ids are unique and ascending in generation order, as Clever
    serves them, whatever the counter does.
    """

    _HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng

    def make(self, n: int, start: int, end: int) -> tuple[list[str], IntArray]:
        """``n`` ids created between epoch seconds ``start`` and ``end``; also their creation seconds."""
        span = max(end - start, n)
        seconds = (start + (np.arange(n, dtype=np.int64) * span) // max(n, 1)).astype(np.int64)
        machine = self._rng.integers(0, 256, 5, dtype=np.uint8)
        counter = (int(self._rng.integers(0, 1 << 23)) + np.arange(n, dtype=np.int64)) & 0xFFFFFF
        raw = np.empty((n, 12), dtype=np.uint8)
        for byte in range(4):
            raw[:, byte] = (seconds >> (8 * (3 - byte))) & 0xFF
        raw[:, 4:9] = machine
        for byte in range(3):
            raw[:, 9 + byte] = (counter >> (8 * (2 - byte))) & 0xFF
        text = np.empty((n, 24), dtype=np.uint8)
        text[:, 0::2] = self._HEX[raw >> 4]
        text[:, 1::2] = self._HEX[raw & 0x0F]
        return list(text.view("S24").ravel().astype("U24").tolist()), seconds


def _choose(
    rng: np.random.Generator, values: Sequence[str], n: int, p: Sequence[float] | None = None
) -> list[str]:
    picked = rng.choice(len(values), size=n, p=None if p is None else np.asarray(p) / sum(p))
    return list(np.asarray(values, dtype=object)[picked].tolist())


def _scaled(kind: str, students: int) -> int:
    return max(_MINIMUM[kind], round(students * _PER_STUDENT[kind]))


def _parse_as_of(as_of: str) -> dt.datetime:
    try:
        moment = dt.datetime.strptime(as_of, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise UsageError(f"as_of {as_of!r} is not a UTC timestamp like 2026-09-01T06:00:00Z") from None
    return moment


# ---------------------------------------------------------------------------------------------------
# The generator


def generate_district(
    dest: Path,
    *,
    students: int,
    seed: int,
    as_of: str = "2026-09-01T06:00:00Z",
    replace: bool = False,
    progress: Progress = silent,
) -> dict[str, Any]:
    """Write a synthetic district of ``students`` students to the snapshot directory ``dest``.

    The same ``students``, ``seed`` and ``as_of`` always give byte-identical files. ``as_of`` is the
    moment of the pretend pull: every record is created before it and the school year is the one it falls
    in. Without ``replace`` an existing ``dest`` is a :class:`UsageError`. Returns the manifest.
    """
    if students < MIN_STUDENTS:
        raise UsageError(f"--students must be at least {MIN_STUDENTS} (got {students})")
    if seed < 0:
        raise UsageError(f"--seed must be zero or positive (got {seed})")
    moment = _parse_as_of(as_of)
    if dest.exists() and not replace:
        raise UsageError(f"{dest} already exists; use --force to replace it")
    district = _District(students=students, seed=seed, moment=moment, progress=progress)
    progress(f"generating a district of {students:,} students (seed {seed})")
    try:
        with SnapshotWriter(dest, api_version="v3.0", source="sample", replace=replace) as snap:
            for name, records in district.collections():
                file = snap.collection(name)
                file.write_raw(orjson.dumps(record) for record in records)
                progress(f"{name}: {file.records:,} records")
            manifest = snap.finish(
                district=district.record,
                started_at=as_of,
                finished_at=as_of,
                extra={"generator": {"students": students, "seed": seed}},
            )
    except FileExistsError:
        raise UsageError(f"{dest} appeared while generating; nothing was replaced (use --force)") from None
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        raise SnapshotError(
            f"cannot write the snapshot to {dest}: {error.strerror or error}{where}"
        ) from None
    progress(f"wrote {dest}")
    return manifest


class _District:
    """All arrays of one synthetic district, drawn in a fixed order at construction; records on demand."""

    def __init__(self, *, students: int, seed: int, moment: dt.datetime, progress: Progress) -> None:
        self.rng = rng = np.random.Generator(np.random.PCG64(seed))
        self.progress = progress
        self.n = students
        self.now = int(moment.timestamp())
        self.year = moment.year if moment.month >= 7 else moment.year - 1
        self.ids = _Ids(rng)
        self.catalogue = _catalogue()
        place = _PLACES[int(rng.integers(len(_PLACES)))]
        self.place = place
        self.domain = f"{_slug(place)}usd.example.org"
        self.student_domain = f"students.{self.domain}"
        self.city_state = (place, ("CA", "TX", "NY", "FL", "IL", "WA", "OR", "CO")[int(rng.integers(8))])
        self._schools()
        self._people()
        self._enrollments()
        self._staffing()
        self.record = self._district_record()

    # -- schools, terms, courses -------------------------------------------------------------------

    def _schools(self) -> None:
        rng = self.rng
        n = _scaled("schools", self.n)
        middle = max(1, round(n * 0.2))
        high = max(1, round(n * 0.18))
        band = np.repeat(np.arange(3, dtype=np.int64), [n - middle - high, middle, high])
        self.school_band = band
        self.n_schools = n
        ids, seconds = self.ids.make(n, self.now - 900 * 86400, self.now - 800 * 86400)
        self.school_ids = ids
        self.school_created = seconds
        # Each school's partner hosts its cross-school classes: a school of the same band if any.
        order = np.argsort(band, kind="stable")
        starts = _group_offsets(band[order], 3)
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n) - starts[band[order]]
        size = np.diff(starts)[band]
        same_band = order[starts[band] + (rank + 1) % size]
        self.partner_same_band = size > 1
        self.partner = np.where(self.partner_same_band, same_band, (np.arange(n) + 1) % n)
        self.band_schools = order
        self.band_starts = starts
        self.variant_schools = np.sort(rng.choice(n, size=max(1, n // 100), replace=False))

    def _terms(self) -> list[tuple[str, str, str]]:
        """(name, start, end) of each term: district-wide ones, then one school-specific calendar."""
        y, z = self.year, self.year + 1
        return [
            ("Semester 1", f"{y}-08-17", f"{z}-01-15"),
            ("Semester 2", f"{z}-01-19", f"{z}-06-11"),
            ("Year", f"{y}-08-17", f"{z}-06-11"),
            ("Semester 1", f"{y}-08-24", f"{z}-01-22"),
            ("Semester 2", f"{z}-01-26", f"{z}-06-18"),
            ("Year", f"{y}-08-24", f"{z}-06-18"),
        ]

    # -- people ------------------------------------------------------------------------------------

    def _people(self) -> None:
        rng, n = self.rng, self.n
        # Families: siblings share a last name and an address; contacts are the family's adults.
        sizes = rng.choice(np.array([1, 2, 3], dtype=np.int64), size=n, p=[0.8, 0.16, 0.04])
        families = int(np.searchsorted(np.cumsum(sizes), n)) + 1
        family = rng.permutation(np.repeat(np.arange(families, dtype=np.int64), sizes[:families])[:n])
        self.family = family
        self.n_families = families
        culture = rng.choice(len(_CULTURES), size=families, p=_CULTURE_WEIGHTS).astype(np.int64)
        family_last = _LAST.pick(rng, culture)
        # A few families get the names a test looks for, whatever the seed.
        for position, name in enumerate(("O'Brien", "Muñoz", "Müller", "Nguyễn", "王")):
            family_last[position] = _LAST.index(name)
        self.family_culture = culture
        self.family_last = family_last
        self.family_address = _cat(
            _digits(rng.integers(100, 9999, families)),
            " ",
            np.array(_STREETS, dtype=_STR)[rng.integers(0, len(_STREETS), families)],
        )
        self.family_zip = _digits(rng.integers(10000, 99999, families))

        self.grade = rng.integers(0, len(_GRADES), n).astype(np.int64)
        band = _BAND_OF_GRADE[self.grade]
        counts = np.diff(self.band_starts)[band]
        pick = (rng.random(n) * counts).astype(np.int64)
        self.school = self.band_schools[self.band_starts[band] + pick]
        self.student_first = _FIRST.pick(rng, culture[family])
        self.student_middle_kind = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
        self.student_middle = _FIRST.pick(rng, culture[family])
        self.student_initial = rng.integers(0, 26, n)

        # Contacts: 1-3 adults per family, the first ones parents, the others emergency contacts.
        per_family = rng.choice(np.array([1, 2, 3], dtype=np.int64), size=families, p=[0.8, 0.16, 0.04])
        self.contact_family = np.repeat(np.arange(families, dtype=np.int64), per_family)
        starts = np.concatenate([[0], np.cumsum(per_family)[:-1]])
        self.contact_rank = np.arange(self.contact_family.size) - np.repeat(starts, per_family)
        contact_culture = culture[self.contact_family]
        self.contact_first = _FIRST.pick(rng, contact_culture)
        self.contact_last = np.where(
            self.contact_rank < 2, family_last[self.contact_family], _LAST.pick(rng, contact_culture)
        )
        self.n_contacts = self.contact_family.size

        self.n_admins = _scaled("admins", n)
        self.n_staff = _scaled("staff", n)

    def _employees(self, count: int) -> tuple[IntArray, IntArray]:
        culture = self.rng.choice(len(_CULTURES), size=count, p=_CULTURE_WEIGHTS).astype(np.int64)
        return _FIRST.pick(self.rng, culture), _LAST.pick(self.rng, culture)

    # -- enrollments and sections -------------------------------------------------------------------

    def _enrollments(self) -> None:
        rng, n, cat = self.rng, self.n, self.catalogue
        per_student = rng.integers(5, _SLOTS + 1, n)  # 5..8 classes, 6.5 on average
        student = np.repeat(np.arange(n, dtype=np.int64), per_student)
        slot = np.arange(student.size) - np.repeat(np.cumsum(per_student) - per_student, per_student)
        grade = self.grade[student]
        school = self.school[student]
        # A few students take a class at a partner school of the same band, mixed into its rosters.
        cross = (rng.random(student.size) < 0.005) & self.partner_same_band[school]
        school = np.where(cross, self.partner[school], school)
        choice = (rng.random(student.size) * cat.count[grade, slot]).astype(np.int64)
        course = cat.offset[grade, slot] + choice
        n_courses = len(cat.courses)
        # Roster = one (school, course) group cut into sections of 20-35: sort by group, then randomly.
        key = school * n_courses + course
        order = np.lexsort((rng.random(student.size), key))
        key, student = key[order], student[order]
        groups, first, size = np.unique(key, return_index=True, return_counts=True)
        target = rng.integers(20, 36, groups.size)
        chunks = np.maximum(1, np.rint(size / target).astype(np.int64))
        group_of = np.repeat(np.arange(groups.size), size)
        position = np.arange(key.size) - first[group_of]
        section = (np.cumsum(chunks) - chunks)[group_of] + position * chunks[group_of] // size[group_of]
        n_sections = int(chunks.sum())
        order = np.lexsort((student, section))
        self.roster = student[order]
        self.roster_start = _group_offsets(section[order], n_sections)
        self.n_sections = n_sections
        self.section_school = np.repeat(groups // n_courses, chunks)
        # And a few whole classes meet at another campus than their students' school (also possible in a
        # small district, whose bands have a single school each).
        moved = rng.random(n_sections) < 0.005
        moved[rng.integers(n_sections)] = True
        self.section_school = np.where(moved, self.partner[self.section_school], self.section_school)
        self.section_course = np.repeat(groups % n_courses, chunks)
        self.section_chunk = np.arange(n_sections) - np.repeat(np.cumsum(chunks) - chunks, chunks)
        self.n_enrollments = int(student.size)

    def _staffing(self) -> None:
        rng, schools = self.rng, self.n_schools
        # Teachers per school follow its number of sections (each teaches ~4), at least one each.
        per_school = np.bincount(self.section_school, minlength=schools)
        wanted = _scaled("teachers", self.n)
        teachers = np.maximum(1, np.rint(wanted * per_school / per_school.sum()).astype(np.int64))
        self.n_teachers = int(teachers.sum())
        self.teacher_school = rng.permutation(np.repeat(np.arange(schools, dtype=np.int64), teachers))
        by_school = np.argsort(self.teacher_school, kind="stable")
        start = np.concatenate([[0], np.cumsum(teachers)[:-1]])
        s = self.section_school
        by_section_school = np.argsort(s, kind="stable")
        rank = np.empty(self.n_sections, dtype=np.int64)
        rank[by_section_school] = (
            np.arange(self.n_sections) - (np.cumsum(per_school) - per_school)[s[by_section_school]]
        )
        local = rank * teachers[s] // per_school[s]
        size = rng.choice(
            np.array([1, 2, 3, 4], dtype=np.int64), size=self.n_sections, p=[0.8, 0.13, 0.05, 0.02]
        )
        size = np.minimum(size, teachers[s])
        extra = np.arange(4, dtype=np.int64)[None, :]
        slots = by_school[start[s][:, None] + (local[:, None] + extra) % teachers[s][:, None]]
        self.section_teachers = np.where(extra < size[:, None], slots, -1)
        self.teacher_second_school = np.where(
            rng.random(self.n_teachers) < 0.03, self.partner[self.teacher_school], -1
        )
        self.teacher_first, self.teacher_last = self._employees(self.n_teachers)
        self.staff_first, self.staff_last = self._employees(self.n_staff)
        self.admin_first, self.admin_last = self._employees(self.n_admins)

    # -- records -----------------------------------------------------------------------------------

    def collections(self) -> Iterator[tuple[str, Iterator[dict[str, Any]]]]:
        """(collection name, records in id order) for each snapshot collection, users last."""
        # Users are drawn first: the district names its contact, a section its primary teacher.
        users = self._user_records()
        yield "districts", iter([self.record])
        yield "schools", self._school_records()
        yield "terms", self._term_records()
        yield "courses", self._course_records()
        yield "sections", self._section_records()
        yield "users", users

    def _modified(self, created: IntArray) -> tuple[list[str], list[str]]:
        """Clever timestamps for creation (the id's second) and a later last modification."""
        ms = self.rng.integers(0, 1000, created.size)
        created_ms = created * 1000 + ms
        modified_ms = created_ms + (self.rng.random(created.size) * (self.now * 1000 - created_ms)).astype(
            np.int64
        )
        return _timestamps(created_ms), _timestamps(modified_ms)

    def _district_record(self) -> dict[str, Any]:
        rng = self.rng
        self.district_id = self.ids.make(1, self.now - 3000 * 86400, self.now - 3000 * 86400)[0][0]
        name = f"{self.place} Unified School District"
        launch = dt.date(self.year - 4, 7, 1) + dt.timedelta(days=int(rng.integers(0, 60)))
        self.district_name = name
        self._admin_contact_id = self.ids.make(1, self.now - 2900 * 86400, self.now - 2900 * 86400)[0][0]
        return {
            "login_methods": ["Clever Badges", "Clever Passwords", "Google"],
            "sis_type": "sftp",
            "state": "success",
            "error": "",
            "last_sync": _timestamps(np.array([(self.now - 2 * 3600) * 1000 + 417]))[0],
            "portal_url": f"https://clever.com/in/{_slug(self.place)}usd",
            "district_contact": {},  # filled in once the admins are named, see _user_records
            "name": name,
            "launch_date": launch.isoformat(),
            "id": self.district_id,
        }

    def _school_records(self) -> Iterator[dict[str, Any]]:
        rng, n = self.rng, self.n_schools
        created, modified = self._modified(self.school_created)
        kinds = ("Elementary School", "Middle School", "High School")
        lows = ("Kindergarten", "6", "9")
        highs = ("5", "8", "12")
        namesake = rng.permutation(len(_NAMESAKES) * ((n // len(_NAMESAKES)) + 1))[:n]
        principal_first, principal_last = self._employees(n)
        principal = _cat(_FIRST.names[principal_first], " ", _LAST.names[principal_last]).tolist()
        principal_mail = _cat(
            _FIRST.slugs[principal_first], ".", _LAST.slugs[principal_last], "@", self.domain
        ).tolist()
        prek = rng.random(n) < 0.3
        street = rng.integers(0, len(_STREETS), n)
        numbers = rng.integers(100, 9999, (n, 4))
        for i in range(n):
            band = int(self.school_band[i])
            campus = int(namesake[i]) // len(_NAMESAKES)
            name = f"{_NAMESAKES[int(namesake[i]) % len(_NAMESAKES)]} {kinds[band]}"
            if campus:
                name += f" Campus {campus + 1}"
            number = f"{band + 1}{i + 1:04d}"
            yield {
                "created": created[i],
                "district": self.district_id,
                "ext": {"charter_school": "Y" if i % 17 == 16 else "N"},
                "high_grade": highs[band],
                "last_modified": modified[i],
                "location": {
                    "address": f"{numbers[i, 0]} {_STREETS[int(street[i])]}",
                    "city": self.city_state[0],
                    "state": self.city_state[1],
                    "zip": f"{numbers[i, 1] % 90000 + 10000}",
                },
                "low_grade": "PreKindergarten" if band == 0 and prek[i] else lows[band],
                "name": name,
                "nces_id": f"06{numbers[i, 2] % 10000:04d}{i + 1:06d}",
                "phone": f"(555) {numbers[i, 3] % 900 + 100}-{i % 10000:04d}",
                "principal": {"email": principal_mail[i], "name": principal[i]},
                "school_number": number,
                "sis_id": number,
                "state_id": f"{700000 + i * 7 + int(numbers[i, 1] % 7)}",
                "id": self.school_ids[i],
            }

    def _term_records(self) -> Iterator[dict[str, Any]]:
        terms = self._terms()
        ids, _ = self.ids.make(len(terms), self.now - 40 * 86400, self.now - 39 * 86400)
        self.term_ids = ids
        for (name, start, end), term_id in zip(terms, ids, strict=True):
            yield {
                "district": self.district_id,
                "end_date": end,
                "name": name,
                "start_date": start,
                "id": term_id,
            }

    def _course_records(self) -> Iterator[dict[str, Any]]:
        courses = self.catalogue.courses
        ids, _ = self.ids.make(len(courses), self.now - 38 * 86400, self.now - 37 * 86400)
        self.course_ids = ids
        for course, course_id in zip(courses, ids, strict=True):
            yield {
                "district": self.district_id,
                "name": course.name,
                "number": course.number,
                "id": course_id,
            }

    def _section_records(self) -> Iterator[dict[str, Any]]:
        """Each section in id order, with its roster and teachers (the odd ones: :meth:`_section_quirks`).

        Every random draw happens before the first section is yielded, in a fixed order: moving one draw
        changes every value drawn after it, and so the sample's bytes.
        """
        rng, n = self.rng, self.n_sections
        ids, seconds = self.ids.make(n, self.now - 30 * 86400, self.now - 10 * 86400)
        created, modified = self._modified(seconds)
        ghosts, _ = self.ids.make(3, self.now + 86400, self.now + 3 * 86400)
        ghost_term, ghost_course, ghost_student = ghosts
        courses = self.catalogue.courses
        periods = self._section_periods()
        period = periods.tolist()
        primary = self.section_teachers[:, 0]
        course_names = np.array([course.name for course in courses], dtype=_STR)
        names = _cat(
            course_names[self.section_course], " - ", self.teacher_last_names[primary], " - ", periods
        )
        name_list: list[str] = names.tolist()
        sis_ids = _digits(10000 + np.arange(n) * 3 + rng.integers(0, 3, n)).tolist()
        numbers = np.where(rng.random(n) < 0.1, "", _digits(self.section_chunk + 1)).tolist()
        rooms = _digits(rng.integers(1, 240, n)).tolist()
        subjects = [course.subject for course in courses]
        term_of, course_of, dangling = self._section_quirks(name_list, sis_ids, ghost_term, ghost_course)
        user_ids = self.user_ids
        student_ids = user_ids[self.student_base : self.student_base + self.n]
        teacher_ids = user_ids[self.teacher_base : self.teacher_base + self.n_teachers]
        teachers = self.section_teachers.tolist()
        school = self.section_school.tolist()
        course_index = self.section_course.tolist()
        roster_start = self.roster_start.tolist()
        roster = self.roster
        grades = np.array([course.grade for course in courses])[self.section_course].tolist()
        terms = self._section_terms().tolist()
        for i in range(n):
            roster_ids = [student_ids[s] for s in roster[roster_start[i] : roster_start[i + 1]].tolist()]
            if i == dangling:
                roster_ids.append(ghost_student)
            section_teachers = [teacher_ids[t] for t in teachers[i] if t >= 0]
            record: dict[str, Any] = {
                "course": course_of.get(i, self.course_ids[course_index[i]]),
                "created": created[i],
                "district": self.district_id,
                "ext": {"classroom": rooms[i]},
                "grade": _GRADES[grades[i]],
                "last_modified": modified[i],
                "name": name_list[i],
                "period": period[i],
                "school": self.school_ids[school[i]],
                "section_number": numbers[i],
                "sis_id": sis_ids[i],
                "students": roster_ids,
                "subject": subjects[course_index[i]],
                "teacher": section_teachers[0],
                "teachers": section_teachers,
                "term_id": term_of.get(i, self.term_ids[terms[i]]),
                "id": ids[i],
            }
            if record["course"] is None:
                del record["course"]
            if record["term_id"] is None:
                del record["term_id"]
            yield record

    def _section_terms(self) -> IntArray:
        """Each section's term (an index into :meth:`_terms`): S1/S2 alternate, a year-long course "Year".

        The schools on the variant calendar take its second set of terms.
        """
        semester = np.array([course.semester for course in self.catalogue.courses])[self.section_course]
        term = np.where(semester, self.section_chunk % 2, 2)
        term = np.where(np.isin(self.section_school, self.variant_schools), term + 3, term)
        return term.astype(np.int64)

    def _section_periods(self) -> StrArray:
        """Each section's period: the class slot (1-based) its course is offered in."""
        cat = self.catalogue
        slot = np.zeros(len(cat.courses), dtype=np.int64)
        for grade in range(len(_GRADES)):
            for s in range(_SLOTS):
                slot[cat.offset[grade, s] : cat.offset[grade, s] + cat.count[grade, s]] = s
        return _digits(slot[self.section_course] + 1)

    def _section_quirks(
        self, name_list: list[str], sis_ids: list[str], ghost_term: str, ghost_course: str
    ) -> tuple[dict[int, str | None], dict[int, str | None], int]:
        """The term and course of the sections that break the rules (None: no key), and the dangling roster.

        On distinct random sections: no term key, term "", no course key, course "", a dangling term, a
        dangling course, a dangling student (the returned index). Further sections (1%) have no term, as
        some SIS exports have many. A section without a course is named after its SIS id, as Clever does.
        """
        rng, n = self.rng, self.n_sections
        quirky = rng.choice(n, size=7, replace=False).tolist()
        term_of: dict[int, str | None] = {
            int(quirky[0]): None,
            int(quirky[1]): "",
            int(quirky[4]): ghost_term,
        }
        course_of: dict[int, str | None] = {
            int(quirky[2]): None,
            int(quirky[3]): "",
            int(quirky[5]): ghost_course,
        }
        for i in (quirky[2], quirky[3]):
            name_list[i] = f"Section {sis_ids[i]}"
        for i in np.flatnonzero(rng.random(n) < 0.01).tolist():
            term_of.setdefault(i, None)
        return term_of, course_of, int(quirky[6])

    def _user_records(self) -> Iterator[dict[str, Any]]:
        """Draw every user field now (sections need teacher names); return the records as an iterator."""
        n = self.n
        total = self.n_admins + self.n_staff + self.n_teachers + n + self.n_contacts
        ids, seconds = self.ids.make(total, self.now - 420 * 86400, self.now - 45 * 86400)
        legacy, _ = self.ids.make(total, self.now - 2500 * 86400, self.now - 2000 * 86400)
        created, modified = self._modified(seconds)
        self.user_ids = ids
        self.staff_base = self.n_admins
        self.teacher_base = self.staff_base + self.n_staff
        self.student_base = self.teacher_base + self.n_teachers
        self.contact_base = self.student_base + n
        self.teacher_last_names = _LAST.names[self.teacher_last]
        common = (ids, created, modified)

        admins = self._admin_users(common, legacy)
        staff = self._staff_users(common)
        teachers = self._teacher_users(common, legacy)
        students = self._student_users(common)
        contacts = self._contact_users(common, legacy)
        self.progress(f"drew {total:,} users and {self.n_sections:,} sections")

        def chained() -> Iterator[dict[str, Any]]:
            yield from admins
            yield from staff
            yield from teachers
            yield from students
            yield from contacts

        return chained()

    def _employee_fields(
        self, first: IntArray, last: IntArray, base: int, username_style: int
    ) -> tuple[list[str], list[str], list[str], list[str]]:
        """First, middle, last names, and the username that is also the email's local part."""
        count = first.size
        middle = np.where(
            self.rng.random(count) < 0.6,
            np.array(list("ABCDEFGHIJKLMNOPRSTVW"), dtype=_STR)[self.rng.integers(0, 21, count)],
            "",
        )
        number = _digits(np.arange(base, base + count))
        if username_style == 0:
            user = _cat(_FIRST.slugs[first], ".", _LAST.slugs[last], number)
        else:
            user = _cat(np.strings.slice(_FIRST.slugs[first], 0, 1), _LAST.slugs[last], number)
        return _FIRST.names[first].tolist(), middle.tolist(), _LAST.names[last].tolist(), user.tolist()

    def _user(
        self,
        user_id: str,
        created: str,
        modified: str,
        email: str | None,
        name: dict[str, str],
        roles: dict[str, Any],
    ) -> dict[str, Any]:
        """A user in Clever's field order; ``email`` None leaves the key out."""
        record: dict[str, Any] = {
            "created": created,
            "district": self.district_id,
            "email": email,
            "last_modified": modified,
            "name": name,
            "id": user_id,
            "roles": roles,
        }
        if email is None:
            del record["email"]
        return record

    def _admin_users(
        self, common: tuple[list[str], list[str], list[str]], legacy: list[str]
    ) -> list[dict[str, Any]]:
        ids, created, modified = common
        first, middle, last, user = self._employee_fields(self.admin_first, self.admin_last, 1, 0)
        titles = ["Superintendent", *_choose(self.rng, _ADMIN_TITLES[1:], self.n_admins - 1)]
        records = []
        for i in range(self.n_admins):
            name = {"first": first[i], "last": last[i], "middle": middle[i]}
            roles = {"district_admin": {"title": titles[i]}}
            records.append(
                self._user(ids[i], created[i], modified[i], f"{user[i]}@{self.domain}", name, roles)
            )
        self.record["district_contact"] = {
            "district": self.district_id,
            "email": f"{user[0]}@{self.domain}",
            "name": {"last": last[0], "first": first[0]},
            "title": titles[0],
            "id": self._admin_contact_id,
        }
        return records

    def _staff_users(self, common: tuple[list[str], list[str], list[str]]) -> list[dict[str, Any]]:
        rng, count, base = self.rng, self.n_staff, self.staff_base
        ids, created, modified = common
        first, middle, last, user = self._employee_fields(self.staff_first, self.staff_last, 100, 1)
        job = rng.integers(0, len(_STAFF_TITLES), count).tolist()
        school = rng.integers(0, self.n_schools, count)
        second = np.where(rng.random(count) < 0.2, self.partner[school], -1)
        emails: list[str | None] = _cat(np.array(user, dtype=_STR), "@", self.domain).tolist()
        emails[0] = user[0]  # quirk: an email without '@'
        emails[1] = None
        emails[2] = ""
        school_list, second_list = school.tolist(), second.tolist()
        records = []
        for i in range(count):
            own = self.school_ids[school_list[i]]
            schools = sorted({own, self.school_ids[second_list[i]]}) if second_list[i] >= 0 else [own]
            roles = {
                "staff": {
                    "credentials": {"district_username": user[i]},
                    "department": _STAFF_TITLES[job[i]][1],
                    "ext": {},
                    "schools": schools,
                    "staff_id": f"E{20000 + i}",
                    "title": _STAFF_TITLES[job[i]][0],
                }
            }
            name = {"first": first[i], "last": last[i], "middle": middle[i]}
            records.append(
                self._user(ids[base + i], created[base + i], modified[base + i], emails[i], name, roles)
            )
        return records

    def _teacher_users(
        self, common: tuple[list[str], list[str], list[str]], legacy: list[str]
    ) -> list[dict[str, Any]]:
        rng, count, base = self.rng, self.n_teachers, self.teacher_base
        ids, created, modified = common
        first, middle, last, user = self._employee_fields(self.teacher_first, self.teacher_last, 1000, 0)
        band = self.school_band[self.teacher_school]
        title_count = np.array([len(titles) for titles in _TEACHER_TITLES], dtype=np.int64)
        title_offset = np.cumsum(title_count) - title_count
        all_titles = np.array([title for titles in _TEACHER_TITLES for title in titles], dtype=_STR)
        pick = title_offset[band] + (rng.random(count) * title_count[band]).astype(np.int64)
        titles = all_titles[pick].tolist()
        state_ids = _digits(rng.permutation(count) + 500000000).tolist()
        numbers = _digits(200000 + np.arange(count) * 11 + rng.integers(0, 11, count)).tolist()
        school, second = self.teacher_school.tolist(), self.teacher_second_school.tolist()
        emails: list[str | None] = _cat(np.array(user, dtype=_STR), "@", self.domain).tolist()
        emails[1] = emails[0]  # quirk: two users sharing one email
        records = []
        for i in range(count):
            own = self.school_ids[school[i]]
            schools = sorted({own, self.school_ids[second[i]]}) if second[i] >= 0 else [own]
            roles: dict[str, Any] = {
                "teacher": {
                    "credentials": {"district_username": user[i]},
                    "ext": {},
                    "legacy_id": legacy[base + i],
                    "school": own,
                    "schools": schools,
                    "sis_id": f"T{numbers[i]}",
                    "state_id": state_ids[i],
                    "teacher_number": numbers[i],
                    "title": titles[i],
                }
            }
            if i == 2:  # quirk: one employee who is both a teacher and staff
                roles["staff"] = {
                    "credentials": {"district_username": user[i]},
                    "department": "Athletics",
                    "ext": {},
                    "schools": schools,
                    "staff_id": f"E{10000 + i}",
                    "title": "Athletic Director",
                }
            name = {"first": first[i], "last": last[i], "middle": middle[i]}
            records.append(
                self._user(ids[base + i], created[base + i], modified[base + i], emails[i], name, roles)
            )
        return records

    def _student_users(self, common: tuple[list[str], list[str], list[str]]) -> Iterator[dict[str, Any]]:
        """Each student user in id order, living at the family's address, enrolled in one school.

        Every random draw happens before the first student is yielded: names (:meth:`_student_names`), then
        the SIS's facts (:meth:`_student_facts`), then the quirks (:meth:`_student_quirks`). Their order is
        fixed: moving one draw changes every value drawn after it, and so the sample's bytes.
        """
        ids, created, modified = common
        first, middle, last, usernames, emails, numbers = self._student_names()
        dob, gender, race, hispanic, ell, state_ids, graduation = self._student_facts()
        no_username = self._student_quirks(first, last, usernames, emails)
        address = self.family_address[self.family].tolist()
        zips = self.family_zip[self.family].tolist()
        grade, school = self.grade.tolist(), self.school.tolist()
        city, state = self.city_state
        base = self.student_base
        for i in range(self.n):
            credentials = {} if i == no_username else {"district_username": usernames[i]}
            own = self.school_ids[school[i]]
            student: dict[str, Any] = {
                "credentials": credentials,
                "dob": dob[i],
                "enrollments": [],
                "ext": {},
                "gender": gender[i],
                "grade": _GRADES[grade[i]],
                "graduation_year": graduation[i],
                "hispanic_ethnicity": hispanic[i],
                "ell_status": ell[i],
                "location": {"address": address[i], "city": city, "state": state, "zip": zips[i]},
                "race": race[i],
                "school": own,
                "schools": [own],
                "sis_id": numbers[i],
                "state_id": state_ids[i],
                "student_number": numbers[i],
                "email": emails[i],
            }
            if emails[i] is None:
                del student["email"]
            name = {"first": first[i], "last": last[i], "middle": middle[i]}
            j = base + i
            yield self._user(ids[j], created[j], modified[j], emails[i], name, {"student": student})

    def _student_names(
        self,
    ) -> tuple[list[str], list[str], list[str], list[str], list[str | None], list[str]]:
        """First, middle and last names, usernames, emails (None: no key) and student numbers.

        The username is the names' slugs and four digits of the student number; 2% of the emails are
        empty and 3% missing.
        """
        rng, n = self.rng, self.n
        last_index = self.family_last[self.family]
        first = _FIRST.names[self.student_first].tolist()
        last = _LAST.names[last_index].tolist()
        middle = np.where(
            self.student_middle_kind == 0,
            np.array(list("ABCDEFGHIJKLMNOPRSTVW"), dtype=_STR)[self.student_initial % 21],
            np.where(self.student_middle_kind == 1, _FIRST.names[self.student_middle], ""),
        ).tolist()
        number = _digits(100000000 + np.arange(n) * 37 + rng.integers(0, 37, n))
        username = _cat(
            _FIRST.slugs[self.student_first], ".", _LAST.slugs[last_index], np.strings.slice(number, 5, 9)
        )
        email_kind = rng.random(n)
        emails: list[str | None] = np.where(
            email_kind < 0.02, "", _cat(username, "@", self.student_domain)
        ).tolist()
        for i in np.flatnonzero(email_kind > 0.97).tolist():
            emails[i] = None
        return first, middle, last, username.tolist(), emails, number.tolist()

    def _student_facts(
        self,
    ) -> tuple[list[str], list[str], list[str], list[str], list[str], list[str], list[str]]:
        """Birth date (``M/D/YYYY``, fitting the grade), gender, race, hispanic, ELL, state id, graduation."""
        rng, n, year = self.rng, self.n, self.year
        state_ids = _digits(rng.permutation(n) + 3000000000).tolist()
        birth = (
            np.datetime64(f"{year - 5}-09-01")
            - (self.grade * 365.25).astype("timedelta64[D]")
            - rng.integers(1, 366, n).astype("timedelta64[D]")
        )
        b_year = birth.astype("datetime64[Y]").astype(np.int64) + 1970
        b_month = birth.astype("datetime64[M]").astype(np.int64) % 12 + 1
        b_day = (birth - birth.astype("datetime64[M]")).astype(np.int64) + 1
        dob = _cat(_digits(b_month), "/", _digits(b_day), "/", _digits(b_year)).tolist()
        gender = _choose(rng, ("F", "M", "X", ""), n, (0.485, 0.485, 0.02, 0.01))
        race = _choose(
            rng,
            (
                "Caucasian",
                "Asian",
                "Black or African American",
                "American Indian",
                "Hawaiian or Other Pacific Islander",
                "Two or More Races",
                "Unknown",
                "",
            ),
            n,
            (0.45, 0.1, 0.15, 0.02, 0.01, 0.08, 0.04, 0.15),
        )
        hispanic = _choose(rng, ("Y", "N", ""), n, (0.27, 0.68, 0.05))
        ell = _choose(rng, ("Y", "N", ""), n, (0.1, 0.85, 0.05))
        graduation = _digits(year + 13 - self.grade).tolist()
        return dob, gender, race, hispanic, ell, state_ids, graduation

    def _student_quirks(
        self, first: list[str], last: list[str], usernames: list[str], emails: list[str | None]
    ) -> int:
        """Spoil a few distinct random students' names and logins in place; return the one with no username.

        A tab inside a first name (as a bad paste leaves), a "Jr." suffix after a comma, a quoted nickname,
        two students sharing one ``district_username``, and one with neither username nor email.
        """
        q = self.rng.choice(self.n, size=6, replace=False).tolist()
        first[q[0]] = f"{first[q[0]]}\t{first[q[1]]}"
        last[q[1]] = f"{last[q[1]]}, Jr."
        first[q[2]] = f'{first[q[2]]} "Sunny"'
        usernames[q[4]] = usernames[q[3]]
        emails[q[5]] = None
        return int(q[5])

    def _contact_users(
        self, common: tuple[list[str], list[str], list[str]], legacy: list[str]
    ) -> Iterator[dict[str, Any]]:
        rng, count, base = self.rng, self.n_contacts, self.contact_base
        ids, created, modified = common
        rank = self.contact_rank
        full = _cat(_FIRST.names[self.contact_first], " ", _LAST.names[self.contact_last]).tolist()
        email = _cat(
            _FIRST.slugs[self.contact_first],
            ".",
            _LAST.slugs[self.contact_last],
            _digits(rng.integers(1, 100, count)),
            "@",
            np.array(["example.com", "example.net", "example.org"], dtype=_STR)[rng.integers(0, 3, count)],
        )
        has_email = rng.random(count)
        emails: list[str | None] = np.where(has_email < 0.05, "", email).tolist()
        for i in np.flatnonzero(has_email > 0.7).tolist():
            emails[i] = None
        parent_type = _choose(rng, ("Parent/Guardian", "Primary", "Secondary"), count, (0.85, 0.1, 0.05))
        other_type = _choose(rng, ("Emergency", "Family", "Other", ""), count, (0.6, 0.3, 0.08, 0.02))
        other_relationship = _choose(rng, ("Grandparent", "Aunt/Uncle", "Sibling", "Other", ""), count)
        types = np.where(
            rank < 2, np.array(parent_type, dtype=_STR), np.array(other_type, dtype=_STR)
        ).tolist()
        relationship = np.where(
            rank < 2,
            np.where(rng.random(count) < 0.97, "Parent", "Other"),
            np.array(other_relationship, dtype=_STR),
        ).tolist()
        phone = _cat(
            "(555) ", _digits(rng.integers(200, 999, count)), "-", _digits(rng.integers(0, 10000, count), 4)
        )
        phones = np.where(rng.random(count) < 0.1, "", phone).tolist()
        phone_type = _choose(rng, ("Cell", "Home", "Work", "Other", ""), count, (0.6, 0.2, 0.1, 0.05, 0.05))
        sis_ids = np.where(
            rng.random(count) < 0.3,
            "",
            _cat("C", _digits(5000000 + np.arange(count) * 3 + rng.integers(0, 3, count))),
        ).tolist()
        empty_first = (rng.random(count) < 0.05).tolist()
        by_family = np.argsort(self.family, kind="stable")
        family_start = _group_offsets(self.family[by_family], self.n_families).tolist()
        children = by_family.tolist()
        family = self.contact_family.tolist()
        student_ids = self.user_ids[self.student_base : self.student_base + self.n]
        ghost_student = self.ids.make(1, self.now + 5 * 86400, self.now + 5 * 86400)[0][0]
        for i in range(count):
            f = family[i]
            links = [
                {"relationship": relationship[i], "student": student_ids[child], "type": types[i]}
                for child in children[family_start[f] : family_start[f + 1]]
            ]
            if i == 0:  # quirk: a contact of a student who is not in the pull
                links.append({"relationship": "Parent", "student": ghost_student, "type": "Parent/Guardian"})
            name = {"first": "", "last": full[i]} if empty_first[i] else {"last": full[i]}
            roles = {
                "contact": {
                    "phone": phones[i],
                    "phone_type": phone_type[i],
                    "sis_id": sis_ids[i],
                    "student_relationships": links,
                    "legacy_id": legacy[base + i],
                }
            }
            j = base + i
            yield self._user(ids[j], created[j], modified[j], emails[i], name, roles)
