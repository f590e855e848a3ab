"""Forms for the recognition pages: add or rename a person, say who a face is."""

from __future__ import annotations

from django import forms

from recognition.models import Subject


class SubjectForm(forms.Form):
    """A new person (names are unique per owner regardless of case; ``corrections`` checks)."""

    name = forms.CharField(max_length=200)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class RenameForm(forms.Form):
    name = forms.CharField(max_length=200, label="Name")


NEW_PERSON = "new"


class FaceSubjectForm(forms.Form):
    """Who a face is: one of the face owner's people, a new person (``subject`` "new" with
    ``new_name``), or empty for unknown."""

    subject = forms.CharField(required=False)
    new_name = forms.CharField(required=False, max_length=200, label="New person's name")

    def __init__(self, *args, face, **kwargs):
        super().__init__(*args, **kwargs)
        self.face = face

    def clean(self):
        data = super().clean()
        choice = data.get("subject", "")
        new_name = data.get("new_name", "").strip()
        data["new_name"] = ""
        if choice == NEW_PERSON or (not choice and new_name):
            if not new_name:
                self.add_error("new_name", "Type the new person's name.")
            data["new_name"], data["subject"] = new_name, None
        elif choice:
            # The face's owner's people, not the viewer's: staff must not file one user's face
            # under another's person.
            subject = Subject.objects.filter(owner_id=self.face.owner_id, pk=choice).first() if choice.isdigit() else None
            if subject is None:
                self.add_error("subject", "Choose one of your people.")
            data["subject"] = subject
        else:
            data["subject"] = None
        return data
