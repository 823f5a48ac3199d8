from django.urls import path

from relationships import views

app_name = "relationships"

# The bulk link and the reconciliation add their patterns from their own modules, so each part owns its file.
urlpatterns = [
    path("", views.home, name="home"),
]

from relationships import urls_bulk, urls_reconcile  # noqa: E402 - the parts' patterns, after the core's

urlpatterns += urls_bulk.urlpatterns + urls_reconcile.urlpatterns
