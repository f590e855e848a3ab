"""How report values read on the pages: seconds with a unit, shares as percentages, sizes in
bytes as KB/MB/GB, times to the minute. The CSV and the API keep the raw values."""

from __future__ import annotations

from datetime import date, datetime

from django import template
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

register = template.Library()


@register.filter
def report_cell(value, column) -> str:
    if value is None:
        return "–"
    kind = column.kind
    if kind == "seconds":
        return f"{value:.2f}"
    if kind == "share":
        return f"{100 * value:.1f}%"
    if kind == "bytes":
        return filesizeformat(value)
    if kind == "float":
        return f"{value:,.1f}"
    if kind == "int":
        return f"{value:,}"
    if kind == "bool":
        return "yes" if value else "no"
    if kind == "list":
        return "; ".join(f"{item['model']}: {item['version']} ({item['count']:,})" for item in value)
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@register.filter
def is_numeric(column) -> bool:
    return column.kind in {"int", "float", "seconds", "share", "bytes"}


@register.filter
def get_item(row: dict, key: str):
    return row.get(key)
