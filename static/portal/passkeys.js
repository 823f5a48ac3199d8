// Your account: once django-otp-webauthn's script has saved a new passkey, load the page again so that the list of
// passkeys shows it (the script itself only says that it worked).
document.addEventListener("otp_webauthn.register_complete", () => {
  window.setTimeout(() => window.location.reload(), 600);
});
