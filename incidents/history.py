"""Bulk writes with history that still announce every history row they write.

simple-history's bulk helpers (`bulk_create_with_history`, `bulk_update_with_history`,
`bulk_history_create`) write history rows with one `bulk_create` and send no
`post_create_historical_record`, which `save()` sends for each row. Whatever listens to
that signal to see every write (the audit chain) would miss the bulk paths; so every
bulk history write of ours goes through these wrappers, which send it for each row, as a
save() would have, after the rows exist. Nothing here knows who listens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import router, transaction
from simple_history import utils
from simple_history.signals import post_create_historical_record


def announce(model, instances: Sequence, history_rows: Iterable) -> None:
    """Send `post_create_historical_record` for history rows of `model` written in bulk,
    each beside the instance it records (same order), as simple-history's save() does."""
    history_model = utils.get_history_model_for_model(model)
    using = router.db_for_write(history_model)
    by_pk = {instance.pk: instance for instance in instances}
    for row in history_rows:
        instance = by_pk.get(getattr(row, model._meta.pk.attname))
        post_create_historical_record.send(
            sender=history_model,
            instance=instance,
            history_instance=row,
            history_date=row.history_date,
            history_user=row.history_user,
            history_change_reason=row.history_change_reason,
            using=using,
        )


def bulk_history_create(model, instances: Sequence, **kwargs) -> list:
    """simple-history's `bulk_history_create` for saved `instances` of `model` (its
    keyword arguments: update, default_user, ...), each history row announced."""
    rows = utils.get_history_manager_for_model(model).bulk_history_create(instances, **kwargs)
    if not rows:  # SIMPLE_HISTORY_ENABLED = False
        return []
    # PostgreSQL and SQLite >= 3.35 return the new pks (Django uses RETURNING on both).
    assert rows[0].pk is not None, "the database did not return the history rows' pks"
    announce(model, instances, rows)
    return rows


def bulk_create_with_history(objs: Sequence, model, **kwargs) -> list:
    """Create `objs` and their "+" history rows, two inserts however many, each history
    row announced; `kwargs` as for bulk_history_create."""
    with transaction.atomic(savepoint=False):
        created = model._default_manager.bulk_create(objs)
        bulk_history_create(model, created, **kwargs)
    return created


def bulk_update_with_history(objs: Sequence, model, fields, **kwargs) -> None:
    """Update `fields` of `objs` and write their "~" history rows, each announced."""
    with transaction.atomic(savepoint=False):
        model._default_manager.bulk_update(objs, fields)
        bulk_history_create(model, objs, update=True, **kwargs)
