"""Injected EC2 errors for the simulated region: the faults waiting for their requests, and
EC2's XML error document that answers them instead of moto."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from xml.sax.saxutils import escape

STATUS_BY_CODE: dict[str, int] = {
    "RequestLimitExceeded": 503,
    "Unavailable": 503,
    "ServiceUnavailable": 503,
    "InternalError": 500,
    "UnauthorizedOperation": 403,
    "AuthFailure": 401,
}
"""HTTP status of an injected error when :meth:`Faults.inject` is not told (else 400)."""

_MESSAGES: dict[str, str] = {
    "RequestLimitExceeded": "Request limit exceeded.",
    "Unavailable": "The service is unavailable. Please try again shortly.",
    "ServiceUnavailable": "The service is unavailable. Please try again shortly.",
    "InternalError": "An internal error has occurred.",
    "UnauthorizedOperation": "You are not authorized to perform this operation.",
    "AuthFailure": "AWS was not able to validate the provided access credentials.",
}

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
"""The reason phrase of an injected error's status line."""


@dataclass
class Fault:
    action: str | None
    code: str
    status: int
    message: str
    remaining: int | None  # None: until cleared
    skip: int = 0  # matching requests to let through first


class Faults:
    """The injected faults, in the order they were injected; safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def inject(
        self,
        action: str | None,
        error_code: str,
        status: int | None = None,
        times: int | None = 1,
        message: str | None = None,
        skip: int = 0,
    ) -> None:
        """Answer the next ``times`` requests for ``action`` (None: any) with ``error_code``,
        after letting the first ``skip`` of them through (``times=None``: until cleared)."""
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for 'until cleared')")
        fault = Fault(
            action=action,
            code=error_code,
            status=status if status is not None else STATUS_BY_CODE.get(error_code, 400),
            message=message or _MESSAGES.get(error_code, f"Injected fault {error_code}."),
            remaining=times,
            skip=skip,
        )
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self._faults.clear()

    def take(self, action: str) -> Fault | None:
        """The fault that answers this request of ``action``, if any (counted as used)."""
        with self._lock:
            for fault in self._faults:
                if fault.action is None or fault.action == action:
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
        return None


def ec2_error_body(code: str, message: str) -> bytes:
    """EC2's error document, as botocore's EC2 parser reads it."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()
