from django.db import migrations

from incidents.defaults import load_communication_defaults


def load(apps, schema_editor):
    load_communication_defaults(apps)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0004_communications")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
