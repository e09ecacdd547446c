"""The incident's checklist over the API: GET/POST /api/v1/incidents/{reference}/checklist/
and PATCH …/checklist/{id}/. Thin: playbooks.services writes, playbooks.queries reads."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from incidents.api.errors import ErrorResponse409Serializer
from incidents.api.permissions import ModelPermissions
from incidents.models import Source
from incidents.queries import incident_list_visible_to

from .. import services
from ..models import ChecklistStep
from ..queries import checklist_for
from . import serializers as s

ERRORS = {409: ErrorResponse409Serializer}


class WorksChecklists(ModelPermissions):
    # Adding, ticking, skipping and reopening steps all change the incident's checklist.
    perms_map = {
        **ModelPermissions.perms_map,
        "POST": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
    }


class ChecklistMixin:
    permission_classes = [WorksChecklists]
    queryset = ChecklistStep.objects.all()  # names the model for the permissions

    def incident(self, reference):
        incident = incident_list_visible_to(self.request.user).filter(reference=reference).first()
        if incident is None:
            raise exceptions.NotFound("No such incident, or not visible to you.")
        return incident

    def checklist_response(self, incident, status_code=status.HTTP_200_OK):
        now = timezone.now()
        checklist = checklist_for(incident, now)
        body = {
            "incident": incident.reference,
            "total": checklist.total,
            "resolved": checklist.resolved,
            "required_open": checklist.required_open,
            "overdue": len(checklist.overdue),
            "phases": [
                {
                    "phase": phase.phase,
                    "label": phase.label,
                    "total": phase.total,
                    "done": phase.done,
                    "skipped": phase.skipped,
                }
                for phase in checklist.phases
            ],
            "steps": s.ChecklistStepSerializer(
                checklist.steps, many=True, context={"now": now}
            ).data,
        }
        return Response(body, status=status_code)


class ChecklistView(ChecklistMixin, APIView):
    @extend_schema(
        summary="The incident's checklist: progress per phase and every step",
        responses={200: s.ChecklistSerializer},
        tags=["incidents"],
    )
    def get(self, request, reference):
        return self.checklist_response(self.incident(reference))

    @extend_schema(
        summary="Apply a playbook, or add a step of your own",
        description="Either `playbook` (a slug: its steps the incident lacks are added, "
        "time-boxed from now) or `title` and `phase` (one step). Answers with the whole "
        "checklist. 404 for an incident you may not see; 409 if it is closed, cancelled "
        "or still in triage, or already has every step of the playbook.",
        request=s.ChecklistAddSerializer,
        responses={201: s.ChecklistSerializer, **ERRORS},
        tags=["incidents"],
    )
    def post(self, request, reference):
        incident = self.incident(reference)
        serializer = s.ChecklistAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "playbook" in data:
            services.checklist_apply_playbook(
                incident=incident, playbook=data["playbook"], actor=request.user, source=Source.API
            )
        else:
            services.checklist_step_add(
                incident=incident,
                title=data["title"],
                phase=data["phase"],
                required=data["required"],
                due_within=data.get("due_within_minutes"),
                guidance=data["guidance"],
                runbook_url=data["runbook_url"],
                actor=request.user,
                source=Source.API,
            )
        return self.checklist_response(incident, status.HTTP_201_CREATED)


class ChecklistStepView(ChecklistMixin, APIView):
    @extend_schema(
        summary="Tick, skip or reopen one step",
        description="`status: done` ticks it (optional `note`, and `done_at` if it was done "
        "earlier); `status: skipped` skips it with a `reason`; `status: pending` reopens "
        "it. Each goes on the timeline. 409 if the step is already in that state or the "
        "incident's checklist is no longer worked.",
        request=s.ChecklistStepPatchSerializer,
        responses={200: s.ChecklistStepSerializer, **ERRORS},
        tags=["incidents"],
    )
    def patch(self, request, reference, step_id):
        incident = self.incident(reference)
        step = ChecklistStep.objects.filter(incident=incident, pk=step_id).first()
        if step is None:
            raise exceptions.NotFound(f"{incident.reference} has no checklist step {step_id}.")
        serializer = s.ChecklistStepPatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        actor, source = request.user, Source.API
        if data["status"] == ChecklistStep.Status.DONE:
            step = services.checklist_step_complete(
                step=step,
                note=data.get("note", ""),
                done_at=data.get("done_at"),
                actor=actor,
                source=source,
            )
        elif data["status"] == ChecklistStep.Status.SKIPPED:
            step = services.checklist_step_skip(
                step=step, reason=data.get("reason", ""), actor=actor, source=source
            )
        else:
            step = services.checklist_step_reopen(
                step=step, reason=data.get("reason", ""), actor=actor, source=source
            )
        step = ChecklistStep.objects.select_related("playbook", "completed_by").get(pk=step.pk)
        context = {"now": timezone.now()}
        return Response(s.ChecklistStepSerializer(step, context=context).data)
