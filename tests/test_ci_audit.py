"""`make audit` (.ci/audit.py) fails on a fixable vulnerability, and never passes an
unreachable vulnerability service off as a clean audit."""

import importlib.util
import json

from django.conf import settings

spec = importlib.util.spec_from_file_location("ci_audit", settings.BASE_DIR / ".ci" / "audit.py")
audit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit)


def report(*dependencies):
    return json.dumps({"dependencies": list(dependencies), "fixes": []})


def test_a_vulnerability_with_a_fix_fails_and_one_without_is_reported():
    state, found = audit.verdict(
        1,
        report(
            {
                "name": "django",
                "version": "5.2.0",
                "vulns": [
                    {"id": "PYSEC-1", "fix_versions": ["5.2.1"]},
                    {"id": "GHSA-2", "fix_versions": []},
                ],
            },
            {"name": "nh3", "version": "0.3.0", "vulns": []},
        ),
        "",
    )
    assert state == "audited"
    fixable, unfixable, skipped = audit.summarise(found)
    assert fixable == ["django 5.2.0: PYSEC-1 (fixed in 5.2.1)"]
    assert unfixable == ["django 5.2.0: GHSA-2 (no fixed release yet)"]
    assert skipped == []


def test_every_package_not_found_means_the_service_is_unreachable():
    # What PyPI's JSON API behind a simple-index-only mirror looks like: exit 0, all skipped.
    skipped = [
        {
            "name": name,
            "skip_reason": f"Dependency not found on PyPI and could not be audited: {name}",
        }
        for name in ("django", "nh3")
    ]
    state, why = audit.verdict(0, report(*skipped), "")
    assert state == "unreachable"
    assert "none of 2 packages audited" in why


def test_a_network_error_means_unreachable_and_anything_else_is_an_error():
    dns = "Traceback ...\nrequests.exceptions.ConnectionError: Failed to resolve 'api.osv.dev'"
    assert audit.verdict(1, "", dns) == ("unreachable", dns.splitlines()[-1])
    assert audit.verdict(2, "", "usage: pip-audit: bad flag")[0] == "error"
