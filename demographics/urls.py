from django.urls import path

from demographics import address_views, bank_views, profile_views, views

app_name = "demographics"

urlpatterns = [
    path("clients/<int:pk>/", views.client_tab, name="client_tab"),
    path("clients/<int:pk>/section/", views.section, name="section"),
    path("clients/<int:pk>/ask/", views.ask, name="ask"),
    path("clients/<int:pk>/address/change/", address_views.change_start, name="address_start"),
    path("address-changes/<int:pk>/", address_views.change_detail, name="address_change"),
    path("address-changes/<int:pk>/submit/", address_views.change_submit, name="address_submit"),
    path("address-changes/bulk/", address_views.bulk_start, name="bulk_start"),
    path("address-changes/bulk/<int:pk>/", address_views.bulk_detail, name="address_bulk"),
    path("alerts/<int:pk>/read/", views.alert_read, name="alert_read"),
    path("clients/<int:pk>/details/change/", profile_views.change_start, {"kind": "details"}, name="details_start"),
    path("clients/<int:pk>/contact/change/", profile_views.change_start, {"kind": "contact"}, name="contact_start"),
    path("profile-changes/<int:pk>/", profile_views.change_detail, name="profile_change"),
    path("profile-changes/<int:pk>/submit/", profile_views.change_submit, name="profile_submit"),
    path("watch/", views.watch_start, name="watch_start"),
    path("watch/<int:pk>/", views.watch_detail, name="watch"),
    path("clients/<int:pk>/bank/propose/", bank_views.propose, name="bank_propose"),
    path("bank-changes/<int:pk>/", bank_views.change_detail, name="bank_change"),
    path("bank-changes/<int:pk>/question/", bank_views.change_question, name="bank_question"),
    path("bank-changes/<int:pk>/callback/", bank_views.callback, name="bank_callback"),
    path("bank-changes/<int:pk>/approve/", bank_views.approve, name="bank_approve"),
]
