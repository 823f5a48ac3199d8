from django.urls import path

from clients import views

app_name = "clients"

urlpatterns = [
    path("", views.client_list, name="list"),
    path("add/", views.client_add, name="add"),
    path("export.csv", views.export_csv, name="export"),
    path("<int:pk>/", views.client_detail, name="detail"),
    path("<int:pk>/edit/", views.client_edit, name="edit"),
    path("<int:pk>/tfn/", views.client_reveal_tfn, name="reveal_tfn"),
    path("<int:pk>/accounts/add/", views.account_add, name="account_add"),
    path("<int:pk>/accounts/<int:account_pk>/roles/", views.account_roles, name="account_roles"),
    path("<int:pk>/groups/", views.client_groups, name="client_groups"),
    path("groups/", views.group_list, name="groups"),
    path("staff/<int:pk>/groups/", views.staff_groups, name="staff_groups"),
    path("import/", views.import_upload, name="import_upload"),
    path("import/<int:pk>/", views.import_detail, name="import_detail"),
    path("import/<int:pk>/progress/", views.import_progress, name="import_progress"),
    path("import/<int:pk>/start/", views.import_start, name="import_start"),
]
