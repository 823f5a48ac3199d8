from django.apps import AppConfig


class DemographicsConfig(AppConfig):
    name = "demographics"
    verbose_name = "Demographics"

    def ready(self) -> None:
        from ato_gateway import api
        from portal.apps import CLIENT_TABS, CRON_JOBS, DASHBOARD_PANELS, SYNC_COMMANDS

        from . import addresses, bank, drift, profile, services, sync, views

        # The client's Details tab holds the five services the ATO answers about the client.
        CLIENT_TABS["details"] = "demographics:client_tab"
        # The watch's answers come in crowds: each of the gateway's batches is filled and compared set-wise.
        api.register(services.PURPOSE, services.on_snapshot, many=drift.snapshots_answered)
        api.register(bank.PURPOSE, bank.on_bank_answer)
        api.register(addresses.PURPOSE, addresses.on_address_answer)
        api.register(profile.PURPOSE, profile.on_profile_answer)
        # The drift watch: nightly for every practice, its alerts on the dashboard.
        DASHBOARD_PANELS.append(views.drift_panel)
        CRON_JOBS.append({"func": "demographics.jobs.drift_watch_nightly", "queue_name": "low", "cron": "0 3 * * *"})
        SYNC_COMMANDS["demographics"] = sync.drift_watch_sync
