"""Prometheus Alertmanager's webhook (version 4): a group of alerts, each with labels,
annotations, times and Alertmanager's own fingerprint. Alertmanager carries no metric
values: an annotation holding a number (`value: "0.23"`) is taken as one."""

from . import base


@base.register
class Alertmanager(base.PayloadFormat):
    kind = "alertmanager"
    label = "Prometheus Alertmanager"

    def parse(self, data):
        data = base.obj(data, "The payload")
        version = data.get("version", "4")
        if version != "4":
            raise base.PayloadError(f'Unsupported webhook version {version!r}; expected "4".')
        alerts = []
        for index, item in enumerate(base.alert_list(data.get("alerts"), "alerts")):
            where = f"alerts[{index}]"
            item = base.obj(item, where)
            annotations = base.string_map(
                item.get("annotations"), f"{where}.annotations", base.MAX_ANNOTATION
            )
            alerts.append(
                base.ParsedAlert(
                    status=base.status(item.get("status"), f"{where}.status"),
                    labels=base.string_map(item.get("labels"), f"{where}.labels"),
                    annotations=annotations,
                    metrics=base.numeric_annotations(annotations),
                    fingerprint=base.text(
                        item.get("fingerprint"), f"{where}.fingerprint", base.MAX_FINGERPRINT
                    ),
                    starts_at=base.timestamp(item.get("startsAt"), f"{where}.startsAt"),
                    ends_at=base.timestamp(item.get("endsAt"), f"{where}.endsAt"),
                    generator_url=base.text(
                        item.get("generatorURL"), f"{where}.generatorURL", base.MAX_VALUE
                    ),
                )
            )
        return alerts
