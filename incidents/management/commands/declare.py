"""`manage.py declare critical outage production --title "API down"` — the CLI twin of
the reference's `/incident-response [severity] [type] [environment]` command."""

import getpass

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from incidents import services
from incidents.errors import DomainError
from incidents.models import Environment, IncidentType, Service, Severity, Source


class Command(BaseCommand):
    help = "Declare an incident and print its reference."

    def add_arguments(self, parser):
        parser.add_argument("severity", help="SEV1..SEV4 or critical, high, medium, low")
        parser.add_argument("type", help="incident type slug, e.g. outage, security")
        parser.add_argument("environment", help=", ".join(Environment.values))
        parser.add_argument("--title", required=True)
        parser.add_argument("--summary", default="")
        parser.add_argument(
            "--service", action="append", default=[], help="affected service slug (repeatable)"
        )
        parser.add_argument("--commander", help="username to make incident commander")
        parser.add_argument(
            "--as",
            dest="acting_user",
            help="username recorded as the actor (default: your login name, if it is a user)",
        )
        parser.add_argument(
            "--confidential", action="store_true", default=None, help="hide from non-participants"
        )

    def handle(self, *args, **options):
        severity = Severity.objects.all().resolve(options["severity"])
        if severity is None:
            valid = ", ".join(Severity.objects.all().names())
            raise CommandError(f"Unknown severity {options['severity']!r}; valid: {valid}.")
        incident_type = IncidentType.objects.filter(slug=options["type"].lower()).first()
        if incident_type is None:
            valid = ", ".join(IncidentType.objects.values_list("slug", flat=True))
            raise CommandError(f"Unknown type {options['type']!r}; valid: {valid}.")
        environment = options["environment"].lower()
        if environment not in Environment.values:
            valid = ", ".join(Environment.values)
            raise CommandError(f"Unknown environment {options['environment']!r}; valid: {valid}.")

        slugs = list(dict.fromkeys(options["service"]))
        found = list(Service.objects.filter(slug__in=slugs))
        missing = sorted(set(slugs) - {service.slug for service in found})
        if missing:
            valid = ", ".join(Service.objects.values_list("slug", flat=True)) or "none defined"
            raise CommandError(f"Unknown service(s) {', '.join(missing)}; valid: {valid}.")

        try:
            incident = services.incident_declare(
                title=options["title"],
                summary=options["summary"],
                severity=severity,
                incident_type=incident_type,
                environment=environment,
                services=found,
                confidential=options["confidential"],
                commander=self._user(options["commander"], "--commander"),
                actor=self._actor(options["acting_user"]),
                source=Source.CLI,
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(incident.reference)

    def _actor(self, username):
        """Return who is declaring: --as, else the shell's login name if it is a user."""
        if username:
            return self._user(username, "--as")
        return get_user_model().objects.filter(username=getpass.getuser(), is_active=True).first()

    def _user(self, username, option):
        if not username:
            return None
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"{option}: no active user named {username!r}.")
        return user
