from django.db import migrations

from incidents.defaults import load_defaults


def load_default_policy(apps, schema_editor):
    load_defaults(apps.get_model("incidents", "Severity"), apps.get_model("incidents", "IncidentType"))


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]

    operations = [migrations.RunPython(load_default_policy, migrations.RunPython.noop)]
