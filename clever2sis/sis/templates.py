"""Render jinja2 naming templates over whole DataFrame columns, in a sandbox.

Ids and names are configured as jinja2 templates (``"{{ course.number }} {{ section.period }}"``). Rendering
one template per row would cost seconds per million users, so templates made of the common parts (text,
``{{ ns.field }}``, ``a or b``, ``~``, ``if``, and the filters in ``FILTERS`` with literal arguments) are
translated into pandas string operations. Any other template is rendered row by row with jinja2 itself, once
per distinct combination of the values it uses, so the result is the same either way.

A template is data from a config file, not code: it may name the fields of its setting's namespaces and use
the ``FILTERS``, ``~``, ``and``/``or``/``not``, comparisons, ``a if b else c``, literal subscripts and slices,
the string methods in ``METHODS``, ``{% if %}`` and ``{% for %}``; nothing else. ``Template`` checks that by
walking the parsed template before any data is read, and rows are rendered in jinja2's
``ImmutableSandboxedEnvironment`` with no globals, no tests and only those filters, attributes and methods
(the second line of defence). Anything else is a ``ConfigError`` naming the setting and the template.

Missing values render as the empty string, and an empty string is false in ``a or b``.

A rendered value may be at most ``TEMPLATE_GROWTH`` times as long as the template's text and the values it
reads in that row together (``replace('', 'xxxxxxxxxx')`` chained a few times, or a loop printing a field
inside a loop over it, would otherwise grow a value beyond any memory). Both paths check it before they
grow a value past it (a ``replace`` by counting what it would replace, the row path as jinja2 streams
the output), and a template that does is a ``ConfigError`` naming the setting. A value long because the
data is long (a 5,000,000-character section name) is not the template's doing: the build cuts it to what
Canvas stores (``sis/lengths.py``).
"""

from __future__ import annotations

import contextvars
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2
import jinja2.nodes as nodes
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.nodes import EvalContext
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import pass_eval_context

from clever2sis.errors import ConfigError

Column = pd.Series  # a "string" dtype Series, never <NA> (missing is "")

# The characters a slug keeps; every run of others becomes one "-".
_SLUG_DROP = r"[^0-9a-z]+"
# jinja2's own default for truncate's leeway (Environment.policies["truncate.leeway"]).
_TRUNCATE_LEEWAY = 5
# A rendered value may be at most this many times as long as the template's text and the values it reads.
TEMPLATE_GROWTH = 16
# What Ruby's String#strip takes off both ends, as Canvas's CSV reader does to every field
# (lib/sis/csv/csv_base_importer.rb): NUL, tab, line feed, vertical tab, form feed, carriage return, space.
CANVAS_STRIPPED = "\x00\t\n\x0b\x0c\r "


def _lower(value: Column) -> Column:
    return value.str.lower()


def _upper(value: Column) -> Column:
    return value.str.upper()


def _trim(value: Column, chars: str | None = None) -> Column:
    if chars is not None and not isinstance(chars, str):
        raise ValueError("chars must be quoted text")
    return value.str.strip(chars)


def _title(value: Column) -> Column:
    return value.str.title()


def _slug(value: Column) -> Column:
    return value.str.lower().str.replace(_SLUG_DROP, "-", regex=True).str.strip("-")


def _replace(value: Column, old: object, new: object, count: int | None = None) -> Column:
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        raise ValueError("count must be a whole number")
    return value.str.replace(str(old), str(new), n=-1 if count is None else count, regex=False)


def _truncate(
    value: Column, length: int = 255, killwords: bool = False, end: str = "...", leeway: int | None = None
) -> Column:
    """jinja2's ``truncate`` (``jinja2/filters.py:do_truncate``) over a column: values longer than ``length``
    plus ``leeway`` are cut to ``length`` with ``end`` included, at the last space unless ``killwords``."""
    if isinstance(length, bool) or not isinstance(length, int) or not isinstance(end, str):
        raise ValueError("length must be a whole number and end quoted text")
    if not isinstance(killwords, bool):
        raise ValueError("killwords must be true or false")
    if leeway is not None and (isinstance(leeway, bool) or not isinstance(leeway, int) or leeway < 0):
        raise ValueError("leeway must be a whole number, 0 or more")
    if length < len(end):
        raise ValueError(f"length must be at least the length of end ({len(end)})")
    leeway = _TRUNCATE_LEEWAY if leeway is None else leeway
    kept = value.str.slice(0, length - len(end))
    if not killwords:
        kept = kept.str.replace(r" [^ ]*$", "", regex=True)  # str.rsplit(" ", 1)[0]
    return value.where(value.str.len() <= length + leeway, kept + end)


def _replaced_length(length: int, occurrences: int, old: str, new: str, count: int | None) -> int:
    """The length of a value of ``length`` characters holding ``occurrences`` of ``old`` once ``replace``
    has put ``new`` for them (at most ``count`` of them)."""
    if count is not None and count >= 0:
        occurrences = min(occurrences, count)
    return length + occurrences * (len(new) - len(old))


class _TooLong(Exception):
    """A row's rendering would be longer than its budget (see ``TEMPLATE_GROWTH``)."""


# The budget of the row being rendered row by row (``Template._render_one`` sets it for ``_row_replace``).
_ROW_BUDGET: contextvars.ContextVar[int | None] = contextvars.ContextVar("row_budget", default=None)


@pass_eval_context
def _row_replace(
    eval_ctx: EvalContext, value: object, old: object, new: object, count: int | None = None
) -> str:
    """jinja2's ``replace``, refused (before it runs) when it would make the value longer than the row's
    budget."""
    text, old_text, new_text = str(value), str(old), str(new)
    budget = _ROW_BUDGET.get()
    if budget is not None:
        occurrences = len(text) + 1 if old_text == "" else text.count(old_text)
        if _replaced_length(len(text), occurrences, old_text, new_text, count) > budget:
            raise _TooLong
    replaced: str = JINJA_FILTERS["replace"](eval_ctx, value, old, new, count)
    return replaced


def _default(value: Column, default_value: str = "", boolean: bool = False) -> Column:
    if not isinstance(default_value, str) or not isinstance(boolean, bool):
        raise ValueError("use default('text') or default('text', true)")
    if not boolean:  # a field is never undefined, only empty
        return value
    return value.where(value != "", default_value)


def _like_arrow(python: Callable[[str], str], kernel: Callable[..., pa.Scalar]) -> Callable[[object], str]:
    """A row filter that gives what the vectorised one does: the Arrow kernel pandas runs on a "string"
    column, or for ASCII text (which both read alike) Python's ``str`` method, ~6 µs a value cheaper.
    Python's ``str.title`` and ``str.lower`` differ from Arrow's on some letters beyond ASCII (ligatures,
    titlecase digraphs, dotted I), and jinja2's own ``title`` on ``O'Neil``, so jinja2's are not used."""

    def apply(value: object) -> str:
        text = str(value)
        if text.isascii():
            return python(text)
        result: str = kernel(pa.scalar(text, pa.large_string())).as_py()
        return result

    return apply


def _slug_ascii(value: str) -> str:
    return re.sub(_SLUG_DROP, "-", value.lower()).strip("-")


def _slug_arrow(value: pa.Scalar) -> pa.Scalar:
    return pc.utf8_trim(pc.replace_substring_regex(pc.utf8_lower(value), _SLUG_DROP, "-"), "-")


_row_slug = _like_arrow(_slug_ascii, _slug_arrow)


def slug(value: str) -> str:
    """Lower case, every run of characters other than a-z and 0-9 made one ``-`` (for ids)."""
    return _row_slug(value)


_row_lower = _like_arrow(str.lower, pc.utf8_lower)
_row_upper = _like_arrow(str.upper, pc.utf8_upper)
_row_title = _like_arrow(str.title, pc.utf8_title)
_row_strip = _like_arrow(str.strip, pc.utf8_trim_whitespace)


def _row_trim(value: object, chars: str | None = None) -> str:
    # Trimming given characters reads no Unicode tables, so Python's strip is Arrow's utf8_trim.
    return _row_strip(value) if chars is None else str(value).strip(chars)


@dataclass(frozen=True)
class Filter:
    """A filter templates may use: its column form, its form for one value, and how to call it."""

    vector: Callable[..., Column]
    row: Callable[..., Any]
    usage: str


FILTERS: dict[str, Filter] = {
    "default": Filter(_default, JINJA_FILTERS["default"], "default('text', true) (true: also when empty)"),
    "lower": Filter(_lower, _row_lower, "lower"),
    "replace": Filter(_replace, _row_replace, "replace('old', 'new'[, count])"),
    "slug": Filter(_slug, _row_slug, "slug"),
    "title": Filter(_title, _row_title, "title"),
    "trim": Filter(_trim, _row_trim, "trim or trim('characters')"),
    "truncate": Filter(_truncate, JINJA_FILTERS["truncate"], "truncate(length[, killwords, end, leeway])"),
    "upper": Filter(_upper, _row_upper, "upper"),
}
# Methods of a text value templates may call, with literal arguments: pure, and their result is no longer
# than the value. The case filters have no method twin, so each way of writing lower case gives one result.
METHODS = ("split", "rsplit", "startswith", "endswith")
# What ``loop`` offers inside ``{% for %}``.
LOOP_FIELDS = ("index", "index0", "revindex", "revindex0", "first", "last", "length")

ALLOWED = (
    "templates may use text, {{ namespace.field }}, the filters " + ", ".join(FILTERS) + ", ~, and, or, not, "
    "comparisons (== != < <= > >= in), a if b else c, [n] and [a:b], the methods "
    + ", ".join(f"{name}()" for name in METHODS)
    + ", {% if %} and {% for %}"
)


class _Sandbox(ImmutableSandboxedEnvironment):
    """jinja2's sandbox, narrowed to what a naming template needs: the string ``METHODS`` and ``loop``'s
    ``LOOP_FIELDS`` are the only attributes (namespace fields are items, not attributes), and a subscript
    past the end of a text is empty, as a missing value is."""

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str):
            return attr in METHODS
        return isinstance(obj, LoopContext) and attr in LOOP_FIELDS

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, str | list) and type(argument) is int and not -len(obj) <= argument < len(obj):
            return ""
        return super().getitem(obj, argument)


# The jinja2 environment rows are rendered in: no globals (jinja2's cycler, joiner and lipsum reach ``os``),
# no tests, only the FILTERS.
SANDBOX = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False)
SANDBOX.globals.clear()
SANDBOX.tests.clear()
SANDBOX.filters = {name: spec.row for name, spec in FILTERS.items()}


class _Fields:
    """One namespace's values in one row: ``section.id`` reads an item, and there are no attributes."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values

    def __getitem__(self, field: str) -> str:
        return self._values[field]


class _NotVectorisable(Exception):
    pass


class _NotLiteral(Exception):
    pass


def _literal(node: nodes.Node) -> Any:
    """The value of a literal (quoted text, a number, true, false, none); else raises _NotLiteral."""
    if isinstance(node, nodes.Const) and (node.value is None or isinstance(node.value, str | int | float)):
        return node.value
    if isinstance(node, nodes.Neg) and isinstance(node.node, nodes.Const) and _is_number(node.node):
        return -node.node.value
    raise _NotLiteral


def _is_number(node: nodes.Node) -> bool:
    return (
        isinstance(node, nodes.Const)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    )


# What the message calls a tag or an expression templates may not use.
_REFUSED = {
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from %}",
    nodes.Extends: "{% extends %}",
    nodes.Block: "{% block %}",
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.Assign: "{% set %}",
    nodes.AssignBlock: "{% set %}",
    nodes.FilterBlock: "{% filter %}",
    nodes.With: "{% with %}",
    nodes.ScopedEvalContextModifier: "{% autoescape %}",
    nodes.Add: "+ (join text with ~)",
    nodes.Sub: "-",
    nodes.Mul: "*",
    nodes.Div: "/",
    nodes.FloorDiv: "//",
    nodes.Mod: "%",
    nodes.Pow: "**",
    nodes.Pos: "unary +",
    nodes.Neg: "unary - (except on a number)",
    nodes.Dict: "a {...} literal",
}


@cache
def _parse(source: str) -> nodes.Template:
    return SANDBOX.parse(source)


class _Checker:
    """Walks a parsed template and refuses whatever a naming template may not do; collects the
    ``"<namespace>.<field>"`` variables it reads."""

    def __init__(self, setting: str, source: str, namespaces: Mapping[str, Sequence[str]]) -> None:
        self.setting = setting
        self.source = source
        self.namespaces = namespaces
        self.variables: set[str] = set()

    def refuse(self, what: str, hint: str = ALLOWED) -> ConfigError:
        return ConfigError(f"{self.setting}: {what} is not allowed in template {self.source!r}; {hint}")

    def statements(self, body: Sequence[nodes.Node], names: frozenset[str]) -> None:
        for node in body:
            if isinstance(node, nodes.Output):
                for child in node.nodes:
                    if not isinstance(child, nodes.TemplateData):
                        self.expression(child, names)
            elif isinstance(node, nodes.If):
                self.expression(node.test, names)
                self.statements(node.body, names)
                self.statements(node.elif_, names)
                self.statements(node.else_, names)
            elif isinstance(node, nodes.For):
                self.loop(node, names)
            else:
                raise self.refuse(_REFUSED.get(type(node), f"{{% {type(node).__name__.lower()} %}}"))

    def loop(self, node: nodes.For, names: frozenset[str]) -> None:
        if not isinstance(node.target, nodes.Name):
            raise self.refuse("a loop over several names", "write {% for part in ... %}")
        target = node.target.name
        if target in self.namespaces or target == "loop":
            raise self.refuse(
                f"the loop name {target!r}", "it hides a namespace or loop; choose another name"
            )
        if node.recursive:
            raise self.refuse("a recursive loop")
        self.expression(node.iter, names)
        inner = names | {target, "loop"}
        if node.test is not None:
            self.expression(node.test, inner)
        self.statements(node.body, inner)
        self.statements(node.else_, names)

    def expression(self, node: nodes.Node, names: frozenset[str]) -> None:
        """Check one expression; ``names`` are the loop names in scope."""
        if isinstance(node, nodes.Const):
            return
        if isinstance(node, nodes.Name):
            self.name(node.name, names)
        elif isinstance(node, nodes.Getattr):
            self.attribute(node, names)
        elif isinstance(node, nodes.Getitem):
            self.expression(node.node, names)
            self.subscript(node.arg)
        elif isinstance(node, nodes.Call):
            self.call(node, names)
        elif isinstance(node, nodes.Filter):
            self.filter(node, names)
        elif isinstance(node, nodes.Test):
            raise self.refuse(
                f"the test 'is {node.name}'",
                "every field is text, empty when missing: test it with if, or compare with == != in",
            )
        elif isinstance(node, nodes.Neg) and _is_number(node.node):
            return
        elif isinstance(node, nodes.Compare):
            for operand in [node.expr, *(operand.expr for operand in node.ops)]:
                self.expression(operand, names)
        elif isinstance(node, nodes.And | nodes.Or | nodes.Not | nodes.Concat | nodes.CondExpr):
            for child in node.iter_child_nodes():
                self.expression(child, names)
        elif isinstance(node, nodes.List | nodes.Tuple):
            for item in node.items:
                self.expression(item, names)
        else:
            raise self.refuse(_REFUSED.get(type(node), type(node).__name__))

    def name(self, name: str, names: frozenset[str]) -> None:
        if name in names:
            return
        if name in self.namespaces:
            fields = self.namespaces[name]
            raise self.refuse(f"{name!r} alone", f"name one of its fields, e.g. {name}.{fields[0]}")
        raise ConfigError(
            f"{self.setting}: unknown template variable {name!r} in {self.source!r}; "
            f"available here: {', '.join(sorted(self.namespaces))}"
        )

    def attribute(self, node: nodes.Getattr, names: frozenset[str]) -> None:
        owner = node.node.name if isinstance(node.node, nodes.Name) else None
        if owner == "loop" and "loop" in names:
            if node.attr not in LOOP_FIELDS:
                raise self.refuse(f"'loop.{node.attr}'", f"loop has: {', '.join(LOOP_FIELDS)}")
        elif owner is not None and owner not in names and owner in self.namespaces:
            fields = self.namespaces[owner]
            if node.attr not in fields:
                raise ConfigError(
                    f"{self.setting}: unknown template variable '{owner}.{node.attr}' in "
                    f"{self.source!r}; {owner} has: {', '.join(fields)}"
                )
            self.variables.add(f"{owner}.{node.attr}")
        else:
            self.expression(node.node, names)
            raise self.refuse(
                f"the attribute {node.attr!r}",
                "name a field of a namespace (e.g. section.name) or call one of the methods "
                + ", ".join(f"{name}()" for name in METHODS),
            )

    def subscript(self, node: nodes.Node) -> None:
        parts: list[nodes.Node | None] = (
            [node.start, node.stop, node.step] if isinstance(node, nodes.Slice) else [node]
        )
        try:
            values = [None if part is None else _literal(part) for part in parts]
        except _NotLiteral:
            values = [""]
        whole_numbers = all(value is None or type(value) is int for value in values)
        if not whole_numbers or values == [None] or values[2:] == [0]:  # [none], or a step of 0
            raise self.refuse("a subscript other than [n] or [a:b] with whole numbers")

    def literals(self, node: nodes.Filter | nodes.Call, what: str) -> tuple[list[Any], dict[str, Any]]:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise self.refuse(f"*args or **kwargs to {what}")
        try:
            return [_literal(arg) for arg in node.args], {
                str(kw.key): _literal(kw.value) for kw in node.kwargs
            }
        except _NotLiteral:
            raise self.refuse(
                f"a non-literal argument to {what}", "arguments are quoted text, numbers, true or false"
            ) from None

    def call(self, node: nodes.Call, names: frozenset[str]) -> None:
        if not isinstance(node.node, nodes.Getattr) or node.node.attr not in METHODS:
            self.expression(node.node, names)  # an unknown name or attribute says so first
            raise self.refuse("calling a function", "call only the methods " + ", ".join(METHODS))
        method = node.node.attr
        self.expression(node.node.node, names)
        args, kwargs = self.literals(node, f"{method}()")
        try:
            getattr("", method)(*args, **kwargs)
        except (TypeError, ValueError) as error:
            raise ConfigError(
                f"{self.setting}: bad arguments to {method}() in template {self.source!r} ({error})"
            ) from None

    def filter(self, node: nodes.Filter, names: frozenset[str]) -> None:
        spec = FILTERS.get(node.name)
        if spec is None:
            raise ConfigError(
                f"{self.setting}: unknown filter {node.name!r} in template {self.source!r}; "
                f"filters: {', '.join(FILTERS)}"
            )
        if node.node is not None:
            self.expression(node.node, names)
        args, kwargs = self.literals(node, f"filter {node.name!r}")
        try:
            inspect.signature(spec.vector).bind(None, *args, **kwargs)
            spec.vector(pd.Series([""], dtype="string"), *args, **kwargs)
        except (TypeError, ValueError) as error:
            raise ConfigError(
                f"{self.setting}: bad arguments to filter {node.name!r} in template {self.source!r} "
                f"({error}); use {spec.usage}"
            ) from None


class Template:
    """One configured template, e.g. the ``[names] course_long_name`` setting.

    ``strip``: values come out with ``CANVAS_STRIPPED`` taken off their ends, as Canvas reads them.
    """

    def __init__(
        self, setting: str, source: str, namespaces: Mapping[str, Sequence[str]], *, strip: bool = False
    ) -> None:
        self.setting = setting
        self.source = source
        self.namespaces = namespaces
        self.strip = strip
        try:
            self._tree = _parse(source)
        except jinja2.TemplateSyntaxError as error:
            raise ConfigError(
                f"{setting}: template {source!r} is not valid jinja2 ({error.message})"
            ) from None
        checker = _Checker(setting, source, namespaces)
        checker.statements(self._tree.body, frozenset())
        self.variables = sorted(checker.variables)

    def render(self, frame: pd.DataFrame) -> Column:
        """Render over ``frame``, whose columns are named ``"<namespace>.<field>"``; returns strings."""
        values = {name: frame[name].fillna("").astype("string") for name in self.variables}
        index = frame.index
        read = sum((_lengths(values[name]) for name in self.variables), np.zeros(len(index), dtype=np.int64))
        budget = TEMPLATE_GROWTH * (len(self.source) + read)
        try:
            out = self._vector(self._tree, _Scope(values, index, budget))
        except _NotVectorisable:
            out = self._row_by_row(values, index)
        out = out.astype("string")
        if self.strip:
            strings = pa.array(out.array, type=pa.large_string(), from_pandas=True)
            out = pd.Series(pd.arrays.ArrowStringArray(pc.utf8_trim(strings, CANVAS_STRIPPED)), index=index)
        return out

    def too_long(self) -> ConfigError:
        return ConfigError(
            f"{self.setting}: template {self.source!r} renders a value more than {TEMPLATE_GROWTH} times as "
            "long as the template and the values it reads together; make it grow values less (a replace "
            "of '' or a loop over a value that prints it)"
        )

    def _fits(self, lengths: np.ndarray, scope: _Scope) -> None:
        """Raise the config error when a value of these lengths would exceed its row's budget."""
        if len(lengths) and bool((lengths > scope.budget).any()):
            raise self.too_long()

    def _vector(self, node: nodes.Node, scope: _Scope) -> Column:
        out = self._vector_node(node, scope)
        self._fits(_lengths(out), scope)
        return out

    def _vector_node(self, node: nodes.Node, scope: _Scope) -> Column:
        index = scope.index
        if isinstance(node, nodes.Template):
            return self._concat([self._vector(child, scope) for child in node.body], scope)
        if isinstance(node, nodes.Output | nodes.Concat):
            return self._concat([self._vector(child, scope) for child in node.nodes], scope)
        if isinstance(node, nodes.TemplateData):
            return pd.Series(node.data, index=index, dtype="string")
        if isinstance(node, nodes.Const) and _is_text(node.value):
            return pd.Series(str(node.value), index=index, dtype="string")
        if isinstance(node, nodes.If) and not node.elif_:
            test = self._vector(node.test, scope) != ""
            then = self._concat([self._vector(child, scope) for child in node.body], scope)
            otherwise = self._concat([self._vector(child, scope) for child in node.else_], scope)
            return then.where(test, otherwise)
        if isinstance(node, nodes.CondExpr):
            test = self._vector(node.test, scope) != ""
            then = self._vector(node.expr1, scope)
            otherwise = (
                self._vector(node.expr2, scope)
                if node.expr2 is not None
                else pd.Series("", index=index, dtype="string")
            )
            return then.where(test, otherwise)
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            return scope.values[f"{node.node.name}.{node.attr}"]
        if isinstance(node, nodes.Or):
            left = self._vector(node.left, scope)
            right = self._vector(node.right, scope)
            return left.where(left != "", right)
        if isinstance(node, nodes.Filter) and node.name in FILTERS and node.node:
            args = [_literal(arg) for arg in node.args]
            kwargs = {str(kw.key): _literal(kw.value) for kw in node.kwargs}
            value = self._vector(node.node, scope)
            if node.name == "replace":
                self._fits(_replaced_lengths(value, *args, **kwargs), scope)
            return FILTERS[node.name].vector(value, *args, **kwargs)
        raise _NotVectorisable

    def _concat(self, parts: list[Column], scope: _Scope) -> Column:
        """The parts joined, once their joined lengths are known to fit the budget."""
        if len(parts) > 1:
            self._fits(
                sum((_lengths(part) for part in parts), np.zeros(len(scope.index), dtype=np.int64)), scope
            )
        return _concat(parts, scope.index)

    def _row_by_row(self, values: Mapping[str, Column], index: pd.Index) -> Column:
        template = SANDBOX.from_string(self.source)
        if not self.variables:
            return pd.Series(self._render_one(template, {}), index=index, dtype="string")
        table = pd.DataFrame(dict(values), index=index)
        distinct = table.drop_duplicates()
        rendered: list[str] = []
        for row in distinct.itertuples(index=False, name=None):
            fields: dict[str, dict[str, str]] = {}
            for name, value in zip(self.variables, row, strict=True):
                namespace, field = name.split(".", 1)
                fields.setdefault(namespace, {})[field] = value
            rendered.append(self._render_one(template, fields))
        distinct = distinct.assign(_rendered=rendered)
        merged = table.merge(distinct, on=list(self.variables), how="left")
        return pd.Series(merged["_rendered"].to_numpy(), index=index, dtype="string")

    def _render_one(self, template: jinja2.Template, fields: Mapping[str, dict[str, str]]) -> str:
        """One row rendered by jinja2, streamed so that it stops as soon as the output passes the row's
        budget."""
        budget = TEMPLATE_GROWTH * (
            len(self.source) + sum(len(value) for values in fields.values() for value in values.values())
        )
        token = _ROW_BUDGET.set(budget)
        try:
            parts: list[str] = []
            size = 0
            for part in template.generate(
                {namespace: _Fields(values) for namespace, values in fields.items()}
            ):
                size += len(part)
                if size > budget:
                    raise _TooLong
                parts.append(part)
            return "".join(parts)
        except _TooLong:
            raise self.too_long() from None
        except jinja2.exceptions.SecurityError as error:
            raise ConfigError(
                f"{self.setting}: template {self.source!r} was refused by the sandbox ({error}); {ALLOWED}"
            ) from None
        except Exception as error:  # the template is the config's code: whatever it raises is a config error
            raise ConfigError(f"{self.setting}: template {self.source!r} failed: {error}") from None
        finally:
            _ROW_BUDGET.reset(token)


@dataclass(frozen=True)
class _Scope:
    """What the vectorised path renders over: the values of the variables, the rows, and each row's budget
    (the most characters a value of the row may hold)."""

    values: Mapping[str, Column]
    index: pd.Index
    budget: np.ndarray


def _lengths(values: Column) -> np.ndarray:
    """Each value's length in characters (0 where missing)."""
    counted = pc.fill_null(
        pc.utf8_length(pa.array(values.array, type=pa.large_string(), from_pandas=True)), 0
    )
    return np.asarray(counted.to_numpy(zero_copy_only=False), dtype=np.int64)


def _replaced_lengths(values: Column, old: object, new: object, count: int | None = None) -> np.ndarray:
    """The lengths ``_replace`` would give ``values``, counted before it runs."""
    strings = pa.array(values.array, type=pa.large_string(), from_pandas=True)
    length = np.asarray(
        pc.fill_null(pc.utf8_length(strings), 0).to_numpy(zero_copy_only=False), dtype=np.int64
    )
    old_text, new_text = str(old), str(new)
    if old_text == "":
        occurrences = length + 1
    else:
        found = pc.fill_null(pc.count_substring(strings, old_text), 0)
        occurrences = np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)
    if count is not None and count >= 0:
        occurrences = np.minimum(occurrences, count)
    return length + occurrences * (len(new_text) - len(old_text))


def _is_text(value: object) -> bool:
    """True for a constant the vectorised path may render as text: a string, or a number that is true (a
    false one, like ``0`` or ``false``, would be a non-empty, so true, text)."""
    return isinstance(value, str) or (
        isinstance(value, int | float) and not isinstance(value, bool) and value != 0
    )


def _concat(parts: list[Column], index: pd.Index) -> Column:
    if not parts:
        return pd.Series("", index=index, dtype="string")
    out = parts[0]
    for part in parts[1:]:
        out = out + part
    return out


def is_identity(source: str, namespace: str, field: str = "id") -> bool:
    """True when ``source`` renders exactly ``namespace.field`` (so no integration_id is needed)."""
    tree = _parse(source)
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output) or len(tree.body[0].nodes) != 1:
        return False
    node = tree.body[0].nodes[0]
    return (
        isinstance(node, nodes.Getattr)
        and isinstance(node.node, nodes.Name)
        and node.node.name == namespace
        and node.attr == field
    )
