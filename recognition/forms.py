"""Forms for the recognition pages: create a person, say who a face is."""

from __future__ import annotations

from django import forms

from recognition.models import Subject


class SubjectForm(forms.ModelForm):
    """A new person for ``owner``; names are unique per owner regardless of case."""

    class Meta:
        model = Subject
        fields = ["name", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Enter a name.")
        # Checked here for a friendly message; the database constraint is the real guard.
        if Subject.objects.filter(owner=self.owner, name__iexact=name).exists():
            raise forms.ValidationError(f"You already have a person called “{name}”.")
        return name

    def save(self, commit=True):
        self.instance.owner = self.owner
        return super().save(commit)


class FaceSubjectForm(forms.Form):
    """Who a face is: one of the face owner's subjects, or empty for unknown."""

    subject = forms.ModelChoiceField(queryset=Subject.objects.none(), required=False, empty_label="unknown")

    def __init__(self, *args, face, **kwargs):
        super().__init__(*args, **kwargs)
        # The face's owner, not the viewer: staff must not file one user's face under another's person.
        self.fields["subject"].queryset = Subject.objects.filter(owner_id=face.owner_id)
