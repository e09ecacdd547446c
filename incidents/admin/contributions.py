"""How the apps built on the core add to its admins without subclassing them.

An app calls `contribute(Model, ...)` in its admin module (or `AppConfig.ready()`); every
`ContributableAdmin` of that model shows the parts after its own, in registration order
(INSTALLED_APPS order for admin modules). The core never imports those apps
(DESIGN.md: remediation -> postmortems -> incidents), and two apps adding to the same
page never need to know about each other.

A column that needs data from another app reads an annotation that the same app adds
with `querysets` (functions applied in the admin's `get_queryset`), so a list costs the
same few queries however many rows it shows.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import QuerySet

# save(request, form, formset, change): write the inline's new rows through services.
FormsetSaver = Callable[..., None]
# render(request, obj): the panel's HTML (built with format_html), or None to show nothing.
PanelRenderer = Callable[..., str | None]
# render(request): a banner's HTML (built with format_html), or None to show nothing.
BannerRenderer = Callable[..., str | None]
# extend(request, queryset): the queryset with what the contributed columns read
# (annotations, select/prefetch_related); it must keep the rows as they are.
QuerysetExtender = Callable[..., QuerySet]


@dataclass(frozen=True)
class Inline:
    """An inline for another app's admin, and how its rows are saved.

    Without `save` the admin's own saving applies (Django's `formset.save()`), which is
    right only for an inline that takes no input.
    """

    inline: type[admin.options.InlineModelAdmin]
    change_only: bool = True
    save: FormsetSaver | None = None


@dataclass(frozen=True)
class Panel:
    """A titled block on the change page, below the fields and above the inlines."""

    title: str
    render: PanelRenderer


@dataclass
class Contributions:
    """What the other apps added to one model's admin, in registration order."""

    inlines: list[Inline] = field(default_factory=list)
    # Admin action functions: action(modeladmin, request, queryset), with @admin.action.
    actions: list[Callable] = field(default_factory=list)
    # Changelist columns: display functions, column(obj), with @admin.display.
    columns: list[Callable] = field(default_factory=list)
    # Change-page fieldsets in Django's (name, {"fields": ...}) shape; all read-only.
    fieldsets: list[tuple] = field(default_factory=list)
    panels: list[Panel] = field(default_factory=list)
    # Queryset functions, extend(request, queryset), applied in order in get_queryset.
    querysets: list[QuerysetExtender] = field(default_factory=list)
    # Warnings above the changelist, render(request) -> HTML or None (a changelist
    # template shows them by including admin/includes/contributed_banners.html).
    banners: list[BannerRenderer] = field(default_factory=list)


_by_model: dict[type, Contributions] = {}


def contributions_for(model) -> Contributions:
    """Return what was contributed to the admin of `model` (empty if nothing)."""
    return _by_model.setdefault(model, Contributions())


def contribute(
    model,
    *,
    inlines=(),
    actions=(),
    columns=(),
    fieldsets=(),
    panels=(),
    querysets=(),
    banners=(),
) -> None:
    """Add parts to the admin of `model`, after its own and after earlier contributions.

    `inlines` take an inline class or an `Inline`; `querysets` take functions
    `extend(request, queryset) -> queryset` that add what contributed columns read;
    `banners` take functions `render(request) -> html or None`, shown above the list. A
    part already registered is not added again, so importing a module twice changes
    nothing.
    """
    parts = contributions_for(model)
    additions = [
        (parts.inlines, [item if isinstance(item, Inline) else Inline(item) for item in inlines]),
        (parts.actions, actions),
        (parts.columns, columns),
        (parts.fieldsets, fieldsets),
        (parts.panels, panels),
        (parts.querysets, querysets),
        (parts.banners, banners),
    ]
    for registered, items in additions:
        registered.extend(item for item in items if item not in registered)


class ContributableAdmin(admin.ModelAdmin):
    """A ModelAdmin that shows, after its own parts, what other apps contributed for its
    model. A subclass that narrows a `get_*` method (nothing on the add page) calls
    super() for the rest; its `save_formset` passes on the formsets that
    `is_contributed`, which their contributor saves."""

    @property
    def contributions(self) -> Contributions:
        return contributions_for(self.model)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        for extend in self.contributions.querysets:
            queryset = extend(request, queryset)
        return queryset

    def get_list_display(self, request):
        return (*super().get_list_display(request), *self.contributions.columns)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return (*fieldsets, *self.contributions.fieldsets)

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is None:
            return readonly
        return (*readonly, *flatten_fieldsets(self.contributions.fieldsets))

    def get_inlines(self, request, obj):
        return (*super().get_inlines(request, obj), *self._contributed_inlines(obj))

    def _contributed_inlines(self, obj) -> tuple:
        """The contributed inline classes for the change page of `obj`, or for the add
        page (obj None): there only those not marked `change_only`."""
        return tuple(
            part.inline
            for part in self.contributions.inlines
            if obj is not None or not part.change_only
        )

    def get_formsets_with_inlines(self, request, obj=None):
        # Mark each contributed inline's formset with its part, so save_formset knows whose
        # rows it holds (two inlines may show the same model).
        parts = {part.inline: part for part in self.contributions.inlines}
        for formset, inline in super().get_formsets_with_inlines(request, obj):
            formset.contribution = parts.get(type(inline))
            yield formset, inline

    def is_contributed(self, formset) -> bool:
        """Say whether the formset belongs to an inline another app contributed."""
        return getattr(formset, "contribution", None) is not None

    def save_formset(self, request, form, formset, change):
        part = getattr(formset, "contribution", None)
        if part is not None and part.save is not None:
            part.save(request, form, formset, change)
        else:
            super().save_formset(request, form, formset, change)

    def _get_base_actions(self):
        # Django gathers the site's and the admin's own actions here (get_actions then
        # filters them by permission); contributed ones follow.
        own = super()._get_base_actions()
        names = {name for _, name, _ in own}
        contributed = (self.get_action(action) for action in self.contributions.actions)
        return [*own, *(action for action in contributed if action[1] not in names)]

    def changelist_view(self, request, extra_context=None):
        rendered = (banner(request) for banner in self.contributions.banners)
        extra_context = {
            **(extra_context or {}),
            "contributed_banners": [html for html in rendered if html],
        }
        return super().changelist_view(request, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            rendered = (
                (panel.title, panel.render(request, obj)) for panel in self.contributions.panels
            )
            context["contributed_panels"] = [(title, html) for title, html in rendered if html]
        return super().render_change_form(request, context, add, change, form_url, obj)


# --- the commander's dashboard (admin index): panels other apps add ---------------------

# render(request): the panel's HTML (built with format_html or a template), or None to
# show nothing (nothing to say, or nothing this user may see).
DashboardRenderer = Callable[..., str | None]
# run(request, target): do the one-click action on `target` (an id from the POST) through
# a service; return the success message. A DomainError is shown as the refusal;
# PermissionDenied or Http404 when the user may not.
DashboardRunner = Callable[..., str]

# Where a panel sits: "attention" (needs attention now), "mine" (my work), "now".
DASHBOARD_SECTIONS = ("attention", "mine", "now")


@dataclass(frozen=True)
class DashboardAction:
    """A one-click button a panel shows (dashboard.action_button); `name` is unique
    across the dashboard, so prefix it with the app ("oncall.acknowledge_page")."""

    name: str
    run: DashboardRunner


@dataclass(frozen=True)
class DashboardPanel:
    """A titled block on the dashboard: in `section`, ordered by `order` then title. Its
    render runs a fixed number of queries, bounded (LIMIT), whatever the data."""

    title: str
    render: DashboardRenderer
    section: str = "attention"
    order: int = 100
    actions: tuple[DashboardAction, ...] = ()

    def __post_init__(self):
        if self.section not in DASHBOARD_SECTIONS:
            raise ValueError(f"Unknown dashboard section {self.section!r}: {DASHBOARD_SECTIONS}")


_dashboard: list[DashboardPanel] = []


def contribute_dashboard(*panels: DashboardPanel) -> None:
    """Add panels to the commander's dashboard; a panel already added is not added again."""
    _dashboard.extend(panel for panel in panels if panel not in _dashboard)


def dashboard_panels(section: str) -> list[DashboardPanel]:
    """Return the panels contributed to `section`, in their order."""
    chosen = (panel for panel in _dashboard if panel.section == section)
    return sorted(chosen, key=lambda panel: (panel.order, panel.title))


def dashboard_action(name: str) -> DashboardAction | None:
    """Return the contributed one-click action called `name`, or None."""
    for panel in _dashboard:
        for action in panel.actions:
            if action.name == name:
                return action
    return None
