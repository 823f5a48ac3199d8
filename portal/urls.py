from django.urls import include, path

from portal import passkeys, views

portal_patterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("mfa/enrol/", views.mfa_enrol, name="mfa_enrol"),
    path("mfa/verify/", views.mfa_verify, name="mfa_verify"),
    path("mfa/backup-codes/", views.mfa_new_backup_codes, name="mfa_backup_codes"),
    path("account/", views.account, name="account"),
    path("account/password/", views.password_change, name="password_change"),
    path("account/passkeys/confirm/", views.passkey_confirm_password, name="passkey_confirm_password"),
    path("account/passkeys/<int:pk>/remove/", views.passkey_remove, name="passkey_remove"),
    path("session/keep-alive/", views.keep_alive, name="keep_alive"),
    path("invite/<str:token>/", views.accept_invite, name="accept_invite"),
    path("staff/", views.staff_list, name="staff_list"),
    path("staff/add/", views.staff_add, name="staff_add"),
    path("staff/<int:pk>/", views.staff_detail, name="staff_detail"),
    path("staff/<int:pk>/deactivate/", views.staff_deactivate, name="staff_deactivate"),
    path("staff/<int:pk>/reactivate/", views.staff_reactivate, name="staff_reactivate"),
    path("staff/<int:pk>/reset-mfa/", views.staff_reset_mfa, name="staff_reset_mfa"),
    path("staff/<int:pk>/invite/resend/", views.staff_invite_resend, name="staff_invite_resend"),
    path("staff/<int:pk>/invite/withdraw/", views.staff_invite_withdraw, name="staff_invite_withdraw"),
    path("staff/<int:pk>/reset-password/", views.staff_reset_password, name="staff_reset_password"),
    path("access-review/", views.access_review, name="access_review"),
    path("audit/", views.audit_search, name="audit_search"),
]

urlpatterns = [
    path("", include((portal_patterns, "portal"))),
    path("passkeys/", include((passkeys.urlpatterns, "otp_webauthn"))),
    path("clients/", include("clients.urls")),
    path("gateway/", include("ato_gateway.urls")),
    path("relationships/", include("relationships.urls")),
    path("communications/", include("communications.urls")),
    path("demographics/", include("demographics.urls")),
    path("super/", include("superannuation.urls")),
    path("healthz", views.healthz, name="healthz"),
]
