from django.urls import URLPattern, path

from relationships.reconcile import views

urlpatterns: list[URLPattern] = [
    path("reconcile/", views.reconcile, name="reconcile"),
    path("reconcile/start/", views.reconcile_start, name="reconcile_start"),
    path("reconcile/alerts/read/", views.reconcile_alerts_read, name="reconcile_alerts_read"),
    path("reconcile/alerts/<int:pk>/read/", views.reconcile_alert_read, name="reconcile_alert_read"),
    path("reconcile/<int:pk>/", views.reconcile_run, name="reconcile_run"),
    path("reconcile/<int:pk>/progress/", views.reconcile_progress, name="reconcile_progress"),
    path("reconcile/<int:pk>/resume/", views.reconcile_resume, name="reconcile_resume"),
    path("reconcile/<int:pk>/drift.csv", views.reconcile_report_csv, name="reconcile_report_csv"),
]
