from django.db import migrations

from alerts.defaults import load_rules


def forwards(apps, schema_editor):
    load_rules(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0001_initial"),
        ("incidents", "0002_default_policy"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
