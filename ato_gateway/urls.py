from django.urls import path

from ato_gateway import views

app_name = "ato_gateway"

urlpatterns = [
    path("", views.console, name="console"),
    path("messages/<int:pk>/", views.message_detail, name="message"),
    path("messages/<int:pk>/resend/", views.message_resend, name="resend"),
    path("ping/", views.ping, name="ping"),
    path("credentials/", views.credentials, name="credentials"),
    path("credentials/<int:pk>/select/", views.credential_select, name="credential_select"),
]
