"""The API's one parser: DRF's JSON parser, bounded in nesting depth."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# No request body of ours nests deeper than a few levels (a post-mortem's factors are 3).
MAX_DEPTH = 32


class BoundedJSONParser(parsers.JSONParser):
    """JSON nested at most MAX_DEPTH arrays and objects deep.

    Python's decoder recurses once per level, so a body of 10,000 "[" exhausts the
    stack (a RecursionError, a 500); anything between our limit and that would only
    make every later step walk a pointless tree.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        too_deep = ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.")
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise too_deep from None
        if nests_deeper_than(data, MAX_DEPTH):
            raise too_deep
        return data


def nests_deeper_than(data, limit: int) -> bool:
    """Return True if `data` holds arrays or objects more than `limit` levels deep."""
    # A loop, not recursion: the check must not fail the way the decoder does.
    stack = [(data, 1)] if isinstance(data, dict | list) else []
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
