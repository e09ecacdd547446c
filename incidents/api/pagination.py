"""Pagination for the API's lists: bounded page sizes, and counts that stay cheap at
100,000 incidents."""

import math
from functools import cached_property

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.settings import api_settings


class BoundedPageSize:
    """`page_size` from 1 to `max_page_size`, or a 400 naming it (DRF would quietly use
    the default for `null` or `0`). Empty counts as not given, as for every parameter."""

    page_size_query_param = "page_size"

    def get_page_size(self, request):
        value = request.query_params.get(self.page_size_query_param, "")
        if not value:
            return self.page_size
        try:
            size = int(value)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"Give a number from 1 to {self.max_page_size}."]}
            )
        return size

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
                parameter["description"] = (
                    f"Results per page, 1 to {self.max_page_size}; default {self.page_size}."
                )
        return parameters


class OpenEndedPage(Page):
    """A page of a list counted only up to the limit: whether another page follows is
    known from one row fetched past this one, not from the count."""

    def __init__(self, object_list, number, paginator, more: bool):
        super().__init__(object_list, number, paginator)
        self.more = more

    def has_next(self):
        return self.more


class BoundedCountPaginator(Paginator):
    """Counts at most `limit` rows. A full COUNT(*) over every incident a user may see
    costs a scan of the whole visible set on every page (ECOSYSTEM pitfall 12); counting
    up to a limit stops early. Past the limit the count says "at least", and the pages go
    on to the end: each one fetches a row past itself to know whether another follows."""

    limit = 1_000

    @cached_property
    def _counted(self) -> int:
        # Only the keys, unordered: the inner query needs neither the columns, nor the
        # annotations (a commander subquery per row), nor a sort.
        return self.object_list.order_by().values("pk")[: self.limit + 1].count()

    @property
    def count(self) -> int:
        return min(self._counted, self.limit)

    @property
    def count_exact(self) -> bool:
        return self._counted <= self.limit

    def validate_number(self, number):
        if self.count_exact:
            return super().validate_number(number)
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger(self.error_messages["invalid_page"]) from None
        if number < 1:
            raise EmptyPage(self.error_messages["min_page"])
        return number

    def page(self, number):
        number = self.validate_number(number)
        if self.count_exact:
            return super().page(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])
        if not rows:
            raise EmptyPage(self.error_messages["no_results"])
        return OpenEndedPage(rows[: self.per_page], number, self, more=len(rows) > self.per_page)

    @property
    def num_pages(self) -> int:
        return max(1, math.ceil(self.count / self.per_page))


class SearchCountPaginator(BoundedCountPaginator):
    """A search counts to 100: its matches are found by reading the rows (a word in 8 %
    of 100,000 incidents: 13,000 rows read, 43 ms, to count 1,000 of them)."""

    limit = 100


class StandardPagination(BoundedPageSize, PageNumberPagination):
    """Page numbers, with `count` exact up to 1,000 rows (100 for a search) and
    `count_exact`; past that it is the limit and `count_exact` false, and `next` still
    leads to the last page."""

    page_size = 50
    max_page_size = 200
    django_paginator_class = BoundedCountPaginator

    def paginate_queryset(self, queryset, request, view=None):
        if request.query_params.get(api_settings.SEARCH_PARAM, "").strip():
            self.django_paginator_class = SearchCountPaginator
        return super().paginate_queryset(queryset, request, view)

    def get_page_number(self, request, paginator):
        # page=last is the last page while the count is exact; past the limit nobody
        # knows which page that is without the full count this avoids.
        asked = request.query_params.get(self.page_query_param)
        if asked in self.last_page_strings and not paginator.count_exact:
            raise exceptions.NotFound(
                f"page=last needs an exact count, and there are more than "
                f"{paginator.limit:,}: follow `next` to the end."
            )
        return super().get_page_number(request, paginator)

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["count_exact"] = self.page.paginator.count_exact
        return response

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["count"]["description"] = (
            f"How many there are, counted up to {BoundedCountPaginator.limit:,} "
            f"({SearchCountPaginator.limit} for a search)."
        )
        paginated["properties"]["count_exact"] = {
            "type": "boolean",
            "description": "False when there are more than that (count then stops "
            "there; follow `next` to the end).",
        }
        paginated["required"].append("count_exact")
        return paginated


class TimelinePagination(BoundedPageSize, CursorPagination):
    ordering = ("occurred_at", "id")
    page_size = 100
    max_page_size = 500
