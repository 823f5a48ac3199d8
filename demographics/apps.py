from django.apps import AppConfig


class DemographicsConfig(AppConfig):
    name = "demographics"
