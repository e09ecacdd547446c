"""The oncall admin, by concern: schedules (teams, rotations, overrides, the roster),
paging (contact methods, paging rules, pages) and policies (escalation policies,
activation and stuck rules, and what the incident page gains)."""

from . import paging, policies, schedules  # noqa: F401  (each registers its admins)
