"""System checks: the evidence locker is not somewhere a web server serves."""

from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, register


def _inside(path: Path, folder) -> bool:
    if not folder:
        return False
    folder = Path(folder).resolve()
    return path == folder or folder in path.parents


@register(Tags.security)
def check_evidence_root(app_configs, **kwargs):
    """Refuse an EVIDENCE_ROOT inside STATIC_ROOT, MEDIA_ROOT or a static files folder."""
    root = Path(settings.EVIDENCE_ROOT).resolve()
    served = {
        "STATIC_ROOT": settings.STATIC_ROOT,
        "MEDIA_ROOT": settings.MEDIA_ROOT,
        **{
            f"STATICFILES_DIRS[{index}]": folder if isinstance(folder, str | Path) else folder[1]
            for index, folder in enumerate(getattr(settings, "STATICFILES_DIRS", ()))
        },
    }
    return [
        Error(
            f"EVIDENCE_ROOT ({root}) is inside {name} ({folder}): the evidence would be "
            "served to anyone who guesses a file name.",
            hint="Give EVIDENCE_ROOT a folder of its own, outside what the web server serves.",
            id="forensics.E001",
        )
        for name, folder in served.items()
        if _inside(root, folder)
    ]
