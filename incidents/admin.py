from django.contrib import admin  # noqa
