from django.db import migrations

from incidents.defaults import INCIDENT_TYPES, SEVERITIES


def load_defaults(apps, schema_editor):
    # Only fill in what is missing: commanders may have edited the rows since.
    Severity = apps.get_model("incidents", "Severity")
    IncidentType = apps.get_model("incidents", "IncidentType")
    for row in SEVERITIES:
        Severity.objects.get_or_create(key=row["key"], defaults=row)
    for row in INCIDENT_TYPES:
        IncidentType.objects.get_or_create(slug=row["slug"], defaults=row)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]

    operations = [migrations.RunPython(load_defaults, migrations.RunPython.noop)]
