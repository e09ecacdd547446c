"""Paging in the admin: each person's contact methods and paging rules (their own, unless
they may manage everyone's), and the pages sent, read-only, with their outbox rows."""

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from incidents import notifications
from incidents.admin import GuardedHistoryAdmin, ServiceBackedAdmin, badge
from incidents.errors import DomainError
from incidents.models import Notification, Source

from ..models import ContactMethod, Page, PagingRule
from ..queries import page_list_visible_to, user_may_acknowledge_page
from ..services import contacts, paging

# --- whose records: one's own, or everyone's for those who manage them ---------------


def manages_everyone(request) -> bool:
    return request.user.has_perm("oncall.change_contactmethod")


class WhoseFilter(admin.SimpleListFilter):
    """Mine by default: the list a person opens is the one they came to change."""

    title = "whose"
    parameter_name = "whose"

    def lookups(self, request, model_admin):
        return [("mine", "Mine"), ("all", "Everyone's")]

    def choices(self, changelist):
        for value, label in self.lookup_choices:
            yield {
                "selected": (self.value() or "mine") == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        if self.value() == "all":
            return queryset
        return queryset.filter(user=request.user)


class OwnedAdmin(ServiceBackedAdmin):
    """Every staff member manages their own rows; those with the model's change
    permission manage everyone's (and pick whose a new row is)."""

    def _may(self, request, obj) -> bool:
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        return obj is None or obj.user_id == user.pk or manages_everyone(request)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self._may(request, obj)

    def has_add_permission(self, request):
        return self._may(request, None)

    def has_change_permission(self, request, obj=None):
        return self._may(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may(request, obj)

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("user")
        return queryset if manages_everyone(request) else queryset.filter(user=request.user)

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        return (WhoseFilter, *filters) if manages_everyone(request) else filters

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return fields if manages_everyone(request) else [f for f in fields if f != "user"]

    def get_readonly_fields(self, request, obj=None):
        # A row stays with its person: moving it would page someone with another's phone.
        readonly = super().get_readonly_fields(request, obj)
        return (*readonly, "user") if obj is not None and manages_everyone(request) else readonly

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.owner = obj.user if obj is not None else request.user
        return form


class OwnedForm(forms.ModelForm):
    owner = None  # set per request by OwnedAdmin.get_form

    def owner_of_row(self):
        if "user" in self.fields:
            return self.cleaned_data.get("user")
        return self.instance.user if self.instance.pk else self.owner

    def refuse(self, error: DomainError) -> None:
        self.add_error(error.field if error.field in self.fields else None, error.message)


# --- contact methods ------------------------------------------------------------------


class ContactMethodForm(OwnedForm):
    class Meta:
        model = ContactMethod
        fields = ("user", "kind", "address", "label")

    def clean(self):
        cleaned = super().clean()
        owner = self.owner_of_row()
        # The service's checks, run here too so a refusal keeps what was typed on the page.
        if owner is not None and not self.has_error("kind") and not self.has_error("address"):
            try:
                contacts.contact_method_check(
                    user=owner,
                    kind=cleaned["kind"],
                    address=cleaned["address"],
                    method=self.instance,
                )
            except DomainError as error:
                self.refuse(error)
        return cleaned

    def validate_unique(self):
        pass  # contact_method_check above says it in words, for the admin's own owner too


class RulesInline(admin.TabularInline):
    model = PagingRule
    fields = ("urgency", "delay", "repeat_every", "repeat_times")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "paging rules using it"

    # Shown to whoever may see the method (its admin checks that), changed in its own page.
    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ContactMethod)
class ContactMethodAdmin(OwnedAdmin):
    form = ContactMethodForm
    list_display = ("__str__", "label", "user", "verified", "verification_sent_at")
    list_filter = ("kind",)
    list_select_related = ("user",)
    search_fields = ("address", "label", "user__username")
    fields = ("user", "kind", "address", "label", "verified_at", "verification_sent_at")
    readonly_fields = ("verified_at", "verification_sent_at")
    inlines = (RulesInline,)
    actions = ("send_test",)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()  # a new method has no rules yet

    @admin.display(description="verified", boolean=True, ordering="verified_at")
    def verified(self, obj):
        return obj.verified_at is not None

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {"kind": data["kind"], "address": data["address"], "label": data["label"]}
        if change:
            method = contacts.contact_method_update(
                method=obj, actor=request.user, source=Source.ADMIN, **fields
            )
        else:
            method = contacts.contact_method_create(
                user=form.owner_of_row(), actor=request.user, source=Source.ADMIN, **fields
            )
        obj.pk, obj.verified_at = method.pk, method.verified_at
        obj.verification_sent_at = method.verification_sent_at
        if method.verified_at is None:
            self.message_user(
                request,
                f"{method} is not verified: send it a test message (the list's action) and "
                "follow the message's link. Until then no page uses it.",
                messages.WARNING,
            )

    def delete_model(self, request, obj):
        contacts.contact_method_delete(method=obj, actor=request.user, source=Source.ADMIN)

    def delete_queryset(self, request, queryset):
        for method in queryset:
            contacts.contact_method_delete(method=method, actor=request.user, source=Source.ADMIN)

    @admin.action(description="Send a test message (with its verification link)")
    def send_test(self, request, queryset):
        self.run_service(
            request,
            queryset,
            "Sent a test message to",
            lambda method: contacts.contact_method_send_test(method=method, actor=request.user),
        )


# --- paging rules ---------------------------------------------------------------------


class MethodChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        unverified = "" if obj.verified_at else " — not verified"
        return f"{obj.user.get_username()}: {obj}{unverified}"


class PagingRuleForm(OwnedForm):
    contact_method = MethodChoice(queryset=ContactMethod.objects.none())

    class Meta:
        model = PagingRule
        fields = ("user", "urgency", "contact_method", "delay", "repeat_every", "repeat_times")
        help_texts = {"delay": "hh:mm:ss after the page starts, e.g. 00:05:00."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        methods = ContactMethod.objects.select_related("user").order_by("user__username", "kind")
        if "user" not in self.fields:
            owner = self.instance.user if self.instance.pk else self.owner
            methods = methods.filter(user=owner)
        self.fields["contact_method"].queryset = methods

    def clean(self):
        cleaned = super().clean()
        owner = self.owner_of_row()
        if owner is None or self.errors:
            return cleaned
        try:
            contacts.paging_rule_check(
                user=owner,
                urgency=cleaned["urgency"],
                contact_method=cleaned["contact_method"],
                delay=cleaned["delay"],
                repeat_every=cleaned.get("repeat_every"),
                repeat_times=cleaned["repeat_times"],
            )
        except DomainError as error:
            self.refuse(error)
        return cleaned


@admin.register(PagingRule)
class PagingRuleAdmin(OwnedAdmin):
    form = PagingRuleForm
    list_display = (
        "user",
        "urgency",
        "contact_method",
        "method_verified",
        "delay",
        "repeat_every",
        "repeat_times",
    )
    list_filter = ("urgency",)
    list_select_related = ("user", "contact_method")
    search_fields = ("user__username", "contact_method__address")

    @admin.display(description="method verified", boolean=True)
    def method_verified(self, obj):
        return obj.contact_method.verified_at is not None

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("contact_method")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        rule = contacts.paging_rule_save(
            rule=obj if change else None,
            user=obj.user if change else form.owner_of_row(),
            urgency=data["urgency"],
            contact_method=data["contact_method"],
            delay=data["delay"],
            repeat_every=data.get("repeat_every"),
            repeat_times=data["repeat_times"],
            actor=request.user,
            source=Source.ADMIN,
        )
        obj.pk = rule.pk
        if rule.contact_method.verified_at is None:
            self.message_user(
                request,
                f"{rule.contact_method} is not verified yet: this rule pages nobody until "
                "its owner follows the link of its test message.",
                messages.WARNING,
            )

    def delete_model(self, request, obj):
        contacts.paging_rule_delete(rule=obj, actor=request.user, source=Source.ADMIN)

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            contacts.paging_rule_delete(rule=rule, actor=request.user, source=Source.ADMIN)


# --- pages ----------------------------------------------------------------------------


class PageStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("open", "Open (still paging)"),
            ("acknowledged", "Acknowledged"),
            ("stopped", "Stopped"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(acknowledged_at__isnull=True, stopped_at__isnull=True)
        if self.value() == "acknowledged":
            return queryset.filter(acknowledged_at__isnull=False)
        if self.value() == "stopped":
            return queryset.filter(acknowledged_at__isnull=True, stopped_at__isnull=False)
        return queryset


STATE_COLORS = {"open": "#dc2626", "acknowledged": "#16a34a", "stopped": "#6b7280"}
DELIVERY_COLORS = {
    Notification.State.PENDING: "#a16207",
    Notification.State.SENDING: "#2563eb",
    Notification.State.DELIVERED: "#16a34a",
    Notification.State.FAILED: "#b91c1c",
}


def step_keys(page: Page) -> list[str]:
    """The dedup keys of the outbox rows of the steps sent (paging._step_message's)."""
    return [
        notifications.make_dedup_key(
            paging.step_prefix(page, number), step["channel"], step["address"]
        )
        for number, step in enumerate(page.plan[: page.steps_sent], start=1)
    ]


@admin.register(Page)
class PageAdmin(GuardedHistoryAdmin):
    list_display = (
        "created_at",
        "incident_reference",
        "user",
        "reason",
        "urgency",
        "steps",
        "next_step_at",
        "state",
    )
    list_filter = (PageStateFilter, "reason", "urgency")
    list_select_related = ("incident", "user")
    search_fields = ("incident__reference", "user__username")
    show_full_result_count = False
    actions = ("acknowledge",)
    fieldsets = (
        (None, {"fields": ("incident", "user", "reason", "urgency", "role", "level", "message")}),
        ("Steps", {"fields": ("plan_steps", "next_step_at", "created_at", "created_by")}),
        (
            "Answer",
            {"fields": ("acknowledged_at", "acknowledged_via", "stopped_at", "stopped_because")},
        ),
        ("Messages sent", {"fields": ("outbox",)}),
    )
    readonly_fields = (
        "incident",
        "user",
        "reason",
        "urgency",
        "role",
        "level",
        "message",
        "plan_steps",
        "next_step_at",
        "created_at",
        "created_by",
        "acknowledged_at",
        "acknowledged_via",
        "stopped_at",
        "stopped_because",
        "outbox",
    )

    def get_queryset(self, request):
        return page_list_visible_to(request.user, super().get_queryset(request))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # pages change through acknowledging and stopping, never a form

    def has_delete_permission(self, request, obj=None):
        return False

    def has_acknowledge_permission(self, request):
        # Each page is checked in the action: its own person, or a commander.
        return self.has_view_permission(request)

    @admin.display(description="incident", ordering="incident__reference")
    def incident_reference(self, obj):
        return obj.incident.reference

    @admin.display(description="steps sent")
    def steps(self, obj):
        return f"{obj.steps_sent} of {len(obj.plan)}"

    @admin.display(description="state")
    def state(self, obj):
        state = obj.state
        return badge(state, STATE_COLORS[state])

    @admin.display(description="plan")
    def plan_steps(self, obj):
        return format_html(
            "<table><tr><th>#</th><th>after</th><th>channel</th><th>address</th>"
            "<th>sent</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{} min</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        number,
                        step["after"] // 60,
                        step["channel"],
                        step["address"],
                        "yes" if number <= obj.steps_sent else "—",
                    )
                    for number, step in enumerate(obj.plan, start=1)
                ),
            ),
        )

    @admin.display(description="outbox rows")
    def outbox(self, obj):
        # Exact keys, not a prefix: the unique index on dedup_key finds them.
        rows = Notification.objects.filter(dedup_key__in=step_keys(obj)).order_by("created_at")
        if not rows:
            return "None yet."
        return format_html(
            "<table><tr><th>row</th><th>channel</th><th>address</th><th>state</th>"
            "<th>attempts</th><th>delivered</th><th>last error</th></tr>{}</table>",
            format_html_join(
                "",
                '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td>'
                "<td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        reverse("admin:incidents_notification_change", args=[row.pk]),
                        row.pk,
                        row.channel,
                        row.address,
                        badge(row.get_state_display(), DELIVERY_COLORS[row.state]),
                        row.attempts,
                        row.delivered_at or "—",
                        row.last_error[:120] or "—",
                    )
                    for row in rows
                ),
            ),
        )

    @admin.action(description="Acknowledge the selected pages", permissions=["acknowledge"])
    def acknowledge(self, request, queryset):
        done, refused = 0, []
        for page in queryset.select_related("incident", "user"):
            if not user_may_acknowledge_page(request.user, page):
                refused.append(
                    f"Page {page.pk} is {page.user.get_username()}'s: only they, or the "
                    f"commander of {page.incident.reference}, may acknowledge it."
                )
                continue
            try:
                paging.page_acknowledge(
                    page=page, actor=request.user, via="admin", source=Source.ADMIN
                )
                done += 1
            except DomainError as error:
                refused.append(f"Page {page.pk}: {error.message}")
        if done:
            self.message_user(request, f"Acknowledged {done} page(s).", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.ERROR)
