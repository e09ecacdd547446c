"""API keys: created here (the plaintext shown once), revoked, never edited."""

from django import forms
from django.contrib import admin, messages

from .. import services
from ..errors import DomainError
from ..models import (
    APIKey,
)
from ..queries import (
    active_users,
)
from .base import (
    ServiceBackedAdmin,
    badge,
)


class APIKeyCreateForm(forms.ModelForm):
    expires_in_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=services.API_KEY_MAX_DAYS,
        help_text="Leave empty for a key that does not expire.",
    )

    class Meta:
        model = APIKey
        fields = ("name", "user")

    def clean_name(self):
        # The service's own check, here so a refused name re-shows the form as typed.
        try:
            return services.check_key_name(self.cleaned_data["name"])
        except DomainError as error:
            raise forms.ValidationError(error.message) from error


@admin.register(APIKey)
class APIKeyAdmin(ServiceBackedAdmin):
    list_display = ("name", "prefix", "user", "created_at", "expires_at", "state", "last_used_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    list_select_related = ("user",)
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = (
        "name",
        "user",
        "prefix",
        "created_at",
        "created_by",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    actions = ("revoke",)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        # People manage their own keys; superusers manage everyone's.
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = APIKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else ()

    def get_fields(self, request, obj=None):
        return self.readonly_fields if obj else ("name", "user", "expires_in_days")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            users = active_users()
            kwargs["queryset"] = (
                users if request.user.is_superuser else users.filter(pk=request.user.pk)
            )
            kwargs.setdefault("initial", request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        key, plaintext = services.api_key_create(
            user=data["user"],
            name=data["name"],
            expires_in_days=data.get("expires_in_days"),
            actor=request.user,
        )
        obj.pk = key.pk
        self.message_user(
            request,
            f"Copy the key now; it is not stored and will not be shown again: {plaintext}",
            messages.WARNING,
        )

    def has_change_permission(self, request, obj=None):
        return False  # keys are created and revoked, never edited

    @admin.display(description="state")
    def state(self, obj):
        if obj.revoked_at:
            return badge("revoked", "#6b7280")
        if not obj.is_usable():
            return badge("expired", "#b45309")
        return badge("active", "#16a34a")

    @admin.action(description="Revoke", permissions=["delete"])
    def revoke(self, request, queryset):
        revoked = 0
        for key in queryset:
            try:
                services.api_key_revoke(key=key, actor=request.user)
                revoked += 1
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
        if revoked:
            self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)
