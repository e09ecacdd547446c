"""Grafana alerting's webhook contact point: Alertmanager's shape, plus each alert's
evaluated query `values` ({"B": 0.23}), which are its metric values."""

from . import base


@base.register
class Grafana(base.PayloadFormat):
    kind = "grafana"
    label = "Grafana alerting"

    def parse(self, data):
        data = base.obj(data, "The payload")
        alerts = []
        for index, item in enumerate(base.alert_list(data.get("alerts"), "alerts")):
            where = f"alerts[{index}]"
            item = base.obj(item, where)
            annotations = base.string_map(
                item.get("annotations"), f"{where}.annotations", base.MAX_ANNOTATION
            )
            # Grafana sends null for a query that returned no value.
            values = item.get("values")
            if isinstance(values, dict):
                values = {key: value for key, value in values.items() if value is not None}
            alerts.append(
                base.ParsedAlert(
                    status=base.status(item.get("status"), f"{where}.status"),
                    labels=base.string_map(item.get("labels"), f"{where}.labels"),
                    annotations=annotations,
                    metrics=base.number_map(values, f"{where}.values"),
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
