"""The forensics admin, one module per concern; importing the package registers them and
adds the Evidence and Breach notification panels to the incident page."""

from . import breach, evidence  # noqa: F401  (register the admins and contributions)
