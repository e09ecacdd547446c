"""The OpenAPI description of errors beyond those drf-standardized-errors documents."""

from drf_standardized_errors.openapi import AutoSchema

from .errors import ErrorResponse413Serializer

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class SitrepAutoSchema(AutoSchema):
    """Also document the 413 of an operation that reads a request body, and the 400
    that any operation answers to a NUL in its path or query string (RefuseNulMiddleware)."""

    def _get_extra_validation_errors(self):
        errors = super()._get_extra_validation_errors()
        errors[None] = {*errors.get(None, ()), "null_characters_not_allowed"}
        return errors

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction=direction)
        if direction == "response" and self._reads_body() and "413" not in responses:
            responses["413"] = self._get_response_for_code(ErrorResponse413Serializer, "413")
        return responses

    def _reads_body(self) -> bool:
        return self.method in BODY_METHODS and self.get_request_serializer() is not None
