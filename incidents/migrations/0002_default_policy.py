from django.db import migrations
from django.utils import timezone

# The policy as shipped. Changing a default for existing installs needs a new migration.
from incidents.defaults import load_defaults


def load_default_policy(apps, schema_editor):
    created = load_defaults(
        apps.get_model("incidents", "Severity"), apps.get_model("incidents", "IncidentType")
    )
    # Migration models carry no history hooks: write the "created" rows ourselves, so the
    # first edit of a policy row shows what it changed from.
    now = timezone.now()
    for obj in created:
        historical = apps.get_model("incidents", f"Historical{obj._meta.object_name}")
        fields = {field.attname: getattr(obj, field.attname) for field in obj._meta.fields}
        historical.objects.create(
            **fields, history_date=now, history_type="+", history_change_reason="Default policy"
        )


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]

    operations = [migrations.RunPython(load_default_policy, migrations.RunPython.noop)]
