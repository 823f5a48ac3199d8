from django.urls import path

from demographics import bank_views, views

app_name = "demographics"

urlpatterns = [
    path("clients/<int:pk>/", views.client_tab, name="client_tab"),
    path("clients/<int:pk>/<str:service>/", views.section, name="section"),
    path("clients/<int:pk>/<str:service>/ask/", views.ask, name="ask"),
    path("clients/<int:pk>/bank/propose/", bank_views.propose, name="bank_propose"),
    path("bank-changes/<int:pk>/", bank_views.change_detail, name="bank_change"),
    path("bank-changes/<int:pk>/question/<str:which>/", bank_views.change_question, name="bank_question"),
    path("bank-changes/<int:pk>/callback/", bank_views.callback, name="bank_callback"),
    path("bank-changes/<int:pk>/approve/", bank_views.approve, name="bank_approve"),
]
