from django.urls import URLPattern, path

from superannuation import item_views, report_views, views

app_name = "superannuation"

urlpatterns: list[URLPattern] = [
    path("", views.funds, name="funds"),
    path("add/", views.fund_add, name="fund_add"),
    path("members-template.csv", views.import_template, name="import_template"),
    path("clients/<int:pk>/", views.client_tab, name="client_tab"),
    path("<int:pk>/", views.fund_detail, name="fund"),
    path("<int:pk>/edit/", views.fund_edit, name="fund_edit"),
    path("<int:pk>/members/add/", views.member_add, name="member_add"),
    path("<int:pk>/import/", views.import_upload, name="import_upload"),
    path("<int:pk>/members.csv", views.members_export, name="export"),
    path("<int:pk>/report.csv", report_views.fund_report_csv, name="report_csv"),
    path("<int:pk>/foundation/", report_views.foundation_start, name="foundation"),
    path("<int:pk>/realtime/", report_views.realtime_start, name="realtime"),
    path("imports/<int:pk>/", views.import_detail, name="import"),
    path("imports/<int:pk>/progress/", views.import_progress, name="import_progress"),
    path("members/<int:pk>/", views.member_detail, name="member"),
    path("members/<int:pk>/edit/", views.member_edit, name="member_edit"),
    path("members/<int:pk>/status/", views.member_status, name="member_status"),
    path("members/<int:pk>/tfn/", views.member_reveal_tfn, name="reveal_tfn"),
    path("reports/<int:pk>/", report_views.report_detail, name="report"),
    path("reports/<int:pk>/progress/", report_views.report_progress, name="report_progress"),
    path("batches/<int:pk>/", report_views.batch_detail, name="batch"),
    path("batches/<int:pk>/resubmit/", report_views.batch_resubmit, name="batch_resubmit"),
    path("worklist/", item_views.worklist, name="worklist"),
    path("items/<int:pk>/", item_views.item_detail, name="item"),
    path("items/<int:pk>/apply/", item_views.item_apply, name="item_apply"),
    path("items/<int:pk>/step/", item_views.item_step, name="item_step"),
    path("steps/<int:pk>/evidence/", item_views.step_evidence, name="step_evidence"),
    path("items/<int:pk>/extension/", item_views.item_extension, name="item_extension"),
    path("items/<int:pk>/remediation/", item_views.item_remediation, name="item_remediation"),
    path("items/<int:pk>/resolve/", item_views.item_resolve, name="item_resolve"),
]
