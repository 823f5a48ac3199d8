from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Print the current authenticator code of a demo user (development only, DJANGO_DEBUG=1)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--practice", default="", help="practice code, needed when several practices use the name")

    def handle(self, *args: Any, username: str, practice: str, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("totp_code is a development aid and runs only with DJANGO_DEBUG=1.")
        devices = TOTPDevice.objects.filter(user__username=username, confirmed=True)
        if practice:
            devices = devices.filter(user__practice__code=practice)
        if devices.count() > 1:
            raise CommandError(f"Several practices have a {username}: name one with --practice CODE.")
        device = devices.first()
        if device is None:
            raise CommandError(f"{username} has no confirmed authenticator.")
        code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift)
        self.stdout.write(f"{code:0{device.digits}d}")
