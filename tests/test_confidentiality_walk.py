"""Walk every URL as people who may not see a confidential incident, and prove that
nothing of it reaches them — while a member of the Security group, walking the same
URLs, does see it (so the walk can tell a leak when there is one).

One unique marker is written, through the services, into every text of a confidential
incident and of everything hanging off it: timeline, status updates (one posted in
public before the incident was reclassified), roles, the post-mortem and its factors
and timeline commentary, action items and their progress, and the notifications those
wrote — the weekly digest among them. Public reviews of other incidents list it as a
related incident. The URLs come from tests/walk.py: the resolver, the admin registry and
the API schema, so a new app's pages are walked without editing this file. A pattern
it cannot fill fails the test: add a filler in fillers() below, or, for a page that
cannot carry data, a line in SKIPPED saying why.
"""

import json
import logging
import secrets
import time
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from alerts import services as alert_services
from alerts.models import AlertGroup
from forensics import deadlines as breach_deadlines
from forensics import services as forensics
from forensics.models import EvidenceItem
from incidents import extensions, watchdogs
from incidents import services as incidents
from incidents.defaults import load_communication_defaults
from incidents.models import (
    Audience,
    EscalationLevel,
    Incident,
    IncidentType,
    Notification,
    Role,
    RoleAssignment,
    Service,
    Severity,
    Source,
    StakeholderGroup,
    Status,
    TimelineEvent,
)
from oncall import feeds as oncall_feeds
from oncall.defaults import load_defaults as load_oncall_defaults
from oncall.models import ContactMethod, EscalationPolicy, Rotation, RotationMember, Team
from oncall.services import contacts as oncall_contacts
from oncall.services import escalation as oncall_escalation
from oncall.services import paging as oncall_paging
from playbooks import services as playbooks
from playbooks.models import ChecklistStep
from postmortems import services as reviews
from postmortems.models import SECTIONS, PostMortem
from remediation import reminders
from remediation import services as remediation
from remediation.models import ActionItem
from tests import walk
from tests.conftest import make_user

# The search term is the marker's random tail: a search box echoing it back does not
# show the marker, a row found by it does.
TERM = secrets.token_hex(5)
MARK = f"ZQXMARK{TERM}"


def marked(label: str) -> str:
    """A text carrying the marker, named for its field (the leak report says which)."""
    return f"{label} {MARK}-{label.replace(' ', '-')}"


# Patterns that cannot carry data, by name. Keep this short: everything else is walked.
SKIPPED = {
    # The OpenAPI schema describes endpoints, never rows, and takes a second or two to
    # build; the walk reads it once itself, to find every API query parameter.
    "schema": "describes the API, holds no data",
}


# --- the data: a confidential incident with the marker everywhere ----------------------


class World:
    """The people and rows the walk is about."""


def build_world(django_user_model) -> World:
    w = World()
    U = django_user_model
    w.alice = make_user(U, "alice", "Incident commanders", is_staff=True)
    w.rita = make_user(U, "rita", "Incident commanders", is_staff=True)
    w.trent = make_user(U, "trent", "Responders", is_staff=True)
    w.cso = make_user(U, "cso", "Responders", is_staff=True)
    # The personas.
    w.outsider = make_user(U, "mallory", "Responders", is_staff=True)
    # A commander outside the incident: may change what Responders only view, so the
    # editable forms (and their pickers) are walked too.
    w.outside_commander = make_user(U, "oscar", "Incident commanders", is_staff=True)
    w.stakeholder = make_user(U, "sam", "Stakeholders")
    w.control = make_user(U, "carol", "Security", is_staff=True)

    sev1, sev2 = Severity.objects.get(key="SEV1"), Severity.objects.get(key="SEV2")
    outage = IncidentType.objects.get(slug="outage")
    security = IncidentType.objects.get(slug="security")
    api = Service.objects.create(name="Public API", slug="api", owning_team="Platform", tier=1)
    # A test that flushed the database took the migrations' rows with it.
    load_communication_defaults(apps)
    load_oncall_defaults(apps)
    EscalationLevel.objects.get_or_create(level=1, defaults={"name": "On-call engineers"})
    # The team that owns the API, and its rota: trent is its on-call technical lead, so
    # declaring the incident staffs that role and pages him.
    w.team = Team.objects.create(name="Platform", slug="platform")
    w.team.services.add(api)
    w.rotation = Rotation.objects.create(
        team=w.team,
        role="technical_lead",
        name="Platform tech leads",
        starts_on=timezone.localdate() - timedelta(days=7),
        handoff_time="09:00",
    )
    RotationMember.objects.create(rotation=w.rotation, user=w.trent, position=0)
    w.method = ContactMethod.objects.create(
        user=w.cso, kind="webhook", address="https://hooks.example.com/cso"
    )
    # The matrix: who hears of what (the security team may hear of confidential ones).
    StakeholderGroup.objects.get(slug="security-team").members.add(w.cso)
    StakeholderGroup.objects.get(slug="executive-team").members.add(w.stakeholder)
    today = timezone.localdate()

    # Declared as an outage and updated in public, then reclassified as a security
    # incident: the public update and the old versions stay in the record.
    conf = incidents.incident_declare(
        title=marked("title"),
        severity=sev2,
        incident_type=outage,
        summary=marked("summary"),
        services=[api],
        customer_impact=marked("customer impact"),
        estimated_users_affected=1200,
        detection_source="customer_report",
        commander=w.alice,
        actor=w.alice,
        source=Source.ADMIN,
    )
    incidents.status_update_post(
        incident=conf,
        audience=Audience.PUBLIC,
        summary=marked("public update"),
        actor=w.alice,
        source=Source.ADMIN,
    )
    incidents.incident_update_details(
        incident=conf,
        confidential=True,
        public_title=marked("public title"),
        incident_type=security,
        actor=w.alice,
        source=Source.ADMIN,
    )
    # Nobody acknowledged it in time: the watchdogs escalate and remind (as if a week on).
    EscalationLevel.objects.get(level=1).members.add(w.cso)
    EscalationPolicy.objects.get(is_default=True).levels.get(number=2).users.add(w.cso)
    later = timezone.now() + timedelta(days=7)
    watchdogs.escalate_unacknowledged(now=later)  # the core's ladder, without on-call
    extensions.paging.get().escalate(now=later)  # the on-call app's policy
    watchdogs.remind_overdue_updates(now=timezone.now() + timedelta(days=7))
    # trent took the technical lead role from the rota when it was declared.
    assert conf.roles.filter(role=Role.TECHNICAL_LEAD, user=w.trent).exists()
    incidents.role_assign(
        incident=conf, role=Role.SME, user=w.rita, actor=w.alice, source=Source.ADMIN
    )
    incidents.role_assign(
        incident=conf, role=Role.SECURITY_LEAD, user=w.cso, actor=w.alice, source=Source.ADMIN
    )
    for kind in TimelineEvent.MANUAL_KINDS:
        incidents.timeline_add_entry(
            incident=conf,
            kind=kind,
            summary=marked(f"timeline {kind}"),
            details={"link": marked(f"details {kind}")},
            actor=w.alice,
            source=Source.ADMIN,
        )
    incidents.status_update_post(
        incident=conf,
        audience=Audience.INTERNAL,
        summary=marked("internal update"),
        actor=w.alice,
        source=Source.ADMIN,
    )
    # Its checklist (the outage playbook started on declaring): a step of its own, ticked
    # with a note, and every other required step skipped with a reason (SEV1 and SEV2
    # close only then); one left pending and time-boxed, so it is overdue a week on.
    step = playbooks.checklist_step_add(
        incident=conf,
        title=marked("checklist step"),
        phase="investigation",
        guidance=marked("step guidance"),
        required=True,
        actor=w.alice,
        source=Source.ADMIN,
    )
    playbooks.checklist_step_complete(
        step=step, note=marked("step note"), actor=w.alice, source=Source.ADMIN
    )
    playbooks.checklist_step_add(
        incident=conf,
        title=marked("overdue step"),
        phase="containment",
        due_within=5,
        actor=w.alice,
        source=Source.ADMIN,
    )
    for pending in ChecklistStep.objects.filter(incident=conf, required=True, status="pending"):
        playbooks.checklist_step_skip(
            step=pending, reason=marked("skip reason"), actor=w.alice, source=Source.ADMIN
        )
    incidents.incident_change_severity(
        incident=conf,
        severity=sev1,
        reason=marked("severity reason"),
        actor=w.alice,
        source=Source.ADMIN,
    )
    # Paged by hand, with a message about the incident.
    oncall_escalation.page_manually(
        incident=conf,
        user=w.cso,
        message=marked("page message"),
        actor=w.alice,
        source=Source.ADMIN,
    )
    incidents.incident_acknowledge(incident=conf, actor=w.alice, source=Source.ADMIN)
    incidents.incident_update_details(
        incident=conf,
        title=marked("title v2"),
        summary=marked("summary v2"),
        customer_impact=marked("customer impact v2"),
        actor=w.alice,
        source=Source.ADMIN,
    )
    # Monitoring's alerts joined it: a group holds the incident for a rule's key, and an
    # alert of that key arrives through the intake. Its title, labels, annotations and
    # raw payload carry the marker.
    alert_source, _ = alert_services.source_create(name="prometheus", kind="generic")
    rule = alert_services.rule_save(
        name="Security team alerts",
        incident_type=security,
        severity=sev2,
        group_by="{team}",
        conditions=[{"subject": "label", "key": "team", "operator": "equals", "value": "sec"}],
    )
    AlertGroup.objects.create(key=f"rule-{rule.pk}:sec", rule=rule, incident=conf)
    alert_body = {
        "title": marked("alert title"),
        "labels": {"team": "sec", "host": marked("alert label")},
        "annotations": {"description": marked("alert annotation")},
    }
    alert_services.payload_receive(
        source=alert_source, body=json.dumps(alert_body).encode(), content_type="application/json"
    )
    # Evidence: a file in the locker whose content carries the marker, an item held
    # elsewhere, their custody (a view, an export); the breach clock the reclassification
    # started, its deadline warnings (as if four days on), assessment and notifications.
    w.evidence = forensics.evidence_upload(
        incident=conf,
        kind="system_logs",
        file=SimpleUploadedFile(f"{MARK}-auth.log", marked("evidence content").encode()),
        description=marked("evidence description"),
        actor=w.alice,
        source=Source.ADMIN,
        address="203.0.113.7",
    )
    held = forensics.evidence_register(
        incident=conf,
        kind="memory_dump",
        external_location=marked("evidence location"),
        description=marked("held evidence description"),
        actor=w.alice,
        source=Source.API,
    )
    forensics.evidence_record_view(
        item=w.evidence, actor=w.alice, source=Source.ADMIN, address=None, detail=marked("view")
    )
    forensics.evidence_export(
        items=[w.evidence, held],
        actor=w.alice,
        source=Source.API,
        address=None,
        what=marked("export"),
    )
    breach_deadlines.warn_breach_deadlines(now=timezone.now() + timedelta(days=4))
    forensics.breach_assess(
        incident=conf,
        personal_data_affected=True,
        regulator_notification_required=True,
        assessment_notes=marked("assessment notes"),
        actor=w.alice,
        source=Source.ADMIN,
    )
    forensics.breach_record_regulator_notified(
        incident=conf,
        reference=marked("regulator reference"),
        notes=marked("regulator notes"),
        actor=w.alice,
        source=Source.ADMIN,
    )
    forensics.breach_record_subjects_notified(
        incident=conf,
        reference=marked("subjects reference"),
        notes=marked("subjects notes"),
        actor=w.alice,
        source=Source.ADMIN,
    )
    incidents.incident_transition(
        incident=conf,
        to_status=Status.IDENTIFIED,
        note=marked("identified"),
        actor=w.alice,
        source=Source.ADMIN,
    )
    incidents.status_update_post(
        incident=conf,
        audience=Audience.INTERNAL,
        summary=marked("internal update 2"),
        actor=w.trent,
        source=Source.ADMIN,
    )
    incidents.incident_transition(
        incident=conf,
        to_status=Status.RESOLVED,
        note=marked("resolved"),
        actor=w.alice,
        source=Source.ADMIN,
    )

    # Resolving the SEV1 started its review, owned by the commander (alice).
    pm = PostMortem.objects.get(incident=conf)
    entry = pm.timeline.order_by("id").first()
    reviews.postmortem_update(
        postmortem=pm,
        actor=w.alice,
        reviewers=[w.rita],
        contributing_factors=[
            ("technical", marked("factor technical")),
            ("process", marked("factor process")),
        ],
        timeline_marks={entry.pk: (True, marked("commentary"))},
        review_meeting_at=timezone.now() + timedelta(days=1),
        source=Source.ADMIN,
        **{name: marked(name) for name in SECTIONS},
    )
    reviews.postmortem_update(
        postmortem=pm, actor=w.alice, root_cause=marked("root cause v2"), source=Source.ADMIN
    )

    # Follow-up work: one due this week (the digest), one overdue, one blocked.
    item = remediation.action_item_create(
        postmortem=pm,
        title=marked("item"),
        description=marked("item description"),
        category="technical",
        priority="P1",
        owner=w.trent,
        team=marked("team"),
        tracker_key=f"{MARK}-key",
        tracker_url=f"https://tracker.example.com/browse/{MARK}-url",
        due_on=today + timedelta(days=2),
        verification_note=marked("verification"),
        actor=w.alice,
        source=Source.ADMIN,
    )
    remediation.action_item_note(
        item=item, note=marked("progress note"), actor=w.trent, source=Source.ADMIN
    )
    remediation.action_item_update(
        item=item,
        description=marked("item description v2"),
        note=marked("change"),
        actor=w.alice,
        source=Source.ADMIN,
    )
    late = remediation.action_item_create(
        incident=conf,
        title=marked("overdue item"),
        description=marked("overdue description"),
        category="process",
        priority="P2",
        owner=w.trent,
        team=marked("team"),
        due_on=today - timedelta(days=5),
        actor=w.alice,
        source=Source.ADMIN,
    )
    blocked = remediation.action_item_create(
        incident=conf,
        title=marked("blocked item"),
        category="training",
        owner=w.rita,
        team=marked("team other"),
        actor=w.alice,
        source=Source.ADMIN,
    )
    remediation.action_item_transition(
        item=blocked,
        to_status="blocked",
        note=marked("blocked reason"),
        actor=w.rita,
        source=Source.ADMIN,
    )
    reviews.postmortem_submit(postmortem=pm, actor=w.alice, source=Source.ADMIN)
    reviews.postmortem_approve(
        postmortem=pm, actor=w.rita, comment=marked("approval"), source=Source.ADMIN
    )
    reviews.postmortem_publish(postmortem=pm, actor=w.alice, source=Source.ADMIN)
    incidents.incident_transition(
        incident=conf,
        to_status=Status.CLOSED,
        note=marked("closed"),
        actor=w.alice,
        source=Source.ADMIN,
    )

    # Public incidents whose reviews name the confidential one as related: one
    # published (read-only pages), one still a draft (editable forms).
    def declare_public(title: str, update: str) -> Incident:
        incident = incidents.incident_declare(
            title=title,
            severity=sev2,
            incident_type=outage,
            services=[api],
            commander=w.alice,
            actor=w.alice,
            source=Source.ADMIN,
        )
        incidents.status_update_post(
            incident=incident,
            audience=Audience.PUBLIC,
            summary=update,
            actor=w.alice,
            source=Source.ADMIN,
        )
        return incident

    public = declare_public("Checkout returns 502", "We are looking into failed payments.")
    incidents.incident_acknowledge(incident=public, actor=w.alice, source=Source.ADMIN)
    incidents.incident_transition(
        incident=public, to_status=Status.RESOLVED, actor=w.alice, source=Source.ADMIN
    )
    public_pm = PostMortem.objects.get(incident=public)
    reviews.postmortem_update(
        postmortem=public_pm,
        actor=w.alice,
        reviewers=[w.rita],
        related_incidents=[conf],
        executive_summary="Checkout failed for 40 minutes after a bad deploy.",
        impact="Card payments failed.",
        root_cause="A configuration change shrank the connection pool.",
        no_action_needed=True,
        no_action_reason="The fix shipped during the response.",
        source=Source.ADMIN,
    )
    reviews.postmortem_update(
        postmortem=public_pm,
        actor=w.alice,
        lessons_learned="Watch the pool size.",
        source=Source.ADMIN,
    )
    reviews.postmortem_submit(postmortem=public_pm, actor=w.alice, source=Source.ADMIN)
    reviews.postmortem_approve(postmortem=public_pm, actor=w.rita, source=Source.ADMIN)
    reviews.postmortem_publish(postmortem=public_pm, actor=w.alice, source=Source.ADMIN)

    open_public = declare_public("Search is slow", "Searches take up to 10 seconds.")
    draft_pm = reviews.postmortem_create(incident=open_public, actor=w.alice, source=Source.ADMIN)
    reviews.postmortem_update(
        postmortem=draft_pm,
        actor=w.alice,
        related_incidents=[conf],
        executive_summary="Search slowed down.",
        source=Source.ADMIN,
    )
    remediation.action_item_create(
        incident=open_public,
        title="Alert on search latency",
        category="technical",
        priority="P1",
        owner=w.trent,
        team="Search",
        due_on=today + timedelta(days=3),
        actor=w.alice,
        source=Source.ADMIN,
    )

    # The weekly digest (no incident of its own: it lists trent's items of both
    # incidents) and the overdue reminders.
    reminders.send_due_this_week_digest()
    reminders.remind_overdue()

    w.conf, w.public, w.open_public = conf, public, open_public
    w.pm, w.public_pm, w.draft_pm = pm, public_pm, draft_pm
    w.items = [item, late, blocked]
    w.digest = Notification.objects.get(dedup_key__startswith=f"action-digest:{w.trent.pk}:")
    w.conf_notification = Notification.objects.filter(incident=conf).order_by("pk").first()
    w.pages = list(conf.pages.all())
    return w


def check_world(w: World) -> None:
    """The data is what the walk needs: the marker in every text of the incident and
    its review, and a row for the incident in every model that points at incidents."""
    conf = Incident.objects.get(pk=w.conf.pk)
    for f in conf._meta.concrete_fields:
        if isinstance(f, models.CharField | models.TextField) and not f.choices:
            if f.name != "reference":
                assert MARK in getattr(conf, f.name), f"Incident.{f.name} lacks the marker"
    pm = PostMortem.objects.get(pk=w.pm.pk)
    for name in SECTIONS:
        assert MARK in getattr(pm, name), f"PostMortem.{name} lacks the marker"
    assert MARK in w.digest.body
    missing = []
    for model in apps.get_models():
        if walk.is_history_model(model):
            continue
        links = [
            f
            for f in model._meta.get_fields()
            if f.is_relation and f.concrete and f.related_model is Incident
        ]
        if links and not any(model.objects.filter(**{f.name: conf}).exists() for f in links):
            missing.append(model._meta.label)
    assert not missing, (
        f"{missing} point at incidents but the walk builds none for the confidential "
        "incident: add them to build_world (through their services), with the marker."
    )


# --- filling URL patterns --------------------------------------------------------------


def fillers(w: World, rows: walk.Rows) -> walk.Filler:
    references = [w.conf.reference, w.public.reference, w.open_public.reference]
    admin_objects = []
    for model, pks in ((Incident, [w.conf.pk]), (PostMortem, [w.pm.pk, w.public_pm.pk])):
        content_type = ContentType.objects.get_for_model(model)
        admin_objects += [{"content_type_id": content_type.pk, "object_id": pk} for pk in pks]
    # The roles held on the walked incidents, for the stand-down pages (admin and API).
    roles = RoleAssignment.objects.filter(
        incident__in=[w.conf, w.public, w.open_public]
    ).values_list("incident_id", "pk")
    return walk.Filler(
        rows=rows,
        # Route kwargs by name, for views that are not an admin's or an API viewset's
        # (those are filled from their own model's rows).
        by_kwarg={
            "reference": lambda: references,
            "format": lambda: ["json"],
            # The admin's catch-all: a page that does not exist.
            "url": lambda: ["no-such-page/"],
            "app_label": lambda: sorted({m._meta.app_label for m in admin.site._registry}),
            "id": lambda: [pk for _, pk in roles],
            # An alert source's name (its heartbeat URL).
            "source": lambda: ["prometheus"],
        },
        # The admin's "view on site" redirect takes a content type and an object.
        by_route={
            "admin:view_on_site": lambda: admin_objects,
            "admin:incidents_incident_stand_down": lambda: [
                {"object_id": incident, "assignment_id": pk} for incident, pk in roles
            ],
            "admin:oncall_page_incident": lambda: [
                {"incident_id": pk} for pk in (w.conf.pk, w.public.pk)
            ],
            "forensics:evidence-download": lambda: [{"pk": pk} for pk in rows.walked(EvidenceItem)],
            "admin:playbooks_checklist": lambda: [
                {"incident_id": pk} for pk in (w.conf.pk, w.public.pk)
            ],
            "playbooks-checklist-step": lambda: [
                {"reference": reference, "step_id": step_id}
                for reference, step_id in ChecklistStep.objects.filter(
                    incident__in=[w.conf, w.public]
                ).values_list("incident__reference", "pk")[:40]
            ],
            # The links in pages and test messages, and the secret calendar feeds: the
            # token is the key, so each persona walks the ones the control holds.
            "oncall:acknowledge": lambda: [
                {"token": oncall_paging.ack_token(page)} for page in w.pages
            ],
            "oncall:verify-contact": lambda: [{"token": oncall_contacts.verify_token(w.method)}],
            "oncall:person-feed": lambda: [{"token": oncall_feeds.feed_token(w.control)}],
            "oncall:rotation-feed": lambda: [
                {"token": oncall_feeds.feed_token(w.control), "rotation_id": w.rotation.pk}
            ],
        },
    )


def query_values(w: World) -> dict:
    """Values for API query parameters the schema types only as strings."""
    return {
        "search": lambda: [TERM],
        "service": lambda: list(Service.objects.values_list("slug", flat=True)),
        "severity": lambda: list(Severity.objects.values_list("key", flat=True)),
        "type": lambda: list(IncidentType.objects.values_list("slug", flat=True)),
        "team": lambda: sorted(set(ActionItem.objects.values_list("team", flat=True))),
        "incident": lambda: [w.conf.reference, w.public.reference],
        "postmortem": lambda: [w.conf.reference, w.public.reference],
        "owner": lambda: ["me", w.trent.username],
        "ordering": lambda: ["-updated_at"],
        "cursor": lambda: [],
    }


def discover(w: World, control: Client) -> walk.Discovery:
    # Besides what holds the marker or points at it: the public incidents whose
    # reviews name the confidential one.
    rows = walk.Rows(MARK, also={Incident: [w.public.pk, w.open_public.pk]})
    found = walk.Discovery()
    walk.discover_routes(fillers(w, rows), SKIPPED, found)
    walk.discover_admin_searches(TERM, found)
    walk.discover_admin_prefills(rows, found)
    walk.discover_autocomplete(TERM, found)
    values = query_values(w)
    for url, source in walk.api_query_urls(
        walk.api_schema(),
        list(found.urls),
        lambda name, schema: walk.schema_values(name, schema, values, TERM),
    ):
        found.add(url, source)
    # What the control user's lists and pages offer: every filter and export link,
    # every choice of their GET forms (the stakeholder pages' and the report's).
    pages = [
        url
        for url, source in list(found.urls.items())
        if "?" not in url
        and (
            source.startswith("admin:")
            and "_changelist" in source
            or not source.startswith(("admin", "api"))
        )
    ]
    for page in pages:
        response = walk.fetch(control, page)
        if response.status_code == 200 and "html" in response.get("Content-Type", ""):
            changelist = found.urls[page].startswith("admin:")
            for url in walk.harvest(page, walk.body_of(response), TERM, changelist):
                found.add(url, f"link on {page}")
    return found


# --- the walk ----------------------------------------------------------------------------


def client_for(user) -> Client:
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    return client


def walk_as(persona: str, client: Client, urls) -> tuple[list, list, dict]:
    seen, errors, statuses = [], [], {}
    for url in urls:
        hits, error, response = walk.check(client, persona, url, MARK)
        seen += hits
        statuses[url] = response.status_code
        if error:
            errors.append(error)
    return seen, errors, statuses


def describe(items, limit=60) -> str:
    lines = [
        f"  [{i.persona}] {i.status} {i.url} ({i.where}): …{i.context}…"
        if isinstance(i, walk.Seen)
        else f"  [{i.persona}] {i.status} {i.url}: {i.summary}"
        for i in items[:limit]
    ]
    if len(items) > limit:
        lines.append(f"  … and {len(items) - limit} more")
    return "\n".join(lines)


@pytest.mark.django_db
def test_no_page_shows_a_confidential_incident_to_those_who_may_not_see_it(
    django_user_model, default_policy, capsys, caplog
):
    # Thousands of 403s and 404s are the point; server errors are collected below.
    caplog.set_level(logging.ERROR, logger="django.request")
    started = time.monotonic()
    w = build_world(django_user_model)
    check_world(w)
    built = time.monotonic()
    control = client_for(w.control)
    found = discover(w, control)

    unfillable, misrouted = found.unfillable, found.misrouted
    assert not unfillable, (
        "URL patterns the walk cannot fill: give each a filler in fillers() (by kwarg "
        "name or by route name), or, if the page can carry no data, a commented line in "
        "SKIPPED:\n  " + "\n  ".join(unfillable)
    )
    assert not misrouted, "Fillers built URLs that reach another view:\n  " + "\n  ".join(misrouted)
    # The control proves the walk would see a leak: these show it the marker.
    must_show = [
        reverse("admin:incidents_incident_change", args=[w.conf.pk]),
        reverse("admin:incidents_incident_history", args=[w.conf.pk]),
        reverse("admin:postmortems_postmortem_change", args=[w.pm.pk]),
        reverse("admin:postmortems_postmortem_history", args=[w.pm.pk]),
        reverse("admin:remediation_actionitem_change", args=[w.items[0].pk]),
        reverse("admin:incidents_notification_change", args=[w.conf_notification.pk]),
        reverse("admin:incidents_notification_change", args=[w.digest.pk]),
        reverse("api:incident-detail", kwargs={"reference": w.conf.reference}),
        reverse("api:incident-timeline", kwargs={"reference": w.conf.reference}),
        reverse("api:incident-updates", kwargs={"reference": w.conf.reference}),
        reverse("postmortems:detail", kwargs={"reference": w.conf.reference}),
        reverse("postmortems:markdown", kwargs={"reference": w.conf.reference}),
        reverse("postmortems-api:postmortem-detail", kwargs={"reference": w.conf.reference}),
        reverse("remediation-api:action-item-detail", kwargs={"pk": w.items[0].pk}),
        reverse("admin:forensics_evidenceitem_change", args=[w.evidence.pk]),
        reverse("forensics:evidence-download", args=[w.evidence.pk]),
        reverse("forensics-api:evidence-detail", kwargs={"pk": w.evidence.pk}),
        reverse("forensics-api:evidence-download", kwargs={"pk": w.evidence.pk}),
        reverse("forensics-api:incident-evidence-export", kwargs={"reference": w.conf.reference}),
        reverse("forensics-api:breach", kwargs={"reference": w.conf.reference}),
    ]
    not_walked = [url for url in must_show if url not in found.urls]
    assert not not_walked, f"The walk missed pages it must visit: {not_walked}"
    urls = list(found.urls)
    discovered = time.monotonic()

    personas = {
        "outsider": client_for(w.outsider),
        "outside commander": client_for(w.outside_commander),
        "stakeholder": client_for(w.stakeholder),
        "anonymous": client_for(None),
    }
    leaks, errors = [], []
    for persona, client in personas.items():
        seen, failed, _ = walk_as(persona, client, urls)
        leaks += seen
        errors += failed
    control_seen, control_errors, control_statuses = walk_as("control", control, urls)
    errors += control_errors
    finished = time.monotonic()

    shown = {s.url for s in control_seen}
    with capsys.disabled():
        print(
            f"\nconfidentiality walk: {found.patterns} URL patterns, {len(urls)} URLs per "
            f"persona × {len(personas) + 1} personas; build {built - started:.1f}s, discover "
            f"{discovered - built:.1f}s, walk {finished - discovered:.1f}s; the control saw "
            f"the marker on {len(shown)} URLs"
        )

    # Both lists at once: a leak behind a server error is still a leak.
    report = []
    if leaks:
        report.append(
            f"The marker of confidential {w.conf.reference} reached {len(leaks)} place(s) "
            f"it must not:\n{describe(leaks)}"
        )
    if errors:
        report.append(f"{len(errors)} server error(s):\n{describe(errors)}")
    assert not report, "\n".join(report)

    blind = [(url, control_statuses[url]) for url in must_show if url not in shown]
    assert not blind, f"The Security group did not see the marker on {blind}"
