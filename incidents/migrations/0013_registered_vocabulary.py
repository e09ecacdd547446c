"""Timeline kinds and notification events are registered by the app that writes them
(incidents.extensions): the columns read their choices from the registry, so an app
adds its words without a migration of the core. Stored values are unchanged."""

import incidents.extensions
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('incidents', '0012_notification_mentions'),
    ]

    operations = [
        migrations.AlterField(
            model_name='historicaltimelineevent',
            name='kind',
            field=models.CharField(choices=incidents.extensions.timeline_kind_choices, max_length=20),
        ),
        migrations.AlterField(
            model_name='notification',
            name='event',
            field=models.CharField(choices=incidents.extensions.notification_event_choices, max_length=20),
        ),
        migrations.AlterField(
            model_name='timelineevent',
            name='kind',
            field=models.CharField(choices=incidents.extensions.timeline_kind_choices, max_length=20),
        ),
    ]
