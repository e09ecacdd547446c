from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from incidents import services
from incidents.errors import DomainError


class Command(BaseCommand):
    help = "Create an API key for a user; the key is printed once, on the last line."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="what will use the key")
        parser.add_argument("--expires-in-days", type=int, default=None)

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        try:
            key, plaintext = services.api_key_create(
                user=user, name=options["name"], expires_in_days=options["expires_in_days"]
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        expiry = f"expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else "no expiry"
        self.stderr.write(f"API key {key.name!r} for {user.get_username()} ({expiry}):")
        self.stdout.write(plaintext)
