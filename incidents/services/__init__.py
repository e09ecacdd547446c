"""Every write that means something to an incident, one module per concern.

Each service runs in one transaction, locks the incident it changes, validates,
writes, records the acting user in history and appends the timeline event — all
or nothing. Admin, API, CLI and tasks call these; they never set status themselves.
Other apps import from `incidents.services`; the modules below are its parts.
"""

from .access import (
    API_KEY_MAX_DAYS,
    API_KEY_PREFIX,
    api_key_create,
    api_key_revoke,
    check_key_name,
    hash_api_key,
    idempotency_records_prune,
)
from .common import (
    LONG_TEXT,
    MAX_BACKDATE,
    NEXT_UPDATE_HORIZON,
    NOTE_TEXT,
    UNPRINTABLE,
    acting_user,
    check_all_may_see,
    check_may_see,
    clean_text,
    lock_incident,
    save_as,
    when_happened,
)
from .comms import (
    CHANNEL_TARGET_FIELDS,
    channel_target_check,
    channel_target_create,
    channel_target_update,
    check_template,
    message_template_save,
)
from .declaration import (
    EDITABLE_FIELDS,
    TITLE_MAX_LENGTH,
    check_times,
    incident_declare,
    incident_update_details,
)
from .lifecycle import (
    ACCEPT_SEVERITY_REASON,
    DECLINE_REASON_REQUIRED,
    MILESTONE_OF_STATUS,
    TRANSITIONS,
    MoveOption,
    allowed_transitions,
    incident_accept,
    incident_acknowledge,
    incident_change_severity,
    incident_decline,
    incident_transition,
    transition_options,
)
from .roles import role_assign, role_relieve
from .timeline import timeline_add_entry, timeline_record, timeline_record_many
from .updates import status_update_post

__all__ = [
    "ACCEPT_SEVERITY_REASON",
    "API_KEY_MAX_DAYS",
    "API_KEY_PREFIX",
    "CHANNEL_TARGET_FIELDS",
    "DECLINE_REASON_REQUIRED",
    "EDITABLE_FIELDS",
    "LONG_TEXT",
    "MAX_BACKDATE",
    "MILESTONE_OF_STATUS",
    "NEXT_UPDATE_HORIZON",
    "NOTE_TEXT",
    "TITLE_MAX_LENGTH",
    "TRANSITIONS",
    "MoveOption",
    "UNPRINTABLE",
    "acting_user",
    "allowed_transitions",
    "api_key_create",
    "api_key_revoke",
    "channel_target_check",
    "channel_target_create",
    "channel_target_update",
    "check_all_may_see",
    "check_key_name",
    "check_may_see",
    "check_template",
    "check_times",
    "clean_text",
    "hash_api_key",
    "idempotency_records_prune",
    "incident_accept",
    "incident_acknowledge",
    "incident_change_severity",
    "incident_declare",
    "incident_decline",
    "incident_transition",
    "incident_update_details",
    "lock_incident",
    "message_template_save",
    "role_assign",
    "role_relieve",
    "save_as",
    "status_update_post",
    "timeline_add_entry",
    "timeline_record",
    "timeline_record_many",
    "transition_options",
    "when_happened",
]
