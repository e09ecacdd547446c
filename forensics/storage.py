"""The evidence locker's storage: files under EVIDENCE_ROOT that no URL reaches."""

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.utils.deconstruct import deconstructible
from django.utils.functional import cached_property


@deconstructible
class EvidenceStorage(FileSystemStorage):
    """A FileSystemStorage at settings.EVIDENCE_ROOT, readable by this process alone.

    `base_url=None` is not enough to keep files off the web: FileSystemStorage then falls
    back to MEDIA_URL. Here `url()` refuses outright; evidence leaves only through the
    permission-checked download, which writes its custody record."""

    def __init__(self):
        super().__init__(file_permissions_mode=0o600, directory_permissions_mode=0o700)

    @cached_property
    def base_location(self):
        return settings.EVIDENCE_ROOT

    def _clear_cached_properties(self, setting, **kwargs):
        super()._clear_cached_properties(setting, **kwargs)
        if setting == "EVIDENCE_ROOT":  # tests give each test a folder of its own
            self.__dict__.pop("base_location", None)
            self.__dict__.pop("location", None)

    def url(self, name):
        raise ValueError("Evidence is never served by URL: use its download link.")


_storage = EvidenceStorage()


def evidence_storage() -> EvidenceStorage:
    """Return the locker (a callable, so migrations name it rather than its folder)."""
    return _storage
