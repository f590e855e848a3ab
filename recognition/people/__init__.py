"""People: the human corrections that teach recognition, and clustering of unknown faces.

- ``corrections``: what a person decides (name a face, "not this person", "not a face", name,
  merge, hide, delete and erase a person). Every decision is recorded on the face
  (``decided_by="human"``) and nothing automatic undoes it.
- ``clustering``: unknown faces grouped into people without a name, after each job
  (``cluster_new_faces``) and in full (``recluster``), honouring every human decision.
"""
