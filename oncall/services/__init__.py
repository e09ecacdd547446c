"""The oncall app's writes, by concern: paging (pages and their steps), activation (staffing
an incident's roles from the rotations), escalation (policies, stuck incidents, paging by
hand), schedules (teams, rotations, overrides) and contacts (contact methods, paging rules).
Import from the submodule."""
