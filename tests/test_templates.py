"""Naming templates: the vectorised path gives exactly what jinja2 gives, mistakes are named, and a template
is data: anything outside the documented parts is a config error before any data is read."""

from __future__ import annotations

import tomllib
from pathlib import Path

import jinja2
import pandas as pd
import pytest
from jinja2.exceptions import SecurityError

from clever2sis.config import RawConfig, build_settings
from clever2sis.errors import ConfigError
from clever2sis.sis.builders import check_templates, template
from clever2sis.sis.templates import SANDBOX, Template, is_identity, slug

ROOT = Path(__file__).resolve().parents[1]

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


# --- the sandbox: a template is data, not code -----------------------------------------------------------

ALLOWED = (
    "templates may use text, {{ namespace.field }}, the filters default, lower, replace, slug, title, trim, "
    "truncate, upper, ~, and, or, not, comparisons (== != < <= > >= in), a if b else c, [n] and [a:b], the "
    "methods split(), rsplit(), startswith(), endswith(), {% if %} and {% for %}"
)
ATTRIBUTES = (
    "name a field of a namespace (e.g. section.name) or call one of the methods split(), rsplit(), startswith(), "
    "endswith()"
)
FILTER_NAMES = "filters: default, lower, replace, slug, title, trim, truncate, upper"


def refusal(source: str, setting: str = "names.section") -> str:
    with pytest.raises(ConfigError) as error:
        Template(setting, source, NAMESPACES)
    return str(error.value)


def test_the_token_leak_is_refused_and_the_message_holds_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANVAS_TOKEN", "tok-7f3a9c-secret")
    source = "{{ cycler.__init__.__globals__.os.environ.CANVAS_TOKEN }}"
    message = refusal(source)
    assert message == (
        "names.section: unknown template variable 'cycler' in "
        "'{{ cycler.__init__.__globals__.os.environ.CANVAS_TOKEN }}'; available here: course, section"
    )
    assert "tok-7f3a9c-secret" not in message


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("{{ lipsum() }}", "lipsum"),
        ("{{ lipsum }}", "lipsum"),
        ("{{ joiner(',')() }}", "joiner"),
        ("{% for i in range(10) %}{{ i }}{% endfor %}", "range"),
        ("{{ namespace(a=1).a }}", "namespace"),
        ("{{ dict(a=1) }}", "dict"),
        ("{{ cycler('a').next() }}", "cycler"),
        ("{{ self }}", "self"),
        ("{{ config }}", "config"),
    ],
)
def test_jinja2_globals_are_not_variables(source: str, name: str) -> None:
    assert refusal(source) == (
        f"names.section: unknown template variable {name!r} in {source!r}; available here: course, section"
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{{ ''.__class__.__mro__ }}",
            "the attribute '__class__' is not allowed in template \"{{ ''.__class__.__mro__ }}\"; "
            + ATTRIBUTES,
        ),
        (
            "{{ section.name.__class__ }}",
            "the attribute '__class__' is not allowed in template '{{ section.name.__class__ }}'; "
            + ATTRIBUTES,
        ),
        (
            "{{ section.name.__class__.__mro__[1].__subclasses__() }}",
            "the attribute '__class__' is not allowed in template "
            "'{{ section.name.__class__.__mro__[1].__subclasses__() }}'; " + ATTRIBUTES,
        ),
        (
            "{{ section.name.upper() }}",
            "the attribute 'upper' is not allowed in template '{{ section.name.upper() }}'; " + ATTRIBUTES,
        ),
        (
            "{{ section.name.format(x=1) }}",
            "the attribute 'format' is not allowed in template '{{ section.name.format(x=1) }}'; "
            + ATTRIBUTES,
        ),
        (
            "{{ section.name.split }}",
            "the attribute 'split' is not allowed in template '{{ section.name.split }}'; " + ATTRIBUTES,
        ),
        ('{% include "x" %}', "{% include %} is not allowed in template '{% include \"x\" %}'; " + ALLOWED),
        (
            '{% import "x" as y %}',
            "{% import %} is not allowed in template '{% import \"x\" as y %}'; " + ALLOWED,
        ),
        (
            '{% from "x" import y %}',
            "{% from %} is not allowed in template '{% from \"x\" import y %}'; " + ALLOWED,
        ),
        ('{% extends "x" %}', "{% extends %} is not allowed in template '{% extends \"x\" %}'; " + ALLOWED),
        (
            "{% macro m() %}x{% endmacro %}",
            "{% macro %} is not allowed in template '{% macro m() %}x{% endmacro %}'; " + ALLOWED,
        ),
        (
            "{% call section.id() %}{% endcall %}",
            "{% call %} is not allowed in template '{% call section.id() %}{% endcall %}'; " + ALLOWED,
        ),
        ("{% set x = 1 %}", "{% set %} is not allowed in template '{% set x = 1 %}'; " + ALLOWED),
        (
            "{% filter upper %}x{% endfilter %}",
            "{% filter %} is not allowed in template '{% filter upper %}x{% endfilter %}'; " + ALLOWED,
        ),
        (
            "{% with a = 1 %}{% endwith %}",
            "{% with %} is not allowed in template '{% with a = 1 %}{% endwith %}'; " + ALLOWED,
        ),
        (
            "{{ section.id * 1000000 }}",
            "* is not allowed in template '{{ section.id * 1000000 }}'; " + ALLOWED,
        ),
        (
            "{{ section.id + 'x' }}",
            "+ (join text with ~) is not allowed in template \"{{ section.id + 'x' }}\"; " + ALLOWED,
        ),
        (
            "{{ section['id'] }}",
            "'section' alone is not allowed in template \"{{ section['id'] }}\"; name one of its fields, e.g. "
            "section.id",
        ),
        (
            "{{ section.name['upper'] }}",
            "a subscript other than [n] or [a:b] with whole numbers is not allowed in template "
            "\"{{ section.name['upper'] }}\"; " + ALLOWED,
        ),
        (
            "{{ section.id is defined }}",
            "the test 'is defined' is not allowed in template '{{ section.id is defined }}'; every field is text, "
            "empty when missing: test it with if, or compare with == != in",
        ),
        (
            "{% for p in section.name %}{{ loop.cycle('a', 'b') }}{% endfor %}",
            "'loop.cycle' is not allowed in template \"{% for p in section.name %}{{ loop.cycle('a', 'b') }}"
            '{% endfor %}"; loop has: index, index0, revindex, revindex0, first, last, length',
        ),
        (
            "{% for section in course.name %}{{ section }}{% endfor %}",
            "the loop name 'section' is not allowed in template '{% for section in course.name %}{{ section }}"
            "{% endfor %}'; it hides a namespace or loop; choose another name",
        ),
        (
            "{{ section.id|replace('s', section.name) }}",
            "a non-literal argument to filter 'replace' is not allowed in template "
            "\"{{ section.id|replace('s', section.name) }}\"; arguments are quoted text, numbers, true or false",
        ),
    ],
)
def test_anything_but_the_documented_parts_is_refused(source: str, message: str) -> None:
    assert refusal(source) == "names.section: " + message


@pytest.mark.parametrize(
    "source",
    [
        "{{ x|nope }}",
        "{{ section.id|format('x') }}",
        "{{ section.id|attr('upper') }}",
        "{{ section.id|map }}",
    ],
)
def test_unknown_filters_are_refused(source: str) -> None:
    name = source.split("|")[1].split("(")[0].split()[0]
    assert refusal(source, "ids.section_id") == (
        f"ids.section_id: unknown filter {name!r} in template {source!r}; {FILTER_NAMES}"
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{{ section.name|truncate(2) }}",
            "filter 'truncate' in template '{{ section.name|truncate(2) }}' (length must be at least the length of "
            "end (3)); use truncate(length[, killwords, end, leeway])",
        ),
        (
            "{{ section.name|replace('a') }}",
            "filter 'replace' in template \"{{ section.name|replace('a') }}\" (missing a required argument: 'new'); "
            "use replace('old', 'new'[, count])",
        ),
        (
            "{{ section.name|lower(1) }}",
            "filter 'lower' in template '{{ section.name|lower(1) }}' (too many positional arguments); use lower",
        ),
        (
            "{{ section.name|default(0, true) }}",
            "filter 'default' in template '{{ section.name|default(0, true) }}' (use default('text') or "
            "default('text', true)); use default('text', true) (true: also when empty)",
        ),
        (
            "{{ section.name.split('') }}",
            "split() in template \"{{ section.name.split('') }}\" (empty separator)",
        ),
    ],
)
def test_bad_arguments_are_named_before_any_data_is_read(source: str, message: str) -> None:
    assert refusal(source) == "names.section: bad arguments to " + message


def test_an_error_while_rendering_is_a_config_error() -> None:
    template = Template("names.section", "{% if section.period > 3 %}late{% endif %}", NAMESPACES)
    with pytest.raises(ConfigError) as error:
        template.render(FRAME)
    assert str(error.value) == (
        "names.section: template '{% if section.period > 3 %}late{% endif %}' failed: "
        "'>' not supported between instances of 'str' and 'int'"
    )


def test_the_sandbox_itself_refuses_what_the_check_refuses() -> None:
    """The second line of defence: rows are rendered where jinja2's globals and tests do not exist and only
    the string methods and loop fields are attributes."""
    assert SANDBOX.globals == {}
    assert SANDBOX.tests == {}
    assert sorted(SANDBOX.filters) == [
        "default",
        "lower",
        "replace",
        "slug",
        "title",
        "trim",
        "truncate",
        "upper",
    ]
    for source in [
        "{{ ''.__class__ }}",
        "{{ 'a'.upper() }}",
        "{% for x in 'ab' %}{{ loop.cycle('a') }}{% endfor %}",
    ]:
        with pytest.raises(SecurityError):
            SANDBOX.from_string(source).render()
    with pytest.raises(jinja2.UndefinedError, match="'cycler' is undefined"):
        SANDBOX.from_string("{{ cycler }}").render()
    with pytest.raises(
        SecurityError, match="access to attribute '__init__' of 'StrictUndefined' object is unsafe"
    ):
        SANDBOX.from_string("{{ cycler.__init__.__globals__.os.environ.CANVAS_TOKEN }}").render()
    assert SANDBOX.from_string("{{ 'a b'.split() }}{{ 'ab'[5] }}").render() == "['a', 'b']"


# --- what a template may do, rendered the same by both paths ------------------------------------------

ALLOWED_TEMPLATES = [
    "{{ section.name|replace(' - ', '/') }}|{{ section.name|replace('-', '', 1) }}",
    "{{ course.name|truncate(6) }}|{{ course.name|truncate(6, true, '~', 0) }}",
    "{{ section.period|default('none', true) }}{{ section.period|default('never') }}",
    "{{ section.name|trim('AEF ') }}",
    "{{ course.name[0] }}{{ course.name[:3] }}{{ section.name[-1] }}{{ section.name[::2] }}",
    "{% if section.name.startswith('A') or section.id.endswith('4') %}first{% else %}other{% endif %}",
    "{% if section.period in ['2', '7'] and not course.number == 'FR1' %}{{ section.id }}{% endif %}",
    "{% for part in section.name.rsplit(' - ', 1) %}{{ loop.index }}:{{ part|lower }}{% if not loop.last %},"
    "{% endif %}{% endfor %}",
    "{% for c in course.number if c != 'A' %}{{ c }}{% else %}none{% endfor %}",
    "{{ -1 }}{{ 'x' if 0 }}{{ false or 'f' }}{{ 0 or course.name }}",
    "{% if section.period %}P{{ section.period }}{% elif course.number %}C{% else %}-{% endif %}",
]


@pytest.mark.parametrize("source", ALLOWED_TEMPLATES)
def test_allowed_templates_render_as_jinja2_does(source: str) -> None:
    assert Template("names.x", source, NAMESPACES).render(FRAME).tolist() == jinja_reference(source)


def test_a_field_of_one_letter_subscripted_past_its_end_is_empty() -> None:
    template = Template(
        "ids.user_id", "{{ course.name[0]|lower }}{{ course.number[5] }}-{{ section.id }}", NAMESPACES
    )
    assert template.render(FRAME).tolist() == ["a-s1", "-s2", "a-s3", "ç-s4"]


TRICKY = [chr(code) for code in range(128)] + [
    "o'neil",
    "MCDONALD-SMITH",
    "3rd period",
    "İstanbul",
    "ﬁsh",
    "ǅemal",
    "straße",
    "\u00a0 nbsp \u2003",
    "  Ça va, l'été  ",
    "foo bar baz qux quux",
    "a b\nc d e f g",
    "",
    "ééééééééé",
]
FILTER_USES = [
    "lower",
    "upper",
    "title",
    "trim",
    "trim(' -é')",
    "slug",
    "replace('a', 'b')",
    "replace('', '-')",
    "replace('é', '', 1)",
    "truncate(8)",
    "truncate(8, true)",
    "truncate(9, false, '…', 0)",
    "default('x', true)",
    "default('x')",
]


@pytest.mark.parametrize("use", FILTER_USES)
def test_each_filter_gives_the_same_text_vectorised_and_row_by_row(use: str) -> None:
    """``{{ v|f }}`` is computed over the whole column; the same filter inside a loop goes row by row."""
    frame = pd.DataFrame({"section.name": pd.Series(TRICKY, dtype="string")})
    scope = {"section": ("name",)}
    whole = Template("names.section", f"{{{{ section.name|{use} }}}}", scope).render(frame)
    by_row = Template(
        "names.section", f"{{% for v in [section.name] %}}{{{{ v|{use} }}}}{{% endfor %}}", scope
    )
    assert whole.tolist() == by_row.render(frame).tolist()


def test_title_and_truncate_give_these_texts() -> None:
    frame = pd.DataFrame(
        {"user.last": pd.Series(["o'neil", "MCDONALD-SMITH", "van der berg jr"], dtype="string")}
    )
    scope = {"user": ("last",)}
    for source in ["{{ user.last|title }}", "{% for v in [user.last] %}{{ v|title }}{% endfor %}"]:
        assert Template("ids.user_id", source, scope).render(frame).tolist() == [
            "O'Neil",
            "Mcdonald-Smith",
            "Van Der Berg Jr",
        ]
    truncated = Template("ids.user_id", "{{ user.last|truncate(10, leeway=0) }}", scope).render(frame)
    assert truncated.tolist() == ["o'neil", "MCDONAL...", "van..."]


@pytest.mark.parametrize("structure", ["section", "course"])
def test_every_documented_template_is_allowed(structure: str) -> None:
    """The example config (both course structures) and the templates docs/build.md suggests."""
    example = tomllib.loads((ROOT / "samples" / "clever2sis.example.toml").read_text())
    example["build"]["course_structure"] = structure
    if structure == "course":
        example["ids"]["course_id"] = "{{ course.id }}_{{ school.id }}_{{ canvas.term_id }}"
        example["names"]["course_long_name"] = "{{ course.name or section.name }}"
    check_templates(build_settings(RawConfig(data=example)))
    readme = {
        "ids": {"user_id": "{{ user.sis_id }}"},
        "observers": {"user_id": "{{ contact.sis_id or contact.id }}"},
    }
    settings = build_settings(RawConfig(data=readme))
    assert template(settings, "ids.user_id").variables == ["user.sis_id"]
    assert template(settings, "observers.user_id").variables == ["contact.id", "contact.sis_id"]


# -- how long a rendered value may grow (TEMPLATE_GROWTH) ---------------------------------------------------

GROW = "replace('', 'aaaaaaaaaa')"  # a 10-character value becomes 120 characters long
NAMES = {"section": ("name",)}


def names_of(*values: str) -> pd.DataFrame:
    return pd.DataFrame({"section.name": pd.Series(values, dtype="string")})


def too_long(setting: str, source: str) -> str:
    return (
        f"{setting}: template {source!r} renders a value more than 16 times as long as the template and the "
        "values it reads together; make it grow values less (a replace of '' or a loop over a value that "
        "prints it)"
    )


@pytest.mark.parametrize(
    "source",
    [
        f"{{{{ section.name|{GROW}|{GROW} }}}}",  # vectorised: 300 -> 3,310 -> 36,420 characters
        f"{{{{ (section.name|{GROW}) ~ (section.name|{GROW}) }}}}",  # each 3,310, joined 6,620
        f"{{% for c in section.name %}}{{{{ section.name|{GROW} }}}}{{% endfor %}}",  # row by row: 993,000
        "{% for c in section.name %}{% for d in section.name %}{{ c }}{% endfor %}{% endfor %}",
    ],
)
def test_a_template_growing_values_past_its_budget_is_a_config_error(source: str) -> None:
    """A 300-character name may render at most 16 times its and the template's length together (the
    joined one: 16 * (300 + 88) = 6,208 characters)."""
    with pytest.raises(ConfigError) as error:
        Template("names.section", source, NAMES).render(names_of("0123456789" * 30, "x"))
    assert str(error.value) == too_long("names.section", source)


@pytest.mark.parametrize(
    "source",
    [
        f"{{{{ section.name|{GROW}|{GROW}|{GROW}|{GROW}|{GROW}|{GROW}|{GROW}|{GROW}|{GROW} }}}}",  # 10**10
        f"{{% for c in section.name %}}{{{{ section.name|{GROW}|{GROW}|{GROW}|{GROW}|{GROW}|{GROW} }}}}{{% endfor %}}",
        "{% for c in section.name %}{% for d in section.name %}{% for e in section.name %}"
        "{{ section.name }}{% endfor %}{% endfor %}{% endfor %}",
    ],
)
def test_the_growth_is_refused_before_it_is_made(source: str) -> None:
    """Each would make at least 10**10 characters of one row: refused before any is allocated."""
    with pytest.raises(ConfigError) as error:
        Template("names.section", source, NAMES).render(names_of("a" * 2_000, "b"))
    assert str(error.value) == too_long("names.section", source)


def test_growing_within_the_budget_and_long_data_render() -> None:
    """One replace of '' on a 10-character value is 12 times its length; a value long because Clever's
    value is long is the build's to cut (sis/lengths.py), not a template's mistake."""
    frame = names_of("0123456789", "a" * 5_000_000)
    assert Template("names.section", f"{{{{ section.name|{GROW} }}}}", NAMES).render(
        frame
    ).str.len().tolist() == [
        120,
        55_000_010,
    ]
    twice = Template("names.section", "{{ section.name|upper }} - {{ section.name }}", NAMES).render(frame)
    assert twice.str.len().tolist() == [23, 10_000_003]
    looped = "{% for c in section.name[:3] %}{{ section.name }}{% endfor %}"
    assert Template("names.section", looped, NAMES).render(frame).str.len().tolist() == [30, 15_000_000]


def test_the_cli_names_the_setting_of_a_template_that_grows_too_much(
    tiny_snapshot: Path, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from clever2sis.cli import main

    source = f"{{{{ section.name|{GROW}|{GROW}|{GROW} }}}}"
    config = tmp_path / "clever2sis.toml"
    config.write_text(f'[names]\nsection = "{source}"\n', encoding="utf-8")
    out = tmp_path / "build"
    result = CliRunner().invoke(
        main, ["build", str(tiny_snapshot), "--out", str(out), "--config", str(config)]
    )
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == f"error: {too_long('names.section', source)}"
    assert not out.exists()
