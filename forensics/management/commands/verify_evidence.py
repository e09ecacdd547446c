"""`manage.py verify_evidence [reference]`: hash every file in the evidence locker again."""

from django.core.management.base import BaseCommand, CommandError

from incidents.models import Incident, Source

from ...services import evidence_verify, stored_items


class Command(BaseCommand):
    help = (
        "Recompute the SHA-256 of every file in the evidence locker (or of one incident's) and "
        "compare it with the hash taken at upload. Exits 1 naming each mismatched or missing "
        "file, 0 when all are intact."
    )

    def add_arguments(self, parser):
        parser.add_argument("reference", nargs="?", help="Only this incident (INC-YYYY-NNNN).")

    def handle(self, *args, reference=None, **options):
        if reference and not Incident.objects.filter(reference=reference).exists():
            raise CommandError(f"No incident {reference}.", returncode=2)
        findings = evidence_verify(items=stored_items(reference), source=Source.CLI)
        bad = [finding for finding in findings if not finding.is_ok]
        for finding in findings:
            item = finding.item
            label = f"#{item.pk} {item.incident.reference} {item.get_kind_display().lower()}"
            if finding.is_ok:
                self.stdout.write(f"ok        {label} {item.file.name}", style_func=lambda s: s)
            else:
                self.stderr.write(f"{finding.state.upper():<9} {label}: {finding.problem}")
        summary = f"{len(findings)} stored item(s) verified, {len(bad)} not intact."
        if bad:
            # A non-zero exit, so a cron job or a monitoring check notices.
            raise CommandError(summary, returncode=1)
        self.stdout.write(self.style.SUCCESS(summary))
