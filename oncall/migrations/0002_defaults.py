from django.db import migrations

from oncall.defaults import load_defaults


def forwards(apps, schema_editor):
    load_defaults(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("oncall", "0001_initial"),
        ("incidents", "0002_default_policy"),
        # The ladder's last shape, which the default policy is made from.
        ("incidents", "0014_phone_channels"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
