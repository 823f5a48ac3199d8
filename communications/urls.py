from django.urls import URLPattern, path

from communications import preference_views, views

app_name = "communications"

urlpatterns: list[URLPattern] = [
    path("", views.inbox, name="inbox"),
    path("bulk/", views.letters_bulk, name="bulk"),
    path("letters/<int:pk>/", views.letter_detail, name="letter"),
    path("letters/<int:pk>/document.pdf", views.letter_pdf, name="letter_pdf"),
    path("letters/<int:pk>/refetch/", views.letter_refetch, name="letter_refetch"),
    path("letters/<int:pk>/told/", views.letter_told, name="letter_told"),
    path("clients/<int:pk>/", views.client_tab, name="client_tab"),
    path("preferences/", views.preferences, name="preferences"),
    path("preferences/ask/", views.preferences_ask, name="preferences_ask"),
    path("preferences/coverage.csv", views.preferences_csv, name="preferences_csv"),
    path("preferences/change/", preference_views.change_start, name="preference_default_start"),
    path("preferences/clients/<int:pk>/change/", preference_views.change_start, name="preference_start"),
    path("preferences/changes/<int:pk>/", preference_views.change_detail, name="preference_change"),
    path("preferences/changes/<int:pk>/submit/", preference_views.change_submit, name="preference_submit"),
    path("preferences/changes/<int:pk>/authority/", preference_views.change_authority, name="preference_authority"),
    path("preferences/bulk/", preference_views.bulk_start, name="preference_bulk_start"),
    path("preferences/bulk/<int:pk>/", preference_views.bulk_detail, name="preference_bulk"),
    path("preferences/bulk/<int:pk>/resume/", preference_views.bulk_resume, name="preference_bulk_resume"),
    path("syncs/", views.syncs, name="syncs"),
    path("syncs/start/", views.sync_start, name="sync_start"),
    path("syncs/<int:pk>/", views.sync_detail, name="sync"),
    path("syncs/<int:pk>/progress/", views.sync_progress, name="sync_progress"),
    path("syncs/<int:pk>/resume/", views.sync_resume, name="sync_resume"),
]
