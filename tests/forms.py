"""Read a rendered HTML form the way a browser would submit it."""

from html.parser import HTMLParser


class _FormReader(HTMLParser):
    def __init__(self, form_id):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = form_id is None
        self.data: dict[str, list[str]] = {}
        self._select = None
        self._select_default = None
        self._textarea = None
        self._multiple = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.data.setdefault(name, []).append(attrs.get("value", "on"))
            elif kind not in ("submit", "button", "file"):
                self.data.setdefault(name, []).append(attrs.get("value", ""))
        elif tag == "select" and name:
            self._select, self._select_default = name, None
            self._multiple = "multiple" in attrs
            self.data.setdefault(name, [])
        elif tag == "option" and self._select:
            value = attrs.get("value", "")
            if self._select_default is None:
                self._select_default = value
            if "selected" in attrs:
                self.data[self._select].append(value)
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = [""]

    def handle_endtag(self, tag):
        if tag == "select" and self._select:
            if not self.data[self._select] and not self._multiple:
                self.data[self._select] = [self._select_default or ""]
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form" and self.inside and self.form_id is not None:
            self.inside = False

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][0] += data.removeprefix("\n")


def form_data(html: str, form_id: str | None = None) -> dict:
    """Return the form's fields as a browser would send them (lists for multi-values)."""
    reader = _FormReader(form_id)
    reader.feed(html)
    # An unselected multiple select sends nothing at all.
    return {
        key: values if len(values) > 1 else values[0]
        for key, values in reader.data.items()
        if values
    }
