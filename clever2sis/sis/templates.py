"""Render jinja2 naming templates over whole DataFrame columns.

Ids and names are configured as jinja2 templates (``"{{ course.number }} {{ section.period }}"``). Rendering
one template per row would cost seconds per million users, so templates made of the common parts (text,
``{{ ns.field }}``, ``a or b``, and the filters in ``VECTOR_FILTERS``) are translated into pandas string
operations. Any other template is rendered row by row with jinja2 itself, once per distinct combination of
the values it uses, so the result is the same either way.

Missing values render as the empty string, and an empty string is false in ``a or b``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import cache

import jinja2
import jinja2.meta
import jinja2.nodes as nodes
import pandas as pd

from clever2sis.errors import ConfigError

Column = pd.Series  # a "string" dtype Series, never <NA> (missing is "")


def _lower(value: Column) -> Column:
    return value.str.lower()


def _upper(value: Column) -> Column:
    return value.str.upper()


def _trim(value: Column) -> Column:
    return value.str.strip()


def _title(value: Column) -> Column:
    return value.str.title()


def _slug(value: Column) -> Column:
    return value.str.lower().str.replace(r"[^0-9a-z]+", "-", regex=True).str.strip("-")


def slug(value: str) -> str:
    """Lower case, every run of characters other than a-z and 0-9 made one ``-`` (for ids)."""
    return re.sub(r"[^0-9a-z]+", "-", value.lower()).strip("-")


VECTOR_FILTERS: dict[str, Callable[[Column], Column]] = {
    "lower": _lower,
    "upper": _upper,
    "trim": _trim,
    "title": _title,
    "slug": _slug,
}


_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
_ENV.filters["slug"] = slug


class _NotVectorisable(Exception):
    pass


@cache
def _parse(source: str) -> nodes.Template:
    return _ENV.parse(source)


class Template:
    """One configured template, e.g. the ``[names] course_long_name`` setting."""

    def __init__(self, setting: str, source: str, namespaces: Mapping[str, Sequence[str]]) -> None:
        self.setting = setting
        self.source = source
        self.namespaces = namespaces
        try:
            self._tree = _parse(source)
        except jinja2.TemplateSyntaxError as error:
            raise ConfigError(
                f"{setting}: template {source!r} is not valid jinja2 ({error.message})"
            ) from None
        self.variables = sorted(self._find_variables())

    def _find_variables(self) -> set[str]:
        found: set[str] = set()
        for name in sorted(jinja2.meta.find_undeclared_variables(self._tree)):
            if name not in self.namespaces:
                raise ConfigError(
                    f"{self.setting}: unknown template variable {name!r} in {self.source!r}; "
                    f"available here: {', '.join(sorted(self.namespaces))}"
                )
        for attr in self._tree.find_all(nodes.Getattr):
            if isinstance(attr.node, nodes.Name) and attr.node.name in self.namespaces:
                fields = self.namespaces[attr.node.name]
                if attr.attr not in fields:
                    raise ConfigError(
                        f"{self.setting}: unknown template variable '{attr.node.name}.{attr.attr}' in "
                        f"{self.source!r}; {attr.node.name} has: {', '.join(fields)}"
                    )
                found.add(f"{attr.node.name}.{attr.attr}")
        return found

    def render(self, frame: pd.DataFrame) -> Column:
        """Render over ``frame``, whose columns are named ``"<namespace>.<field>"``; returns strings."""
        values = {name: frame[name].fillna("").astype("string") for name in self.variables}
        index = frame.index
        try:
            out = self._vector(self._tree, values, index)
        except _NotVectorisable:
            out = self._row_by_row(values, index)
        return out.astype("string")

    def _vector(self, node: nodes.Node, values: Mapping[str, Column], index: pd.Index) -> Column:
        if isinstance(node, nodes.Template):
            parts = [self._vector(child, values, index) for child in node.body]
            return _concat(parts, index)
        if isinstance(node, nodes.Output):
            return _concat([self._vector(child, values, index) for child in node.nodes], index)
        if isinstance(node, nodes.TemplateData):
            return pd.Series(node.data, index=index, dtype="string")
        if isinstance(node, nodes.Const) and isinstance(node.value, str | int | float):
            return pd.Series(str(node.value), index=index, dtype="string")
        if isinstance(node, nodes.Concat):
            return _concat([self._vector(child, values, index) for child in node.nodes], index)
        if isinstance(node, nodes.If) and not node.elif_:
            test = self._vector(node.test, values, index) != ""
            then = _concat([self._vector(child, values, index) for child in node.body], index)
            otherwise = _concat([self._vector(child, values, index) for child in node.else_], index)
            return then.where(test, otherwise)
        if isinstance(node, nodes.CondExpr):
            test = self._vector(node.test, values, index) != ""
            then = self._vector(node.expr1, values, index)
            otherwise = (
                self._vector(node.expr2, values, index)
                if node.expr2 is not None
                else pd.Series("", index=index, dtype="string")
            )
            return then.where(test, otherwise)
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            return values[f"{node.node.name}.{node.attr}"]
        if isinstance(node, nodes.Or):
            left = self._vector(node.left, values, index)
            right = self._vector(node.right, values, index)
            return left.where(left != "", right)
        if isinstance(node, nodes.Filter) and node.name in VECTOR_FILTERS and not node.args and node.node:
            return VECTOR_FILTERS[node.name](self._vector(node.node, values, index))
        raise _NotVectorisable

    def _row_by_row(self, values: Mapping[str, Column], index: pd.Index) -> Column:
        template = _ENV.from_string(self.source)
        if not self.variables:
            return pd.Series(template.render(), index=index, dtype="string")
        table = pd.DataFrame(dict(values), index=index)
        distinct = table.drop_duplicates()
        rendered: list[str] = []
        for row in distinct.itertuples(index=False, name=None):
            context: dict[str, dict[str, str]] = {}
            for name, value in zip(self.variables, row, strict=True):
                namespace, field = name.split(".", 1)
                context.setdefault(namespace, {})[field] = value
            try:
                rendered.append(template.render(**context))
            except jinja2.TemplateError as error:
                raise ConfigError(f"{self.setting}: template {self.source!r} failed: {error}") from None
        distinct = distinct.assign(_rendered=rendered)
        merged = table.merge(distinct, on=list(self.variables), how="left")
        return pd.Series(merged["_rendered"].to_numpy(), index=index, dtype="string")


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
