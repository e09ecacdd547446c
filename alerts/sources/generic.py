"""Sitrep's own format for scripts and systems without a webhook of their own: one
object or a list of them,

    {"source"?, "fingerprint"?, "status": "firing"|"resolved", "title",
     "labels": {}, "annotations": {}, "metrics": {"name": number},
     "starts_at"?, "ends_at"?}

`source` names the system that raised it and `title` the alert: they become the
`source` and `alertname` labels unless the labels have them."""

from . import base

FIELDS = {
    "source",
    "fingerprint",
    "status",
    "title",
    "labels",
    "annotations",
    "metrics",
    "starts_at",
    "ends_at",
    "url",
}


@base.register
class Generic(base.PayloadFormat):
    kind = "generic"
    label = "Generic JSON"

    def parse(self, data):
        items = data if isinstance(data, list) else [data]
        alerts = []
        for index, item in enumerate(items):
            where = f"[{index}]" if isinstance(data, list) else "The alert"
            item = base.obj(item, where)
            unknown = sorted(set(item) - FIELDS)
            if unknown:
                raise base.PayloadError(
                    f"{where} has unknown fields {', '.join(unknown)}; "
                    f"expected {', '.join(sorted(FIELDS))}."
                )
            labels = base.string_map(item.get("labels"), f"{where}.labels")
            origin = base.text(item.get("source"), f"{where}.source", base.MAX_VALUE)
            title = base.text(item.get("title"), f"{where}.title", base.MAX_TITLE, required=True)
            if origin:
                labels.setdefault("source", origin)
            # The title names the alert when the labels do not (and so tells two apart).
            labels.setdefault("alertname", title[: base.MAX_VALUE])
            alerts.append(
                base.ParsedAlert(
                    status=base.status(item.get("status", "firing"), f"{where}.status"),
                    title=title,
                    labels=labels,
                    annotations=base.string_map(
                        item.get("annotations"), f"{where}.annotations", base.MAX_ANNOTATION
                    ),
                    metrics=base.number_map(item.get("metrics"), f"{where}.metrics"),
                    fingerprint=base.text(
                        item.get("fingerprint"), f"{where}.fingerprint", base.MAX_FINGERPRINT
                    ),
                    starts_at=base.timestamp(item.get("starts_at"), f"{where}.starts_at"),
                    ends_at=base.timestamp(item.get("ends_at"), f"{where}.ends_at"),
                    generator_url=base.text(item.get("url"), f"{where}.url", base.MAX_VALUE),
                )
            )
        return alerts
