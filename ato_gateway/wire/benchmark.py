"""How much building, signing and serialising one message costs, relative to one raw RSA-2048 signature.

``python -m ato_gateway.wire.benchmark`` prints the ratio. Calls of each are interleaved one by one and the fastest
call of each is compared: other work on a shared machine only ever adds time, so the minima compare the work itself
(the ratio of the medians is printed too).
"""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from . import api, keystore, registry, sts

PROPERTIES = {"ProductID": "BENCH", "BMS Vendor": "Bench", "BMS Name": "bench", "BMS Version": "1"}
PING = f'<PingRequest xmlns="{registry.PING_NAMESPACE}"><Text>benchmark</Text></PingRequest>'.encode()


@dataclass(frozen=True)
class Result:
    build_us: float  # build_signed_request, one small payload, with a SAML token: fastest call
    rsa_us: float  # one RSA-2048 PKCS#1 v1.5 / SHA-256 signature over a SignedInfo-sized input: fastest call
    ratio: float  # of the fastest calls
    median_ratio: float  # of the median calls (more sensitive to other load on the machine)


def measure(*, key: rsa.RSAPrivateKey, certificate: x509.Certificate, token: bytes, samples: int = 400) -> Result:
    """Time ``samples`` calls of each, alternating one build and one signature so both meet the same machine."""
    signed_info_sized = b"x" * 1400

    def build() -> None:
        api.build_signed_request(
            service_action=registry.PING,
            message_id=f"{uuid.uuid4()}@bench.invalid",
            conversation_id=str(uuid.uuid4()),
            from_abn="53004085616",
            payloads=[("PingRequest", PING)],
            key=key,
            certificate=certificate,
            saml_assertion=token,
            properties=PROPERTIES,
        )

    def sign() -> None:
        key.sign(signed_info_sized, padding.PKCS1v15(), hashes.SHA256())

    for _ in range(20):  # warm caches (schema, token digest, certificate encoding)
        build()
        sign()
    builds: list[int] = []
    signs: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(samples):
        started = clock()
        build()
        builds.append(clock() - started)
        started = clock()
        sign()
        signs.append(clock() - started)
    return Result(
        build_us=min(builds) / 1000,
        rsa_us=min(signs) / 1000,
        ratio=min(builds) / min(signs),
        median_ratio=statistics.median(builds) / statistics.median(signs),
    )


def main() -> None:
    ca_key = keystore.new_rsa_key()
    ca = keystore.make_ca(ca_key, "Benchmark CA")
    key = keystore.new_rsa_key()
    certificate = keystore.issue_certificate(
        ca_key=ca_key, ca_certificate=ca, public_key=key.public_key(), common_name="Bench", abn="53004085616"
    )
    now = datetime.now(UTC)
    token = sts.create_assertion(
        issuer="https://bench.invalid",
        subject_abn="53004085616",
        audience=registry.STS_APPLIES_TO_DEFAULT,
        attributes={registry.SAML_ATTRIBUTE_ABN: "53004085616"},
        key=ca_key,
        certificate=ca,
        not_before=now,
        not_on_or_after=now + timedelta(minutes=30),
    )
    result = measure(key=key, certificate=certificate, token=token)
    print(
        f"build_signed_request: {result.build_us:.0f} us; RSA-2048 sign: {result.rsa_us:.0f} us; "
        f"ratio {result.ratio:.2f} (of the medians: {result.median_ratio:.2f})"
    )


if __name__ == "__main__":
    main()
