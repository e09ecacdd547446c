"""Add an alert source and print its secret, alone on the last line (for scripts)."""

from django.core.management.base import BaseCommand, CommandError

from incidents.errors import DomainError

from ...services import source_create
from ...sources import FORMATS


class Command(BaseCommand):
    help = "Create an alert source (an Alertmanager, a Grafana, a script) and print its secret."

    def add_arguments(self, parser):
        parser.add_argument("name", help="lowercase letters, digits and dashes")
        parser.add_argument("--kind", required=True, choices=sorted(FORMATS))
        parser.add_argument("--description", default="")
        parser.add_argument(
            "--heartbeat-minutes",
            type=int,
            default=None,
            help="raise an alert when the source sends nothing for this long",
        )

    def handle(self, *args, name, kind, description, heartbeat_minutes, **options):
        try:
            source, secret = source_create(
                name=name,
                kind=kind,
                description=description,
                heartbeat_minutes=heartbeat_minutes,
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            f"Created alert source {source.name} ({source.get_kind_display()}). Post to "
            f"/api/v1/alerts/{kind}/ with 'Authorization: Bearer <secret>'. The secret is "
            "shown this once:"
        )
        self.stdout.write(secret)
