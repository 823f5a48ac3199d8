from django.apps import AppConfig


class SuperannuationConfig(AppConfig):
    name = "superannuation"
    verbose_name = "Superannuation"

    def ready(self) -> None:
        from ato_gateway import api
        from portal.apps import CRON_JOBS

        from . import navigation, reporting

        # The pages' places in the portal (navigation, dashboard, a client's tab).
        navigation.register()
        # A batch's results are read as a stream: 1,000 results a message, a chunk at a time.
        api.register(reporting.PURPOSE, reporting.on_batch_answer, stream="results")
        CRON_JOBS.extend(
            [
                {"func": "superannuation.jobs.items_remind_daily", "queue_name": "low", "cron": "0 7 * * *"},
                {"func": "superannuation.jobs.reports_resume", "queue_name": "low", "cron": "*/10 * * * *"},
            ]
        )
