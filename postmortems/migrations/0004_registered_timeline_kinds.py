"""The review's copy of the timeline shows every registered timeline kind
(incidents.extensions), not the core's list."""

import incidents.extensions
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('postmortems', '0003_untrack_related_history'),
    ]

    operations = [
        migrations.AlterField(
            model_name='historicaltimelineentry',
            name='kind',
            field=models.CharField(choices=incidents.extensions.timeline_kind_choices, max_length=20),
        ),
        migrations.AlterField(
            model_name='timelineentry',
            name='kind',
            field=models.CharField(choices=incidents.extensions.timeline_kind_choices, max_length=20),
        ),
    ]
