from django.contrib import admin
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html

from media.models import Asset


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["preview", "original_name", "owner", "kind", "size", "dimensions", "created_at"]
    list_display_links = ["preview", "original_name"]
    list_filter = ["kind", "created_at"]
    date_hierarchy = "created_at"
    search_fields = ["original_name", "sha256", "owner__email"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    readonly_fields = [
        "preview", "file", "thumbnail", "sha256", "size_bytes", "content_type", "kind",
        "width", "height", "duration_seconds", "fps", "frame_count", "created_at",
    ]

    def has_add_permission(self, request):
        # Assets come in through the upload service, which validates and hashes them.
        return False

    @admin.display(description="Preview")
    def preview(self, asset):
        if not asset.thumbnail:
            return "—"
        return format_html('<img src="{}" alt="" style="max-height:64px;max-width:96px">', asset.thumbnail.url)

    @admin.display(description="Size", ordering="size_bytes")
    def size(self, asset):
        return filesizeformat(asset.size_bytes)

    @admin.display(description="Dimensions")
    def dimensions(self, asset):
        text = f"{asset.width}×{asset.height}"
        if asset.duration_seconds is not None:
            text += f", {asset.duration_seconds:.1f} s"
        return text
