from django.urls import URLPattern, path

from relationships.bulk import views as views_bulk

urlpatterns: list[URLPattern] = [
    path("bulk/", views_bulk.bulk_list, name="bulk_list"),
    path("bulk/upload/", views_bulk.bulk_upload, name="bulk_upload"),
    path("bulk/<int:pk>/", views_bulk.bulk_detail, name="bulk_detail"),
    path("bulk/<int:pk>/progress/", views_bulk.bulk_progress, name="bulk_progress"),
    path("bulk/<int:pk>/link/", views_bulk.bulk_submit, name="bulk_submit"),
    path("bulk/<int:pk>/check-again/", views_bulk.bulk_check_again, name="bulk_check_again"),
    path("bulk/<int:pk>/outcome.csv", views_bulk.bulk_report, name="bulk_report"),
]
