from rest_framework import permissions


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

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        if not hasattr(view, request.method.lower()):
            return True  # let the view answer 405 rather than a misleading 403
        # An action on an existing record changes it, whatever its method (a DELETE of
        # roles/{id}/ stands someone down); removing a record would keep `delete`.
        acts_on_record = (
            getattr(view, "detail", False) and getattr(view, "action", None) != "destroy"
        )
        if request.method in ("POST", "DELETE") and acts_on_record:
            model = self._queryset(view).model
            return request.user.has_perm(f"{model._meta.app_label}.change_{model._meta.model_name}")
        return super().has_permission(request, view)
