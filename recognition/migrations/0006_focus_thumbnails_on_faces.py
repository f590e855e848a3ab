"""Photos processed before thumbnails had a focus: point each at its largest face, as the
pipeline now does when it stores a photo's faces (``media.services.focus_thumbnail_on``)."""

from django.db import migrations

FOCUS_ON_LARGEST_FACE = """
    UPDATE media_asset a
    SET focus_x = round(least(greatest(((f.x1 + f.x2) / 2) / a.width, 0), 1)::numeric, 4),
        focus_y = round(least(greatest(((f.y1 + f.y2) / 2) / a.height, 0), 1)::numeric, 4)
    FROM (
        SELECT DISTINCT ON (asset_id) asset_id,
               (box->>0)::float8 AS x1, (box->>1)::float8 AS y1, (box->>2)::float8 AS x2, (box->>3)::float8 AS y2
        FROM recognition_face
        WHERE NOT dismissed AND frame_index IS NULL
        ORDER BY asset_id, ((box->>2)::float8 - (box->>0)::float8) * ((box->>3)::float8 - (box->>1)::float8) DESC
    ) f
    WHERE a.id = f.asset_id AND a.kind = 'image' AND a.width > 0 AND a.height > 0
"""


class Migration(migrations.Migration):
    dependencies = [("recognition", "0005_drop_tags_not_to_keep"), ("media", "0002_asset_thumbnail_focus")]

    operations = [migrations.RunSQL(FOCUS_ON_LARGEST_FACE, migrations.RunSQL.noop)]
