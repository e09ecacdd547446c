from rest_framework import serializers

from incidents.services import NOTE_TEXT

from ..models import GUIDANCE_TEXT, MAX_DUE_MINUTES, TITLE_TEXT, ChecklistStep, Phase, Playbook


class ChecklistStepSerializer(serializers.ModelSerializer):
    playbook = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True, help_text="Null: added by hand."
    )
    runbook_url = serializers.CharField(read_only=True, help_text="A URL, or empty.")
    due_within_minutes = serializers.IntegerField(
        source="due_within", read_only=True, allow_null=True, help_text="Null: no time-box."
    )
    completed_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    overdue = serializers.SerializerMethodField()
    late = serializers.SerializerMethodField()

    class Meta:
        model = ChecklistStep
        fields = [
            "id",
            "phase",
            "position",
            "title",
            "guidance",
            "runbook_url",
            "required",
            "playbook",
            "playbook_name",
            "due_within_minutes",
            "started_at",
            "due_at",
            "status",
            "completed_by",
            "completed_at",
            "note",
            "overdue",
            "late",
        ]
        read_only_fields = fields

    def get_overdue(self, step) -> bool:
        return step.is_overdue(self.context["now"])

    def get_late(self, step) -> bool:
        return step.was_late()


class PhaseProgressSerializer(serializers.Serializer):
    phase = serializers.ChoiceField(choices=Phase.choices)
    label = serializers.CharField()
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    skipped = serializers.IntegerField()


class ChecklistSerializer(serializers.Serializer):
    incident = serializers.CharField(help_text="The incident's reference.")
    total = serializers.IntegerField()
    resolved = serializers.IntegerField(help_text="Steps ticked or skipped.")
    required_open = serializers.IntegerField(help_text="Required steps still to do.")
    overdue = serializers.IntegerField(help_text="Time-boxed steps past their time.")
    phases = PhaseProgressSerializer(many=True)
    steps = ChecklistStepSerializer(many=True)


class ChecklistAddSerializer(serializers.Serializer):
    """Apply a playbook by its slug, or add one step of your own (title and phase)."""

    playbook = serializers.SlugRelatedField(
        slug_field="slug", queryset=Playbook.objects.all(), required=False
    )
    title = serializers.CharField(max_length=TITLE_TEXT, required=False)
    phase = serializers.ChoiceField(choices=Phase.choices, required=False)
    required = serializers.BooleanField(default=False)
    due_within_minutes = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_DUE_MINUTES
    )
    guidance = serializers.CharField(
        max_length=GUIDANCE_TEXT, required=False, allow_blank=True, default=""
    )
    runbook_url = serializers.URLField(max_length=500, required=False, allow_blank=True, default="")

    def validate(self, data):
        if ("playbook" in data) == ("title" in data):
            raise serializers.ValidationError(
                "Give a playbook to apply, or the title (and phase) of a step to add."
            )
        if "title" in data and "phase" not in data:
            raise serializers.ValidationError({"phase": ["A step needs its phase."]})
        return data


class ChecklistStepPatchSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=ChecklistStep.Status.choices,
        help_text="done: tick it (optional note, done_at); skipped: skip it (reason "
        "required); pending: reopen it.",
    )
    note = serializers.CharField(max_length=NOTE_TEXT, required=False, allow_blank=True)
    reason = serializers.CharField(max_length=NOTE_TEXT, required=False, allow_blank=True)
    done_at = serializers.DateTimeField(
        required=False, help_text="When it was done, if earlier than now."
    )
