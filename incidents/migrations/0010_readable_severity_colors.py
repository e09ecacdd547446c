"""SEV2 and SEV3's badge colours were too light for white text (3.6:1 and 2.9:1);
darken them where nobody has chosen another colour."""

from django.db import migrations

CHANGES = {"SEV2": ("#ea580c", "#c2410c"), "SEV3": ("#ca8a04", "#a16207")}


def darken(apps, schema_editor):
    Severity = apps.get_model("incidents", "Severity")
    for key, (old, new) in CHANGES.items():
        Severity.objects.filter(key=key, color=old).update(color=new)


def lighten(apps, schema_editor):
    Severity = apps.get_model("incidents", "Severity")
    for key, (old, new) in CHANGES.items():
        Severity.objects.filter(key=key, color=new).update(color=old)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0009_review_events")]
    operations = [migrations.RunPython(darken, lighten)]
