"""Domain errors: raised by the services of every app, turned into messages by admin,
API and CLI."""


class DomainError(Exception):
    """A request the rules refuse; nothing was changed. `field` names the input at fault."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class StateConflict(DomainError):
    """The request is well-formed but clashes with the incident's current state."""


class TransitionNotAllowed(StateConflict):
    """The lifecycle does not allow this move from the incident's current status."""

    def __init__(self, *, reference: str, from_status: str, to_status: str, allowed: list[str]):
        allowed_text = ", ".join(allowed) if allowed else "none (this status is final)"
        super().__init__(
            f"{reference} cannot move from {from_status} to {to_status}; "
            f"allowed from {from_status}: {allowed_text}.",
            field="status",
        )
        self.from_status = from_status
        self.to_status = to_status
        self.allowed = allowed
