"""Trigram indexes for searching incidents by reference, title and summary (PostgreSQL).

The admin's `search_fields` and the API's `?search=` filter with `icontains`, which
Django writes on PostgreSQL as `UPPER("col"::text) LIKE UPPER('%term%')`: a B-tree cannot
serve a leading wildcard, so at 100,000 incidents every search was a full scan. A GIN
index with `gin_trgm_ops` on exactly that expression serves the LIKE as a Bitmap Index
Scan (three of them, OR-ed, for the three fields). SQLite keeps the plain scan.

The indexes are not in the models' Meta: Django would try to build a GIN index on SQLite
too. Reversing drops the indexes and leaves the extension, which other database objects
(or other projects in the same database) may use.
"""

from django.db import migrations

INDEXES = {
    # name: column; the expression must match Django's icontains SQL to the letter.
    "incident_reference_trgm": "reference",
    "incident_title_trgm": "title",
    "incident_summary_trgm": "summary",
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON incidents_incident "
            f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ("incidents", "0015_public_title"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes),
    ]
