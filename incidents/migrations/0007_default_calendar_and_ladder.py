from datetime import time

from django.db import migrations

# The escalation ladder of the reference procedures; members are filled in by people.
LEVELS = [
    (1, "On-call engineers", "First responders: triage, restart, acknowledge."),
    (2, "Team lead", "Specialists for configuration changes and deeper troubleshooting."),
    (3, "Senior engineering", "Architecture changes, emergency deploys, disaster recovery."),
    (4, "Executive leadership", "Business decisions, external communication, resources."),
]


def load(apps, schema_editor):
    BusinessCalendar = apps.get_model("incidents", "BusinessCalendar")
    EscalationLevel = apps.get_model("incidents", "EscalationLevel")
    if not BusinessCalendar.objects.exists():
        BusinessCalendar.objects.create(
            name="Office hours",
            time_zone="UTC",
            working_days=[0, 1, 2, 3, 4],
            day_starts=time(9, 0),
            day_ends=time(17, 0),
        )
    for level, name, description in LEVELS:
        EscalationLevel.objects.get_or_create(
            level=level, defaults={"name": name, "description": description}
        )


class Migration(migrations.Migration):
    dependencies = [("incidents", "0006_watchdogs")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
