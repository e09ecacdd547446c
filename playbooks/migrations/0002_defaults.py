from django.db import migrations

from playbooks.defaults import load_defaults


def forwards(apps, schema_editor):
    load_defaults(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("playbooks", "0001_initial"),
        ("incidents", "0002_default_policy"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
