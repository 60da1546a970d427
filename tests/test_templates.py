"""Naming templates: the vectorised path gives exactly what jinja2 gives, and mistakes are named."""

from __future__ import annotations

import jinja2
import pandas as pd
import pytest

from clever2sis.errors import ConfigError
from clever2sis.sis.templates import Template, is_identity, slug

NAMESPACES = {"course": ("name", "number"), "section": ("id", "period", "name")}
FRAME = pd.DataFrame(
    {
        "course.name": pd.Series(["Algebra I", None, "Art, 2D", "Ça va"], dtype="string"),
        "course.number": pd.Series(["MA101", "", None, "FR1"], dtype="string"),
        "section.id": pd.Series(["s1", "s2", "s3", "s4"], dtype="string"),
        "section.period": pd.Series(["2", None, "", "7"], dtype="string"),
        "section.name": pd.Series(["A - B - 2", "C - D - 3", "E", "F"], dtype="string"),
    }
)

TEMPLATES = [
    "{{ section.id }}",
    "{{ course.number or course.name or section.id }}{% if section.period %} P{{ section.period }}{% endif %}",
    "{{ course.name|upper }}-{{ section.period|default('x') }}",
    "{{ course.name|slug }}_{{ 'p' ~ section.period }}",
    "{{ section.name|trim|lower|title }}",
    "{{ section.period if section.period else 'none' }}",
    "{% for part in section.name.split(' - ') %}[{{ part }}]{% endfor %}",
]


def jinja_reference(source: str) -> list[str]:
    env = jinja2.Environment()
    env.filters["slug"] = slug
    template = env.from_string(source)
    out = []
    for row in FRAME.fillna("").to_dict(orient="records"):
        context: dict[str, dict[str, str]] = {}
        for key, value in row.items():
            namespace, field = key.split(".")
            context.setdefault(namespace, {})[field] = value
        out.append(template.render(**context))
    return out


@pytest.mark.parametrize("source", TEMPLATES)
def test_render_matches_jinja2(source: str) -> None:
    assert Template("names.x", source, NAMESPACES).render(FRAME).tolist() == jinja_reference(source)


def test_unknown_field() -> None:
    with pytest.raises(ConfigError) as error:
        Template("ids.course_id", "{{ course.colour }}", NAMESPACES)
    assert str(error.value) == (
        "ids.course_id: unknown template variable 'course.colour' in '{{ course.colour }}'; course has: name, number"
    )


def test_unknown_namespace() -> None:
    with pytest.raises(ConfigError) as error:
        Template("names.term", "{{ teacher.last }}", NAMESPACES)
    assert str(error.value) == (
        "names.term: unknown template variable 'teacher' in '{{ teacher.last }}'; available here: course, section"
    )


def test_syntax_error() -> None:
    with pytest.raises(ConfigError, match=r"names.section: template '\{\{ section.id ' is not valid jinja2"):
        Template("names.section", "{{ section.id ", NAMESPACES)


def test_identity_detection() -> None:
    assert is_identity("{{ user.id }}", "user")
    assert is_identity("{{user.id}}", "user")
    assert not is_identity("{{ user.sis_id }}", "user")
    assert not is_identity("u-{{ user.id }}", "user")
