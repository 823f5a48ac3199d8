from django.apps import AppConfig


class SuperannuationConfig(AppConfig):
    name = "superannuation"
