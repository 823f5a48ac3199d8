from django.urls import path

from demographics import views

app_name = "demographics"

urlpatterns = [
    path("clients/<int:pk>/", views.client_tab, name="client_tab"),
    path("clients/<int:pk>/<str:service>/", views.section, name="section"),
    path("clients/<int:pk>/<str:service>/ask/", views.ask, name="ask"),
]
