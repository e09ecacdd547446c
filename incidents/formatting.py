"""Small display helpers shared by the admin, pages and generated text."""

from datetime import timedelta


def short_duration(length: timedelta | float | None) -> str:
    """Return '45m', '2h 05m' or '3d 4h' for a timedelta or a number of seconds."""
    if length is None:
        return "unknown"
    seconds = length.total_seconds() if isinstance(length, timedelta) else length
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h {minutes % 60:02d}m"
    return f"{minutes // (24 * 60)}d {minutes // 60 % 24}h"
