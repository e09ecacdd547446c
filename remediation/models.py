"""Action items and the remediation report: built in the remediation issue (step 5)."""
