"""Reads of pages shared by the admin and the API: which pages a person may see, and
whether they may acknowledge one; and what would page nobody (activation gaps)."""

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from incidents.models import Role, RoleAssignment
from incidents.queries import incident_list_visible_to

from .models import Page


def page_list_visible_to(user, queryset: QuerySet | None = None) -> QuerySet:
    """Return the pages `user` may see: those of the incidents they may see (a page of
    a confidential incident names it; its acknowledge link still works without this)."""
    queryset = Page.objects.all() if queryset is None else queryset
    if not user.is_authenticated:
        return queryset.none()
    visible = incident_list_visible_to(user).values("pk")
    return queryset.filter(incident__in=visible)


def user_may_acknowledge_page(user, page: Page) -> bool:
    """Return True for the person paged, anyone with the change_page permission, and the
    incident's current commander (who answers for the page of someone who cannot)."""
    if not user.is_authenticated or not user.is_active:
        return False
    if page.user_id == user.pk or user.has_perm("oncall.change_page"):
        return True
    return RoleAssignment.objects.filter(
        incident_id=page.incident_id, user=user, role=Role.COMMANDER, relieved_at__isnull=True
    ).exists()


# --- activation gaps: what would page nobody (the system check and the admin banner) ---


@dataclass(frozen=True)
class Gap:
    """Something that would page nobody: `what` names the severity or policy level."""

    check_id: str
    what: str
    problem: str

    def __str__(self):
        return f"{self.what}: {self.problem}"


def activation_gaps(now=None) -> list[Gap]:
    """Return what would page nobody right now: each severity whose activation staffs
    nobody for a role (no team to activate; nobody on call in the default team for it;
    everyone on call for it unreachable), each policy level with nobody to page, and a
    missing default policy. A fixed number of queries, whatever the number of rows."""
    from django.utils import timezone

    from incidents.models import Severity

    from . import schedule
    from .models import ActivationRule, EscalationPolicy, PolicyLevel, Team
    from .services.paging import plans_for, urgency_of

    now = now or timezone.now()
    gaps = []
    rules = {}
    for rule in ActivationRule.objects.order_by("role"):
        rules.setdefault(rule.severity_id, set()).add(rule.role)
    severities = [severity for severity in Severity.objects.all() if severity.pk in rules]
    default = Team.objects.filter(is_default=True).first()
    owners = Team.objects.filter(services__isnull=False).exists()
    label = {value: str(name).lower() for value, name in Role.choices}
    if severities and default is None and not owners:
        for severity in severities:
            gaps.append(
                Gap(
                    "oncall.W001",
                    f"{severity.key} activation",
                    "no team owns a service and there is no default team: declaring it "
                    "pages nobody",
                )
            )
    elif severities and default is not None:
        on_call = {}
        for shift in schedule.on_call(teams=[default], at=now):
            if shift.user.is_active:
                on_call.setdefault(shift.role, {})[shift.user.pk] = shift.user
        people = {pk: user for by_role in on_call.values() for pk, user in by_role.items()}
        plans = {
            urgency: plans_for(people.values(), urgency)
            for urgency in {urgency_of(severity) for severity in severities}
        }
        for severity in severities:
            roles = sorted(rules[severity.pk], key=list(label).index)
            nobody = [role for role in roles if not on_call.get(role)]
            if nobody:
                gaps.append(
                    Gap(
                        "oncall.W001",
                        f"{severity.key} activation",
                        f"nobody is on call in {default} (the default team) for "
                        + ", ".join(label[role] for role in nobody),
                    )
                )
            reachable = plans[urgency_of(severity)]
            unreachable = [
                role
                for role in roles
                if on_call.get(role) and not any(reachable.get(pk) for pk in on_call[role])
            ]
            if unreachable:
                gaps.append(
                    Gap(
                        "oncall.W001",
                        f"{severity.key} activation",
                        f"whoever is on call in {default} for "
                        + ", ".join(label[role] for role in unreachable)
                        + " has no verified contact method and no email address",
                    )
                )
    levels = (
        PolicyLevel.objects.select_related("policy")
        .annotate(
            people=Count("users", distinct=True),
            rotation_count=Count("rotations", distinct=True),
            team_count=Count("teams", distinct=True),
            channels=Count("targets", filter=Q(targets__enabled=True), distinct=True),
        )
        .order_by("policy__name", "number")
    )
    for level in levels:
        if not (
            level.incident_team
            or level.people
            or level.rotation_count
            or level.team_count
            or level.channels
        ):
            gaps.append(
                Gap(
                    "oncall.W002",
                    f"{level.policy} {level}",
                    "the level has no people, rotations, teams or enabled channels: "
                    "reaching it pages nobody",
                )
            )
    if not EscalationPolicy.objects.filter(is_default=True).exists():
        gaps.append(
            Gap(
                "oncall.W003",
                "Escalation",
                "there is no default escalation policy: an unacknowledged incident of a "
                "team without a policy escalates to nobody",
            )
        )
    return gaps
