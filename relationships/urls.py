from django.urls import path

from relationships import views

app_name = "relationships"

# The bulk link and the reconciliation add their patterns from their own modules, so each part owns its file.
urlpatterns = [
    path("", views.home, name="home"),
    path("add/", views.add, name="add"),
    path("requests/<int:pk>/", views.request_detail, name="request"),
    path("requests/<int:pk>/validate/", views.validate, name="validate"),
    path("requests/<int:pk>/submit/", views.submit, name="submit"),
    path("requests/<int:pk>/remove/", views.remove_confirm, name="remove_confirm"),
    path("clients/<int:pk>/", views.client_tab, name="client_tab"),
    path("clients/<int:pk>/remove/", views.remove, name="remove"),
]

from relationships.bulk import urls as bulk_urls  # noqa: E402 - the parts' patterns, after the core's
from relationships.reconcile import urls as reconcile_urls  # noqa: E402

urlpatterns += bulk_urls.urlpatterns + reconcile_urls.urlpatterns
