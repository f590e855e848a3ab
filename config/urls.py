from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import health, views

api_v1 = [
    path("", include("accounts.api_urls")),
    path("", include("recognition.api_urls")),
    path("", include("analysis.api_urls")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    # Browsers and tools that ask for /favicon.ico without reading the page's <link rel="icon">.
    path("favicon.ico", views.favicon),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("recognition.urls")),
    path("", include("analysis.urls")),
    path("", include("accounts.urls")),
]

handler400 = "config.views.bad_request"
handler403 = "config.views.permission_denied"
handler404 = "config.views.page_not_found"
handler500 = "config.views.server_error"
