"""`?ordering=` with a tie-break, for every list of the API."""

from rest_framework.filters import OrderingFilter


class StableOrderingFilter(OrderingFilter):
    """The requested ordering, then the primary key in the direction of its first field.

    Many rows share a status or a severity: ordered by that alone, the database may return
    them in any order, and page 2 could repeat a row of page 1 or skip one. The key in the
    same direction keeps a single index usable both ways (the field's own, walked forward
    or backward, with PostgreSQL's incremental sort for the ties)."""

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        if not ordering or not request.query_params.get(self.ordering_param):
            return ordering  # the model's or the view's default, already total
        if ordering[-1].lstrip("-") in ("pk", "id"):
            return ordering
        direction = "-" if ordering[0].startswith("-") else ""
        return [*ordering, f"{direction}pk"]
