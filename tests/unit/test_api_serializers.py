"""The API's ModelSerializer base: the model read once per class, each instance with fields of its own."""

from __future__ import annotations

from rest_framework import serializers

from config.api import ModelSerializer
from recognition.models import Job


def test_a_model_serializer_reads_its_model_once_and_gives_each_instance_its_own_fields(monkeypatch):
    built = []
    build_field = serializers.ModelSerializer.build_field

    def counted(self, field_name, *args):
        built.append(field_name)
        return build_field(self, field_name, *args)

    monkeypatch.setattr(serializers.ModelSerializer, "build_field", counted)

    class Probe(ModelSerializer):
        class Meta:
            model = Job
            fields = ("id", "stage")

    first, second = Probe(), Probe(context={"who": "second"})
    assert list(first.fields) == ["id", "stage"] and built == ["id", "stage"]
    assert list(second.fields) == ["id", "stage"] and built == ["id", "stage"]  # copied, not built again
    assert first.fields["stage"] is not second.fields["stage"]
    assert first.fields["stage"].parent is first and second.fields["stage"].context == {"who": "second"}

    class Narrower(Probe):  # a subclass reads its own Meta, not its parent's fields
        class Meta(Probe.Meta):
            fields = ("id",)

    assert list(Narrower().fields) == ["id"]
    assert list(Probe().fields) == ["id", "stage"]
