"""Walk every URL the project serves, as any user, looking for a marker string.

The list of URLs is discovered, not written down: every pattern of the URL resolver
(admin, API, pages), its parameters filled from the rows in the database; for each
admin, its search and every link and GET form its changelist offers; the admin
autocomplete for every relation of every model; and for the API, every query
parameter its OpenAPI schema declares. A pattern nobody can fill is reported, so a new
app's URL cannot escape the walk silently.

Used by tests/test_confidentiality_walk.py; nothing here knows our apps' models.
"""

import html
import re
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from itertools import product
from urllib.parse import (
    parse_qsl,
    quote,
    quote_plus,
    unquote_plus,
    urlencode,
    urljoin,
    urlsplit,
)

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.options import ModelAdmin
from django.db import models, transaction
from django.db.models import Q
from django.urls import (
    NoReverseMatch,
    URLPattern,
    URLResolver,
    get_resolver,
    resolve,
    reverse,
)
from django.urls.exceptions import Resolver404
from django.utils import timezone
from django.utils.regex_helper import normalize
from simple_history.models import HistoricalChanges

# --- the rows to fill URLs from -------------------------------------------------------


def is_history_model(model) -> bool:
    return issubclass(model, HistoricalChanges)


def text_fields(model) -> list[models.Field]:
    return [
        f
        for f in model._meta.concrete_fields
        if isinstance(f, models.CharField | models.TextField | models.JSONField)
    ]


class Rows:
    """Which rows of each model the walk visits (a few queries per model, cached)."""

    def __init__(self, marker: str, also: dict | None = None):
        self.marker = marker
        self.also = also or {}  # model -> pks the test wants walked besides
        self._tainted: dict = {}
        self._walked: dict = {}

    def tainted(self, model) -> set:
        """Return the pks of rows holding the marker in any text or JSON field."""
        if model not in self._tainted:
            matches = Q()
            for f in text_fields(model):
                matches |= Q(**{f"{f.name}__icontains": self.marker})
            self._tainted[model] = (
                set(model._default_manager.filter(matches).values_list("pk", flat=True))
                if matches
                else set()
            )
        return self._tainted[model]

    def linked(self, model, targets_of=None) -> set:
        """Return the pks of rows that point (foreign key, many-to-many) at a marked row
        (or, with `targets_of`, at the rows it names for a model)."""
        targets_of = targets_of or self.tainted
        pks: set = set()
        for f in model._meta.get_fields():
            if not (
                f.is_relation and f.concrete and (f.many_to_one or f.one_to_one or f.many_to_many)
            ):
                continue
            if f.related_model is None or f.related_model is model:
                continue
            targets = targets_of(f.related_model)
            if targets:
                pks |= set(
                    model._default_manager.filter(**{f"{f.name}__in": targets}).values_list(
                        "pk", flat=True
                    )
                )
        return pks

    def walked(self, model) -> list:
        """Return the pks of the rows to visit: those holding the marker, those pointing
        at one, those the test names and those pointing at them (rows others may open,
        whose pages may name the marked ones), and the first row (every page renders)."""
        if model not in self._walked:
            first = model._default_manager.order_by("pk").values_list("pk", flat=True)[:1]
            pks = self.tainted(model) | self.linked(model) | set(first)
            pks |= set(self.also.get(model, ()))
            pks |= self.linked(model, lambda related: set(self.also.get(related, ())))
            self._walked[model] = sorted(pks, key=str)
        return self._walked[model]

    def history_ids(self, model, pk) -> list:
        name = getattr(model._meta, "simple_history_manager_attribute", None)
        if name is None:
            return []
        history = getattr(model, name)
        return list(
            history.filter(**{model._meta.pk.attname: pk})
            .order_by("history_id")
            .values_list("history_id", flat=True)
        )


# --- routes from the resolver -----------------------------------------------------------


@dataclass(frozen=True)
class Route:
    regex: str  # root to leaf, as Django's reverse() joins them
    name: str | None  # with its namespaces
    callback: Callable
    converters: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.name or '(unnamed)'} {self.regex!r}"

    @property
    def is_api(self) -> bool:
        return getattr(self.callback, "cls", None) is not None


def routes(patterns=None, prefix: str = "", namespace: str | None = None, converters=None):
    """Yield every endpoint pattern under the root URLconf."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    for pattern in patterns:
        regex = pattern.pattern.regex.pattern.removeprefix("^")
        found = {**(converters or {}), **getattr(pattern.pattern, "converters", {})}
        if isinstance(pattern, URLResolver):
            space = namespace
            if pattern.namespace:
                space = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from routes(pattern.url_patterns, prefix + regex, space, found)
        elif isinstance(pattern, URLPattern):
            name = pattern.name and (f"{namespace}:{pattern.name}" if namespace else pattern.name)
            yield Route(prefix + regex, name, pattern.callback, found)


def model_admin_of(callback) -> ModelAdmin | None:
    """Return the ModelAdmin serving a view, looking through the admin's wrappers."""
    seen = 0
    while callback is not None and seen < 10:
        owner = getattr(callback, "model_admin", None) or getattr(callback, "__self__", None)
        if isinstance(owner, ModelAdmin):
            return owner
        callback = getattr(callback, "__wrapped__", None)
        seen += 1
    return None


def api_model(route: Route):
    """Return (model, lookup field, URL kwarg) of a DRF view, or None."""
    view = getattr(route.callback, "cls", None)
    queryset = getattr(view, "queryset", None)
    if queryset is None:
        return None
    lookup = getattr(view, "lookup_field", "pk")
    return queryset.model, lookup, getattr(view, "lookup_url_kwarg", None) or lookup


class Unfillable(Exception):
    pass


@dataclass
class Filler:
    """Fills route parameters: from the admin or API view's own model, else from the
    explicit maps the test gives (kwarg name -> values; route name -> kwarg dicts)."""

    rows: Rows
    by_kwarg: dict[str, Callable[[], Iterable]]
    by_route: dict[str, Callable[[], Iterable[dict]]]

    def fill(self, route: Route, params: list[str]) -> list[dict]:
        if not params:
            return [{}]
        if route.name in self.by_route:
            return list(self.by_route[route.name]())
        model_admin = model_admin_of(route.callback)
        if model_admin is not None:
            return self._admin(route, model_admin, params)
        values: dict[str, list] = {}
        described = api_model(route)
        if described is not None:
            model, lookup, kwarg = described
            if kwarg in params:
                pks = self.rows.walked(model)
                values[kwarg] = list(
                    model._default_manager.filter(pk__in=pks).values_list(lookup, flat=True)
                )
        for name in params:
            if name in values:
                continue
            if name not in self.by_kwarg:
                raise Unfillable(name)
            values[name] = list(self.by_kwarg[name]())
        return [dict(zip(params, combo, strict=True)) for combo in product(*values.values())]

    def _admin(self, route, model_admin, params) -> list[dict]:
        model = model_admin.model
        pks = self.rows.walked(model)
        if len(params) == 2 and route.name and route.name.endswith("_simple_history"):
            # simple-history's version page: (object id, history id), positional.
            return [
                dict(zip(params, (pk, version), strict=True))
                for pk in pks
                for version in self.rows.history_ids(model, pk)
            ]
        if len(params) == 1:
            return [{params[0]: pk} for pk in pks]
        raise Unfillable(", ".join(params))


def build(route: Route, kwargs: dict) -> str:
    """Return the path of `route` with `kwargs`, the way reverse() builds it."""
    for template, params in normalize(route.regex):
        if set(params) == set(kwargs):
            text = {}
            for name, value in kwargs.items():
                converter = route.converters.get(name)
                value = str(converter.to_url(value) if converter else value)
                text[name] = quote(value, safe="/:@")
            return "/" + template % text
    raise Unfillable(f"no form of the pattern takes {sorted(kwargs)}")


def route_params(route: Route) -> list[str]:
    forms = normalize(route.regex)
    return list(forms[0][1]) if forms else []


@dataclass
class Discovery:
    urls: dict[str, str] = field(default_factory=dict)  # url -> where it came from
    unfillable: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    misrouted: list[str] = field(default_factory=list)
    patterns: int = 0  # how many URL patterns were filled

    def add(self, url: str, source: str) -> None:
        self.urls.setdefault(url, source)


def discover_routes(filler: Filler, skip: dict[str, str], discovery: Discovery) -> None:
    """Add a URL for every filling of every route not skipped."""
    for route in routes():
        if route.name in skip or route.regex in skip:
            discovery.skipped.append(route.label)
            continue
        params = route_params(route)
        try:
            fillings = filler.fill(route, params)
        except Unfillable as missing:
            discovery.unfillable.append(f"{route.label}: no filler for {missing}")
            continue
        discovery.patterns += 1
        for kwargs in fillings:
            url = build(route, kwargs)
            try:
                match = resolve(urlsplit(url).path)
            except Resolver404:
                match = None
            if match is None or match.func is not route.callback:
                discovery.misrouted.append(f"{route.label} filled as {url}")
                continue
            discovery.add(url, route.label)
            if route.is_api and url.endswith("/") and "format" not in kwargs:
                # The format-suffix twin (.json), whether or not the router still has it.
                discovery.add(url[:-1] + ".json", f"{route.label} (.json)")


# --- admin: searches, autocomplete --------------------------------------------------------


def admin_changelists() -> list[tuple[ModelAdmin, str]]:
    found = []
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        try:
            found.append((model_admin, reverse("admin:{}_{}_changelist".format(*info))))
        except NoReverseMatch:
            continue
    return found


def discover_admin_searches(term: str, discovery: Discovery) -> None:
    for model_admin, url in admin_changelists():
        if model_admin.search_fields:
            discovery.add(f"{url}?{urlencode({'q': term})}", f"{model_admin} search")


def discover_autocomplete(term: str, discovery: Discovery) -> None:
    """The admin autocomplete answers for any relation whose target admin has a search:
    ask it for every relation of every model, with the term and with none."""
    base = reverse("admin:autocomplete")
    asked = set()
    for model in apps.get_models():
        if is_history_model(model):
            continue
        for f in model._meta.get_fields():
            if not (
                f.is_relation and f.concrete and (f.many_to_one or f.one_to_one or f.many_to_many)
            ):
                continue
            remote = admin.site._registry.get(f.related_model)
            if remote is None or not remote.search_fields:
                continue
            # The answer depends on the target admin, the field it names rows by and
            # the relation's limit_choices_to: one source field per combination.
            to_field = getattr(f.remote_field, "field_name", None)
            key = (f.related_model, to_field, repr(f.get_limit_choices_to()))
            if key in asked:
                continue
            asked.add(key)
            for search in (term, ""):
                query = {
                    "app_label": model._meta.app_label,
                    "model_name": model._meta.model_name,
                    "field_name": f.name,
                    "term": search,
                }
                discovery.add(
                    f"{base}?{urlencode(query)}", f"autocomplete {model.__name__}.{f.name}"
                )


def discover_admin_prefills(rows: Rows, discovery: Discovery) -> None:
    """An admin add form takes initial values from its query string (?incident=<pk>) and
    renders the chosen row: ask each add form for each marked row it can point at."""
    for model in admin.site._registry:
        try:
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")
        except NoReverseMatch:
            continue
        for f in model._meta.get_fields():
            if not (f.is_relation and f.concrete and (f.many_to_one or f.many_to_many)):
                continue
            for pk in sorted(rows.tainted(f.related_model), key=str)[:2]:
                discovery.add(
                    f"{url}?{urlencode({f.name: pk})}", f"prefill {model.__name__}.{f.name}"
                )


# --- harvesting links and GET forms from pages --------------------------------------------


# Text boxes that take a date (django-filter renders DateFilter as type="text").
DATE_NAME = re.compile(r"(^|_)(date|after|before|from|to|since|until)$|_(at|on)$")


class PageParser(HTMLParser):
    """Collect a page's query links (href="?…") and its GET forms' fields."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.query_links: list[str] = []
        self.filter_links: list[str] = []  # those in the admin's filter sidebar
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._select: tuple[str, list] | None = None
        self._sidebar: list = [None, 0]  # its tag, and how deep inside it we are

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if a.get("id") == "changelist-filter":
            self._sidebar = [tag, 0]
        if tag == self._sidebar[0]:
            self._sidebar[1] += 1
        if tag == "a" and a.get("href", "").startswith("?"):
            self.query_links.append(a["href"])
            if self._sidebar[1]:
                self.filter_links.append(a["href"])
        elif tag == "form":
            if a.get("method", "get").lower() == "get":
                self._form = {"action": a.get("action", ""), "fixed": {}, "vary": []}
        elif self._form is None:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "reset", "image", "file"):
                return
            if kind == "hidden":
                self._form["fixed"][a["name"]] = a.get("value", "")
            elif kind in ("checkbox", "radio"):
                self._form["vary"].append((a["name"], "value", [a.get("value") or "on"]))
            elif (
                kind == "date" or "vDateField" in a.get("class", "") or DATE_NAME.search(a["name"])
            ):
                self._form["vary"].append((a["name"], "date", []))
            else:
                self._form["vary"].append((a["name"], "text", []))
        elif tag == "textarea" and a.get("name"):
            self._form["vary"].append((a["name"], "text", []))
        elif tag == "select" and a.get("name"):
            self._select = (a["name"], [])
        elif tag == "option" and self._select is not None and a.get("value"):
            self._select[1].append(a["value"])

    def handle_endtag(self, tag):
        if tag == self._sidebar[0] and self._sidebar[1]:
            self._sidebar[1] -= 1
        if tag == "select" and self._select is not None and self._form is not None:
            self._form["vary"].append((self._select[0], "value", self._select[1]))
            self._select = None
        elif tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None


def harvest(page_url: str, body: str, term: str, changelist: bool = False) -> list[str]:
    """Return the URLs a page links to by query string, and one per value its GET forms
    can send (every option of a select, the search term in text boxes, today in dates).
    Of an admin changelist, only the filter sidebar's links and exports are taken (its
    column sorting links show the same rows), without the facet counts."""
    parser = PageParser()
    parser.feed(body)
    path = urlsplit(page_url).path
    links = parser.query_links
    if changelist:
        exports = [link for link in links if "format=" in link]
        links = [link for link in parser.filter_links + exports if "_facets" not in link]
    found = [path + link for link in links]
    today = timezone.localdate().isoformat()
    for form in parser.forms:
        target = urlsplit(urljoin(page_url, form["action"])).path
        for name, kind, values in form["vary"]:
            choices = {"text": [term], "date": [today]}.get(kind, values)
            for value in choices:
                query = {**form["fixed"], name: value}
                found.append(f"{target}?{urlencode(query)}")
    return list(dict.fromkeys(found))


# --- API query parameters from the schema -------------------------------------------------


def api_schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def api_query_urls(
    schema: dict, urls: Iterable[str], values: Callable[[str, dict], list]
) -> list[tuple[str, str]]:
    """Return (url, source) for each query parameter value of each GET operation, applied
    to every discovered URL its schema path matches."""
    operations = []
    for path, item in schema.get("paths", {}).items():
        get = item.get("get")
        if not get:
            continue
        params = [p for p in get.get("parameters", []) if p.get("in") == "query"]
        if params:
            regex = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")
            operations.append((regex, path, params))
    found = []
    for url in urls:
        path = urlsplit(url).path
        if urlsplit(url).query:
            continue
        for regex, schema_path, params in operations:
            if not regex.match(path):
                continue
            for param in params:
                for value in values(param["name"], param.get("schema", {})):
                    found.append(
                        (f"{path}?{urlencode({param['name']: value})}", f"schema {schema_path}")
                    )
    return found


def schema_values(name: str, schema: dict, by_name: dict[str, Callable[[], list]], term: str):
    """Values to try for one query parameter: its enum, else by type, else by name."""
    if schema.get("type") == "array":
        schema = schema.get("items", {})
    if schema.get("enum"):
        return [value for value in schema["enum"] if value not in (None, "")]
    if name in by_name:
        return list(by_name[name]())
    kind, form = schema.get("type"), schema.get("format")
    if kind == "boolean":
        return ["true", "false"]
    if kind == "integer":
        return ["1"]
    if form == "date":
        return [timezone.localdate().isoformat()]
    if form == "date-time":
        return [(timezone.now() - timedelta(days=30)).isoformat()]
    return [term]


# --- requesting and checking --------------------------------------------------------------


@dataclass
class Seen:
    persona: str
    url: str
    status: int
    where: str  # body or a header
    context: str


@dataclass
class ServerError:
    persona: str
    url: str
    status: int
    summary: str


def reflections(url: str, marker: str) -> list[str]:
    """The forms in which a page may legitimately echo the marker it was asked for
    (a filter value carrying it): its query values, raw, escaped and URL-encoded."""
    values = [v for _, v in parse_qsl(urlsplit(url).query, keep_blank_values=True) if marker in v]
    forms = set()
    for value in values:
        encoded = (quote(value), quote_plus(value), quote(value, safe=""))
        # ...and inside another query value (?_changelist_filters=team%3D…).
        twice = tuple(quote(form, safe="") for form in encoded)
        for form in (value, *encoded, *twice):
            forms |= {form, html.escape(form), html.escape(form, quote=False)}
    return sorted(forms, key=len, reverse=True)


def contexts(text: str, marker: str, echoed: list[str], width: int = 40) -> list[str]:
    for form in echoed:
        text = text.replace(form, "")
    return [
        text[max(0, m.start() - width) : m.end() + width].replace("\n", " ")
        for m in re.finditer(re.escape(marker), text)
    ]


def body_of(response) -> str:
    content = (
        b"".join(response.streaming_content)
        if getattr(response, "streaming", False)
        else response.content
    )
    return content.decode(response.charset or "utf-8", errors="replace")


def error_summary(response) -> str:
    info = getattr(response, "exc_info", None)
    if info and info[1] is not None:
        frames = traceback.extract_tb(info[2])[-3:]
        where = " <- ".join(
            f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} {f.name}" for f in frames[::-1]
        )
        return f"{type(info[1]).__name__}: {info[1]} at {where}"
    return body_of(response)[:300]


def fetch(client, url: str):
    # Each request in a savepoint, rolled back: a database error in one view (PostgreSQL
    # aborts the transaction) must not break the requests after it, and whatever a
    # request writes (a session, a counter) is undone, so every persona walks one state.
    with transaction.atomic():
        response = client.get(url)
        transaction.set_rollback(True)
    return response


def check(
    client, persona: str, url: str, marker: str
) -> tuple[list[Seen], ServerError | None, object]:
    response = fetch(client, url)
    echoed = reflections(url, marker)
    seen = [
        Seen(persona, url, response.status_code, "body", text)
        for text in contexts(body_of(response), marker, echoed)
    ]
    for header, value in response.headers.items():
        for text in contexts(unquote_plus(unquote_plus(value)), marker, echoed):
            seen.append(Seen(persona, url, response.status_code, f"header {header}", text))
    error = None
    if response.status_code >= 500:
        error = ServerError(persona, url, response.status_code, error_summary(response))
    return seen, error, response
