"""IMDSv2 client: learn who and where this instance is, once, at start (a takeover makes no IMDS call)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass

TOKEN_TTL = 21600


class ImdsError(RuntimeError):
    """The instance metadata service could not tell us something we need."""


@dataclass(frozen=True)
class EniInfo:
    mac: str
    eni_id: str
    device_index: int
    private_ips: tuple[str, ...]
    subnet_id: str
    vpc_id: str


@dataclass(frozen=True)
class Identity:
    instance_id: str
    region: str
    availability_zone: str
    enis: tuple[EniInfo, ...]

    def eni(self, mac: str | None = None, device_index: int | None = None) -> EniInfo | None:
        for e in self.enis:
            if (mac is not None and e.mac == mac) or (
                device_index is not None and e.device_index == device_index
            ):
                return e
        return None


class ImdsClient:
    """Token-authenticated GETs with short timeouts and a few retries (IMDS answers in milliseconds)."""

    def __init__(self, base_url: str, timeout: float = 1.0, attempts: int = 3) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.attempts = attempts
        self._token: str | None = None
        self._token_expiry = 0.0

    def _request(self, method: str, path: str, headers: dict[str, str]) -> str:
        url = f"{self.base}{path}"
        last = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(0.1 * 2**attempt)
            req = urllib.request.Request(url, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return str(resp.read().decode())
            except urllib.error.HTTPError as err:
                if err.code in (400, 401, 403, 404, 405):
                    raise ImdsError(f"IMDS {method} {path}: HTTP {err.code} {_hint(err.code)}") from err
                last = f"HTTP {err.code}"
            except (urllib.error.URLError, TimeoutError, OSError) as err:
                reason = getattr(err, "reason", err)
                last = f"{type(reason).__name__}: {reason}"
        raise ImdsError(f"IMDS {method} {url} failed after {self.attempts} attempts: {last}")

    def token(self) -> str:
        if self._token is None or time.monotonic() > self._token_expiry:
            self._token = self._request(
                "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL)}
            )
            self._token_expiry = time.monotonic() + TOKEN_TTL - 60
        return self._token

    def get(self, path: str) -> str:
        return self._request("GET", path, {"X-aws-ec2-metadata-token": self.token()})

    def identity(self) -> Identity:
        md = "/latest/meta-data"
        enis = []
        for entry in self.get(f"{md}/network/interfaces/macs/").split():
            mac = entry.rstrip("/")
            base = f"{md}/network/interfaces/macs/{mac}"
            enis.append(
                EniInfo(
                    mac=mac,
                    eni_id=self.get(f"{base}/interface-id").strip(),
                    device_index=int(self.get(f"{base}/device-number").strip()),
                    private_ips=tuple(self.get(f"{base}/local-ipv4s").split()),
                    subnet_id=self.get(f"{base}/subnet-id").strip(),
                    vpc_id=self.get(f"{base}/vpc-id").strip(),
                )
            )
        return Identity(
            instance_id=self.get(f"{md}/instance-id").strip(),
            region=self.get(f"{md}/placement/region").strip(),
            availability_zone=self.get(f"{md}/placement/availability-zone").strip(),
            enis=tuple(sorted(enis, key=lambda e: e.device_index)),
        )


def _hint(code: int) -> str:
    return {
        400: "(token request refused: TTL header?)",
        401: "(token missing, expired or refused)",
        403: "(IMDS disabled, or the request went through a proxy)",
        404: "(no such metadata path)",
    }.get(code, "")
