"""``st2common.services.datastore``: the datastore calls of actions and sensors, over HTTP.

The child process holds no database or Vault credentials: it calls Patchbay's keys API
(``<ST2_API_URL>/keys``) with the run token its worker handed it on stdin, sent as
``X-Auth-Token``. The token reaches its pack's system keys (names starting ``<pack>:`` or
``<pack>.``) and its execution user's own keys, while the run goes on. Standard library
only: this folder is all the child imports besides the pack's own code.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

__all__ = ["DatastoreError", "DatastoreService", "KeyValuePair", "from_request"]

SYSTEM_SCOPE, USER_SCOPE = "system", "user"
# StackStorm's full scope names are accepted too.
SCOPES = {SYSTEM_SCOPE: SYSTEM_SCOPE, USER_SCOPE: USER_SCOPE, "st2kv.system": SYSTEM_SCOPE, "st2kv.user": USER_SCOPE}
TOKEN_HEADER = "X-Auth-Token"
TIMEOUT = 30.0  # seconds per API call
PAGE_SIZE = 100


class DatastoreError(RuntimeError):
    """The API is unreachable, or it refused the call (the message says why)."""


class KeyValuePair:
    """One key as the API shows it: ``.name``, ``.value`` (None for a secret not decrypted),
    ``.scope``, ``.secret``, ``.expire_timestamp``; ``kvp["value"]`` works too."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.name = data.get("name")
        self.value = data.get("value")
        self.scope = data.get("scope")
        self.user = data.get("user")
        self.secret = bool(data.get("secret"))
        self.encrypted = bool(data.get("encrypted"))
        self.expire_timestamp = data.get("expires_at")

    def __getitem__(self, item: str) -> Any:
        return getattr(self, item)

    def __repr__(self) -> str:
        return f"<KeyValuePair name={self.name!r} scope={self.scope!r} secret={self.secret}>"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would carry the token to wherever it points.
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        return None


# No proxy from the action's environment either: the token goes to ST2_API_URL only.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


class DatastoreService:
    """StackStorm's ``get_value``/``set_value``/``delete_value``/``list_values`` over the keys
    API; ``local=True`` puts ``prefix`` (the pack's, or the pack and class's) before a name."""

    def __init__(self, api_url: str, token: str, prefix: str) -> None:
        self._url = api_url.rstrip("/")
        self._token = token
        self._prefix = prefix

    def __repr__(self) -> str:  # never the token
        return f"<DatastoreService {self._url} prefix={self._prefix!r}>"

    def full_name(self, name: str, local: bool) -> str:
        return f"{self._prefix}{name}" if local else name

    def list_values(self, local: bool = True, prefix: str | None = None) -> list[KeyValuePair]:
        start = self.full_name(prefix or "", local)
        found: list[KeyValuePair] = []
        page = 1
        while True:
            query = {"scope": SYSTEM_SCOPE, "page": page, "page_size": PAGE_SIZE, **({"prefix": start} if start else {})}
            status, body = self._call("GET", "", query)
            if status != 200 or not isinstance(body, list):
                raise _refused("list keys", status, body)
            found += [KeyValuePair(item) for item in body]
            if len(body) < PAGE_SIZE:
                return found
            page += 1

    def get_value(self, name: str, local: bool = True, scope: str = SYSTEM_SCOPE, decrypt: bool = False) -> Any:
        """The value; None when the key does not exist (or has expired)."""
        full = self.full_name(name, local)
        status, body = self._call("GET", f"/{quote(full, safe='')}",
                                  {"scope": _scope(scope), "decrypt": "true" if decrypt else "false"})
        if status == 404:
            return None
        if status != 200 or not isinstance(body, dict):
            raise _refused(f"read key {full!r}", status, body)
        return body.get("value")

    def set_value(self, name: str, value: Any, ttl: int | None = None, local: bool = True,
                  scope: str = SYSTEM_SCOPE, encrypt: bool = False) -> bool:
        """Create or replace the key; the value is stored as ``str(value)``, as in StackStorm."""
        full = self.full_name(name, local)
        body: dict[str, Any] = {"value": str(value), "secret": bool(encrypt)}
        if ttl:
            body["ttl"] = int(ttl)
        status, answer = self._call("PUT", f"/{quote(full, safe='')}", {"scope": _scope(scope)}, body)
        if status not in (200, 201):
            raise _refused(f"write key {full!r}", status, answer)
        return True

    def delete_value(self, name: str, local: bool = True, scope: str = SYSTEM_SCOPE) -> bool:
        """True when the key was deleted, False when there was none."""
        full = self.full_name(name, local)
        status, answer = self._call("DELETE", f"/{quote(full, safe='')}", {"scope": _scope(scope)})
        if status == 404:
            return False
        if status != 204:
            raise _refused(f"delete key {full!r}", status, answer)
        return True

    def _call(self, method: str, path: str, query: dict[str, Any], body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {TOKEN_HEADER: self._token, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(f"{self._url}/keys{path}?{urlencode(query)}", data=data,
                                         method=method, headers=headers)
        try:
            with _OPENER.open(request, timeout=TIMEOUT) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, _json(exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DatastoreError(f"The Patchbay API at {self._url} is not reachable: {reason}") from None


def _refused(what: str, status: int, body: Any) -> DatastoreError:
    message = body.get("message") if isinstance(body, dict) else None
    return DatastoreError(f"Could not {what}: the API answered {status}" + (f" ({message})" if message else ""))


def _scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValueError(f"Scope {scope} is unsupported.")
    return SCOPES[scope]


def _json(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None


def from_request(api: Any, prefix: str) -> DatastoreService | None:
    """The service for the ``api`` part of a wrapper's request (``{url, token}``), if it has one."""
    if isinstance(api, dict) and api.get("url") and api.get("token"):
        return DatastoreService(api["url"], api["token"], prefix)
    return None
