"""Shapes of the post-mortem API: input serializers validate, output ones describe."""

from rest_framework import serializers

from incidents.api.serializers import (
    NOTE_TEXT,
    BoundedListField,
    SlugField,
    SlugListField,
    username_field,
)
from incidents.models import Incident
from incidents.queries import active_users, incident_list_visible_to

from ..models import SECTIONS, ContributingFactor, PostMortem, ReviewDecision, TimelineEntry
from ..services import TEXT_LIMIT

# The longest lists a PATCH takes: 40,000 related incidents once held a worker for 60 s.
MAX_PEOPLE = 50  # reviewers, participants
MAX_RELATED_INCIDENTS = 50
MAX_FACTORS = 100
MAX_TIMELINE_MARKS = 500


def _usernames(**kwargs):
    return serializers.SlugRelatedField(slug_field="username", many=True, read_only=True, **kwargs)


class ContributingFactorSerializer(serializers.ModelSerializer):
    category = serializers.ChoiceField(choices=ContributingFactor.Category.choices)
    description = serializers.CharField(max_length=TEXT_LIMIT)

    class Meta:
        model = ContributingFactor
        fields = ["category", "description"]


class TimelineEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = TimelineEntry
        fields = ["id", "occurred_at", "kind", "summary", "is_key", "commentary"]
        read_only_fields = fields


class ReviewDecisionSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username")

    class Meta:
        model = ReviewDecision
        fields = ["round", "reviewer", "decision", "comment", "decided_at"]
        read_only_fields = fields


class PostMortemSerializer(serializers.ModelSerializer):
    reference = serializers.CharField(source="incident.reference")
    title = serializers.CharField(source="incident.title")
    severity = serializers.CharField(source="incident.severity.key")
    page = serializers.SerializerMethodField(help_text="The stakeholder page.")
    owner = serializers.CharField(source="owner.username", default=None, allow_null=True)
    reviewers = _usernames()
    participants = _usernames()
    related_incidents = serializers.SlugRelatedField(
        slug_field="reference",
        many=True,
        read_only=True,
        help_text="The related incidents you may see.",
    )
    published_by = serializers.CharField(
        source="published_by.username", default=None, allow_null=True
    )
    overdue = serializers.SerializerMethodField()
    contributing_factors = ContributingFactorSerializer(many=True, read_only=True)
    timeline = TimelineEntrySerializer(many=True, read_only=True)
    decisions = ReviewDecisionSerializer(many=True, read_only=True)

    class Meta:
        model = PostMortem
        fields = [
            "reference",
            "title",
            "severity",
            "status",
            "page",
            "owner",
            "reviewers",
            "participants",
            "related_incidents",
            "due_at",
            "overdue",
            "review_meeting_at",
            "review_round",
            "published_at",
            "published_by",
            "reopen_reason",
            *SECTIONS,
            "no_action_needed",
            "no_action_reason",
            "contributing_factors",
            "timeline",
            "decisions",
            "facts",
            "synced_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_page(self, obj) -> str:
        request = self.context.get("request")
        url = obj.get_absolute_url()
        return request.build_absolute_uri(url) if request else url

    def get_overdue(self, obj) -> bool:
        return obj.is_overdue()


class _VisibleIncidents:
    """Incidents by reference, among those the caller may see (others do not exist)."""

    def __init__(self, **kwargs):
        super().__init__(queryset=Incident.objects.all(), slug_field="reference", **kwargs)

    def get_queryset(self):
        return incident_list_visible_to(self.context["request"].user, super().get_queryset())


class VisibleIncidentField(_VisibleIncidents, SlugField):
    """An incident by reference."""


class VisibleIncidentListField(_VisibleIncidents, SlugListField):
    """Incidents by reference, found with one query."""


def usernames(what: str):
    return SlugListField(
        slug_field="username",
        queryset=active_users(),
        max_length=MAX_PEOPLE,
        required=False,
        help_text=f"Usernames of the {what}, at most {MAX_PEOPLE}; replaces the list.",
    )


class PostMortemCreateSerializer(serializers.Serializer):
    incident = VisibleIncidentField(help_text="Incident reference.")
    owner = username_field(
        required=False, help_text="Username. Default: the incident's commander, or you."
    )


class TimelineMarkSerializer(serializers.Serializer):
    id = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    is_key = serializers.BooleanField()
    commentary = serializers.CharField(
        max_length=TEXT_LIMIT, allow_blank=True, required=False, help_text="Omit to keep it."
    )


class PostMortemUpdateSerializer(serializers.Serializer):
    owner = username_field(required=False, allow_null=True)
    reviewers = usernames("reviewers")
    participants = usernames("participants")
    related_incidents = VisibleIncidentListField(
        max_length=MAX_RELATED_INCIDENTS,
        required=False,
        help_text=f"Incident references, at most {MAX_RELATED_INCIDENTS}; replaces the list "
        "(related incidents you may not see are kept).",
    )
    due_at = serializers.DateTimeField(required=False, allow_null=True)
    review_meeting_at = serializers.DateTimeField(required=False, allow_null=True)
    contributing_factors = BoundedListField(
        child=ContributingFactorSerializer(),
        max_length=MAX_FACTORS,
        required=False,
        help_text=f"At most {MAX_FACTORS}; replaces the whole list, in order.",
    )
    no_action_needed = serializers.BooleanField(required=False)
    no_action_reason = serializers.CharField(max_length=NOTE_TEXT, allow_blank=True, required=False)
    timeline = BoundedListField(
        child=TimelineMarkSerializer(),
        max_length=MAX_TIMELINE_MARKS,
        required=False,
        help_text=f"Marks key events and sets commentary, by entry id; at most "
        f"{MAX_TIMELINE_MARKS} entries at a time.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, (title, question) in SECTIONS.items():
            self.fields[name] = serializers.CharField(
                max_length=TEXT_LIMIT,
                allow_blank=True,
                required=False,
                help_text=f"{title}: {question} Markdown.",
            )


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=NOTE_TEXT, allow_blank=True, default="")


class RequiredCommentSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=NOTE_TEXT, help_text="What should change.")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=NOTE_TEXT, help_text="Why it is reopened.")
