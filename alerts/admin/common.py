"""What the alerts admins share: actions that report counts, and the small renderers of
labels and raw text (a refused save shown again as typed is the core's KeepsTypedInput)."""

import json

from django.contrib import messages
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from incidents.admin import badge
from incidents.errors import DomainError

from ..models import Alert, AlertPayload

ALERT_COLORS = {Alert.Status.FIRING: "#dc2626", Alert.Status.RESOLVED: "#16a34a"}
PAYLOAD_COLORS = {
    AlertPayload.Status.RECEIVED: "#a16207",
    AlertPayload.Status.PROCESSED: "#16a34a",
    AlertPayload.Status.REJECTED: "#6b7280",
    AlertPayload.Status.FAILED: "#b91c1c",
}
# A raw body shown on a page is cut here: a 1 MiB payload would make a page nobody reads.
SHOWN_BODY_CHARS = 200_000


def run_each(modeladmin, request, rows, verb: str, call, noun: str | None = None) -> int:
    """Apply `call` to each row; say how many worked and why the others did not."""
    done, failed = 0, []
    for row in rows:
        try:
            call(row)
            done += 1
        except DomainError as error:
            failed.append(f"{row}: {error.message}")
    noun = noun or modeladmin.model._meta.verbose_name
    if done:
        modeladmin.message_user(request, f"{verb} {done} {noun}(s).", messages.SUCCESS)
    for message in failed:
        modeladmin.message_user(request, message, messages.ERROR)
    return done


def condition_rows(formset, where: str, *, labels_only: bool = False) -> list[dict]:
    """Return the inline's conditions as the services take them, {subject, key,
    operator, value}, in the page's order, leaving out empty and deleted rows."""
    rows = []
    for form in formset.forms:
        data = getattr(form, "cleaned_data", None)
        if not data or data.get("DELETE"):  # an extra row left empty, or a row deleted
            continue
        rows.append(
            {
                "subject": "label" if labels_only else data.get("subject") or "label",
                "key": data.get("key", ""),
                "operator": data.get("operator", ""),
                "value": data.get("value", ""),
            }
        )
    return rows


def note_formset_changes(formset) -> None:
    """Let the admin's change message read what a formset changed, though a service
    saved its rows (commit=False: this writes nothing)."""
    formset.save(commit=False)


def status_badge(alert: Alert):
    return badge(alert.get_status_display(), ALERT_COLORS[alert.status])


def mapping_table(mapping: dict, empty: str = "—", number: bool = False):
    """Render {name: value} (labels, annotations, metric values) as a small table."""
    if not mapping:
        return empty
    rows = format_html_join(
        "",
        "<tr><th>{}</th><td>{}</td></tr>",
        ((key, f"{value:g}" if number else value) for key, value in sorted(mapping.items())),
    )
    return format_html('<table class="alerts-mapping">{}</table>', rows)


def pretty_body(text: str) -> str:
    """Return a raw body for reading: indented JSON when it parses, else as it came."""
    try:
        shown = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        shown = text
    if len(shown) > SHOWN_BODY_CHARS:
        shown = (
            shown[:SHOWN_BODY_CHARS] + f"\n… ({len(shown) - SHOWN_BODY_CHARS:,} more characters)"
        )
    return shown


def pre(text: str):
    return format_html('<pre class="alerts-raw">{}</pre>', text)


def admin_link(obj, label=None, *, user=None):
    """Link to the admin page of `obj` when `user` may view it there, else its name."""
    if obj is None:
        return "—"
    label = str(obj) if label is None else label
    opts = obj._meta
    if user is not None and not user.has_perm(f"{opts.app_label}.view_{opts.model_name}"):
        return label
    try:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return label
    return format_html('<a href="{}">{}</a>', url, label)


def safe_url(url: str):
    """A link only for http(s): a monitoring system's URL is input like any other."""
    if url.startswith(("http://", "https://")):
        return format_html('<a href="{}" rel="noopener noreferrer">{}</a>', url, url)
    return url or "—"
