from django.apps import AppConfig


class DemographicsConfig(AppConfig):
    name = "demographics"
    verbose_name = "Demographics"

    def ready(self) -> None:
        from ato_gateway import api
        from portal.apps import CLIENT_TABS

        from . import addresses, bank, services

        # The client's Details tab holds the five services the ATO answers about the client.
        CLIENT_TABS["details"] = "demographics:client_tab"
        api.register(services.PURPOSE, services.on_snapshot)
        api.register(bank.PURPOSE, bank.on_bank_answer)
        api.register(addresses.PURPOSE, addresses.on_address_answer)
