"""`make audit`: pip-audit over the installed environment (our own editable package
skipped). Fails on a known vulnerability that has a fixed release; reports those without
one. Asks PyPI's vulnerability data first, then OSV. When neither service answers, it
says so plainly and passes: an unreachable service is not a finding, and CI may run on a
closed network. AUDIT_REQUIRED=true makes that a failure too.
"""

import json
import os
import subprocess
import sys

SERVICES = {"pypi": "PyPI's JSON API", "osv": "OSV (api.osv.dev)"}
# What an unreachable service looks like: requests' exceptions in a traceback, or PyPI's
# JSON API (a mirror that serves only the simple index) answering 404 for every package.
NETWORK_ERRORS = ("requests.exceptions.", "ConnectionError", "Timeout", "ServiceError")


def pip_audit(service: str) -> subprocess.CompletedProcess:
    command = [
        *(sys.executable, "-m", "pip_audit"),
        *("--local", "--skip-editable", "--progress-spinner", "off", "--desc", "off"),
        *("--format", "json", "--vulnerability-service", service, "--timeout", "20"),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def verdict(returncode: int, stdout: str, stderr: str) -> tuple[str, object]:
    """Read one pip-audit run: ("unreachable", why), ("error", why) or ("audited", report)."""
    try:
        report = json.loads(stdout)
    except ValueError:
        last = (stderr.strip().splitlines() or [f"exit status {returncode}, no output"])[-1]
        if any(marker in stderr for marker in NETWORK_ERRORS):
            return "unreachable", last
        return "error", last
    dependencies = report.get("dependencies", [])
    audited = [dep for dep in dependencies if "skip_reason" not in dep]
    if dependencies and not audited:
        reason = dependencies[0]["skip_reason"]
        return "unreachable", f"none of {len(dependencies)} packages audited ({reason}, ...)"
    return "audited", report


def summarise(report: dict) -> tuple[list[str], list[str], list[str]]:
    """Return (fixable, unfixable, skipped) findings as printable lines."""
    fixable, unfixable, skipped = [], [], []
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            skipped.append(f"{dep['name']}: {dep['skip_reason']}")
        for vuln in dep.get("vulns", []):
            line = f"{dep['name']} {dep['version']}: {vuln['id']}"
            if vuln.get("fix_versions"):
                fixable.append(f"{line} (fixed in {', '.join(vuln['fix_versions'])})")
            else:
                unfixable.append(f"{line} (no fixed release yet)")
    return fixable, unfixable, skipped


def main() -> int:
    reasons = []
    for service, name in SERVICES.items():
        done = pip_audit(service)
        state, detail = verdict(done.returncode, done.stdout, done.stderr)
        if state == "error":
            print(f"make audit: pip-audit failed against {name}: {detail}", file=sys.stderr)
            print(done.stderr, file=sys.stderr)
            return 2
        if state == "unreachable":
            reasons.append(f"{name}: {detail}")
            continue
        fixable, unfixable, skipped = summarise(detail)
        audited = len(detail["dependencies"]) - len(skipped)
        print(f"make audit: {audited} installed packages checked against {name}.")
        for line in skipped:
            print(f"  not audited: {line}")
        for line in unfixable:
            print(f"  known, no fix to take: {line}")
        for line in fixable:
            print(f"  VULNERABLE, upgrade: {line}")
        return 1 if fixable else 0

    print("make audit: NOT AUDITED, no vulnerability service could be reached.")
    for reason in reasons:
        print(f"  {reason}")
    if os.environ.get("AUDIT_REQUIRED", "").lower() in {"1", "true", "yes", "on"}:
        return 1
    print("  (passing: set AUDIT_REQUIRED=true to fail instead)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
