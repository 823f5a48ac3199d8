from django.apps import AppConfig


class CommunicationsConfig(AppConfig):
    name = "communications"
    verbose_name = "Communications"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from ato_gateway import api
        from clients.models import Client
        from portal.apps import CLIENT_TABS, CRON_JOBS, DASHBOARD_PANELS, NAV_ITEMS
        from portal.models import AuditEvent, User

        from . import preferences, services, views

        NAV_ITEMS.append(("Inbox", "communications:inbox", "view_clients"))
        CLIENT_TABS["communications"] = "communications:client_tab"
        api.register(services.LIST_PURPOSE, services.on_list_page, stream="communications")
        api.register(services.DOCUMENT_PURPOSE, services.on_document)
        api.register(services.PREFERENCE_PURPOSE, services.on_preference)
        api.register(preferences.PURPOSE, preferences.on_preference_change)
        DASHBOARD_PANELS.append(views.dashboard_panel)
        post_save.connect(services.clients_saved, sender=Client, dispatch_uid="communications.rematch")
        post_save.connect(services.staff_saved, sender=User, dispatch_uid="communications.leaver")
        post_save.connect(services.audit_recorded, sender=AuditEvent, dispatch_uid="communications.after_import")
        CRON_JOBS.extend(
            [
                {"func": "communications.jobs.sync_nightly", "queue_name": "low", "cron": "0 2 * * *"},
                {"func": "communications.jobs.letters_rematch", "queue_name": "low", "cron": "*/10 * * * *"},
                {"func": "communications.jobs.documents_ask_all", "queue_name": "low", "cron": "5-59/10 * * * *"},
                {"func": "communications.jobs.digest_daily", "queue_name": "low", "cron": "0 7 * * *"},
            ]
        )
