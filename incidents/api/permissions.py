from django.contrib.auth import get_backends, get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from rest_framework import permissions


def load_model_permissions(user) -> None:
    """Read the permissions Django's ModelBackend would give `user` in one query (its
    own and its groups', as one UNION), and keep them where ModelBackend keeps them for
    the rest of the request (`_perm_cache`): two queries less than ModelBackend's own
    reads. Read for each request, as ModelBackend does: nothing outlives the request,
    so a permission taken away counts at once."""
    if (
        not user.is_active
        or user.is_anonymous
        or user.is_superuser  # User.has_perm answers True without asking the backends
        or hasattr(user, "_perm_cache")
        or not any(isinstance(backend, ModelBackend) for backend in get_backends())
    ):
        return
    # The lookups ModelBackend's _get_user_permissions and _get_group_permissions use.
    groups_query = get_user_model()._meta.get_field("groups").related_query_name()
    own = Permission.objects.filter(
        **{get_user_model()._meta.get_field("user_permissions").related_query_name(): user}
    )
    via_groups = Permission.objects.filter(**{f"group__{groups_query}": user})
    columns = ("content_type__app_label", "codename")
    # order_by(): Permission's default order is not allowed inside a UNION.
    rows = own.order_by().values_list(*columns).union(via_groups.order_by().values_list(*columns))
    user._perm_cache = {f"{app_label}.{codename}" for app_label, codename in rows}


class ModelPermissions(permissions.DjangoModelPermissions):
    """Django's model permissions, with reads needing `view` too.

    Actions that change an existing incident (acknowledge, transition, roles, timeline…,
    standing down from a role) need `change`; creating one needs `add`.
    """

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }

    def _queryset(self, view):
        # Only the model is wanted here: the view's `queryset` names it without calling
        # get_queryset(), whose visibility filter reads who the user is (a query) before
        # the request is even allowed.
        if getattr(view, "queryset", None) is not None:
            return view.queryset
        return super()._queryset(view)

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        if not hasattr(view, request.method.lower()):
            return True  # let the view answer 405 rather than a misleading 403
        load_model_permissions(request.user)
        # An action on an existing record changes it, whatever its method (a DELETE of
        # roles/{id}/ stands someone down); removing a record would keep `delete`.
        acts_on_record = (
            getattr(view, "detail", False) and getattr(view, "action", None) != "destroy"
        )
        if request.method in ("POST", "DELETE") and acts_on_record:
            model = self._queryset(view).model
            return request.user.has_perm(f"{model._meta.app_label}.change_{model._meta.model_name}")
        return super().has_permission(request, view)
