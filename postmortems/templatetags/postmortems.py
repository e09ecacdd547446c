from django import template

from incidents.formatting import short_duration
from postmortems.markdown import render_markdown

register = template.Library()

register.filter("markdown", render_markdown)
register.filter("duration", short_duration)
