"""Communications: the outbox and its attempts, channels, stakeholder groups, message
templates and the escalation levels that page people."""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.utils.functional import SimpleLazyObject
from django.utils.html import format_html_join

from .. import extensions, notifications, services
from ..errors import DomainError
from ..models import (
    ChannelTarget,
    DeliveryAttempt,
    EscalationLevel,
    MessageTemplate,
    Notification,
    Severity,
    StakeholderGroup,
)
from ..queries import (
    notification_list_visible_to,
)
from .base import (
    GuardedHistoryAdmin,
    ServiceBackedAdmin,
    badge,
)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "started_at", "finished_at", "succeeded", "status_code", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "event",
        "incident_reference",
        "channel",
        "address",
        "state_badge",
        "attempts",
        "next_attempt_at",
        "last_error_short",
    )
    list_filter = ("state", "channel", "event")
    list_select_related = ("incident",)
    search_fields = ("address", "subject", "incident__reference")
    readonly_fields = [field.name for field in Notification._meta.fields]
    # The incidents a message names decide who may read it: neither shown (they would
    # list every incident) nor editable.
    exclude = ("mentions",)
    inlines = (DeliveryAttemptInline,)
    actions = ("retry",)
    show_full_result_count = False

    STATE_COLORS = {
        Notification.State.PENDING: "#a16207",
        Notification.State.SENDING: "#2563eb",
        Notification.State.DELIVERED: "#16a34a",
        Notification.State.FAILED: "#b91c1c",
    }

    def get_queryset(self, request):
        return notification_list_visible_to(request.user, super().get_queryset(request))

    @admin.display(description="incident", ordering="incident__reference")
    def incident_reference(self, obj):
        return obj.incident.reference if obj.incident else "—"

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj):
        return badge(obj.get_state_display(), self.STATE_COLORS[obj.state])

    @admin.display(description="last error")
    def last_error_short(self, obj):
        return obj.last_error[:80]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry failed notifications", permissions=["change"])
    def retry(self, request, queryset):
        retried = 0
        for notification in queryset:
            try:
                notifications.retry(notification)
                retried += 1
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
        if retried:
            self.message_user(request, f"Queued {retried} notification(s) again.", messages.SUCCESS)


class ChannelTargetForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Webhook signing secret. Leave empty to keep the current one "
        "(a new webhook without one gets a generated secret, shown once).",
    )

    class Meta:
        model = ChannelTarget
        fields = ("name", "kind", "address", "secret", "enabled")

    def clean(self):
        cleaned = super().clean()
        # The service's check, run here too so a refusal keeps what was typed on the page.
        if not self.has_error("kind") and not self.has_error("address"):
            try:
                services.channel_target_check(kind=cleaned["kind"], address=cleaned["address"])
            except DomainError as error:
                self.add_error(error.field if error.field in self.fields else None, error.message)
        return cleaned


@admin.register(ChannelTarget)
class ChannelTargetAdmin(ServiceBackedAdmin):
    form = ChannelTargetForm
    list_display = ("name", "kind", "address", "enabled", "has_secret")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "address")

    @admin.display(description="signed", boolean=True)
    def has_secret(self, obj):
        return bool(obj.secret)

    def save_model(self, request, obj, form, change):
        # A blank secret means "unchanged": the stored one is never sent to the browser.
        fields = {name: form.cleaned_data[name] for name in services.CHANNEL_TARGET_FIELDS}
        if change:
            target, generated = services.channel_target_update(
                target=obj, actor=request.user, **fields
            )
        else:
            target, generated = services.channel_target_create(actor=request.user, **fields)
        obj.pk, obj.secret = target.pk, target.secret
        if generated:
            self.message_user(
                request,
                f"Signing secret for {target.name} (configure the receiver; shown once): "
                f"{generated}",
                messages.WARNING,
            )


@admin.register(StakeholderGroup)
class StakeholderGroupAdmin(GuardedHistoryAdmin):
    # The matrix column goes after the name, added per page by get_list_display.
    list_display = ("name", "via_status_page", "confidential_ok", "member_count")
    search_fields = ("name", "slug")
    filter_horizontal = ("severities", "members", "targets")
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related("severities")
            .annotate(members_total=Count("members", distinct=True))
        )

    def get_list_display(self, request):
        # Every row's matrix has a column per severity: they are read once per page, not
        # once per group, so the list costs the same few queries however many groups.
        keys = SimpleLazyObject(lambda: list(Severity.objects.values_list("key", flat=True)))

        @admin.display(description="told about (the communication matrix)")
        def matrix(obj):
            ticked = {severity.key for severity in obj.severities.all()}
            return format_html_join(
                " ",
                '<span title="{}" style="display:inline-block;width:3.2em">{} {}</span>',
                ((key, "✅" if key in ticked else "–", key) for key in keys),
            )

        name, *others = super().get_list_display(request)
        return (name, matrix, *others)

    @admin.display(description="members", ordering="members_total")
    def member_count(self, obj):
        return obj.members_total


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ("slug", "name", "audience", "subject", "body")

    def clean(self):
        cleaned = super().clean()
        # The service's check, run here too so a refusal keeps what was typed on the page.
        for name in ("subject", "body"):
            try:
                services.check_template(cleaned.get(name, ""), field=name)
            except DomainError as error:
                self.add_error(name, error.message)
        return cleaned


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ServiceBackedAdmin):
    form = MessageTemplateForm
    list_display = ("name", "slug", "audience")
    search_fields = ("name", "slug", "body")

    def save_model(self, request, obj, form, change):
        saved = services.message_template_save(
            template=obj if change else None,
            actor=request.user,
            **{name: form.cleaned_data[name] for name in MessageTemplateForm.Meta.fields},
        )
        obj.pk = saved.pk


@admin.register(EscalationLevel)
class EscalationLevelAdmin(GuardedHistoryAdmin):
    list_display = ("level", "name", "member_list")
    filter_horizontal = ("members", "targets")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("members")

    def get_model_perms(self, request):
        # An app that took paging over (oncall) moved the ladder into its own policies:
        # the rows are not paged any more, so they are not listed (the URL still shows them).
        if not extensions.paging.get().uses_ladder:
            return {}
        return super().get_model_perms(request)

    @admin.display(description="members")
    def member_list(self, obj):
        return ", ".join(user.get_username() for user in obj.members.all()) or "—"
