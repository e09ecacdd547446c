"""The schema view behind /api/schema/ and the docs pages.

Apart from incidents/api/schema.py, which the schema generator itself imports (through
DEFAULT_SCHEMA_CLASS) before drf-spectacular's views can be.
"""

from django.utils import translation
from drf_spectacular.views import SpectacularAPIView
from rest_framework.response import Response


class CachedSchemaView(SpectacularAPIView):
    """/api/schema/, generated once per process (per version and language): it changes
    only with the code, and generating it takes over a second, which every docs page
    and client would otherwise wait for."""

    _schemas: dict = {}

    def _get_schema_response(self, request):
        version = self.api_version or request.version or self._get_version_parameter(request)
        key = (version, translation.get_language())
        if key not in self._schemas:
            generator = self.generator_class(
                urlconf=self.urlconf, api_version=version, patterns=self.patterns
            )
            self._schemas[key] = generator.get_schema(request=request, public=self.serve_public)
        filename = self._get_filename(request, version)
        return Response(
            self._schemas[key], headers={"Content-Disposition": f'inline; filename="{filename}"'}
        )
