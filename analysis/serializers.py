"""The reports API's query parameters and, for the OpenAPI schema, the shape of each report's
rows. Rows themselves come straight from SQL (``queries``); these classes document them."""

from __future__ import annotations

from rest_framework import serializers

from analysis import reports
from analysis.filters import KINDS

FIELD_FOR_KIND = {
    "int": lambda help_text: serializers.IntegerField(help_text=help_text, allow_null=True),
    "float": lambda help_text: serializers.FloatField(help_text=help_text, allow_null=True),
    "seconds": lambda help_text: serializers.FloatField(help_text=help_text, allow_null=True),
    "share": lambda help_text: serializers.FloatField(help_text=help_text, allow_null=True),
    "bytes": lambda help_text: serializers.IntegerField(help_text=help_text),
    "date": lambda help_text: serializers.DateField(help_text=help_text),
    "datetime": lambda help_text: serializers.DateTimeField(help_text=help_text, allow_null=True),
    "text": lambda help_text: serializers.CharField(help_text=help_text, allow_null=True),
    "bool": lambda help_text: serializers.BooleanField(help_text=help_text),
}


class ModelVersionSerializer(serializers.Serializer):
    model = serializers.ChoiceField(choices=["face", "image"])
    version = serializers.CharField()
    count = serializers.IntegerField()


class ReportQuerySerializer(serializers.Serializer):
    since = serializers.DateField(required=False, help_text="First day counted (YYYY-MM-DD, inclusive).")
    until = serializers.DateField(required=False, help_text="Last day counted (YYYY-MM-DD, inclusive).")
    kind = serializers.ChoiceField(choices=KINDS, required=False, help_text="Only photos (image) or videos.")
    person = serializers.IntegerField(required=False, help_text="A person's id: the assets they appear in, "
                                                               "their faces, those assets' jobs.")
    owner = serializers.CharField(required=False, help_text="Staff only: one user's data (id or email); "
                                                           "without it staff see everyone's. Anyone else "
                                                           "naming another user gets 403.")


class FiltersSerializer(serializers.Serializer):
    owner = serializers.IntegerField(allow_null=True, help_text="Whose data (null: everyone's, staff only).")
    since = serializers.DateField(allow_null=True)
    until = serializers.DateField(allow_null=True)
    kind = serializers.CharField(allow_null=True)
    person = serializers.IntegerField(allow_null=True)


def row_serializer(report: reports.Report) -> type[serializers.Serializer]:
    fields = {}
    for column in report.columns:
        if column.kind == "list":
            fields[column.name] = ModelVersionSerializer(many=True, help_text=column.help)
        else:
            fields[column.name] = FIELD_FOR_KIND[column.kind](column.help or column.label)
    name = f"{report.name.title()}ReportRow"
    return type(name, (serializers.Serializer,), fields)


def body_serializer(report: reports.Report) -> type[serializers.Serializer]:
    fields = {
        "report": serializers.CharField(),
        "title": serializers.CharField(),
        "filters": FiltersSerializer(),
        "columns": serializers.ListField(child=serializers.CharField(), help_text="The rows' keys, in order."),
        "rows": row_serializer(report)(many=True),
    }
    return type(f"{report.name.title()}Report", (serializers.Serializer,), fields)


class ReportIndexSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    url = serializers.URLField()
    csv_url = serializers.URLField()
    columns = serializers.ListField(child=serializers.CharField())
