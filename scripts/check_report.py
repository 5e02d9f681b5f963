"""Open an HTML report in headless Chromium, save a screenshot, fail on any console error.

    python scripts/check_report.py runs/report.html [--screenshot runs/report.png]
    python scripts/check_report.py --self-test

Talks the Chrome DevTools Protocol over ``--remote-debugging-pipe`` (JSON messages
separated by NUL bytes on file descriptors 3 and 4), so it needs only the standard
library and a Chromium binary (Debian: ``apt-get install chromium``). Console errors
(``console.error``, uncaught exceptions) and browser log errors (a resource that
failed to load, say) are printed and make the exit status 1. ``--self-test``
checks the checker: a clean page must pass and a page with deliberate errors fail.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
]


class Browser:
    """A headless Chromium driven over the DevTools pipe."""

    def __init__(self, binary: str) -> None:
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # Lift the child's ends above 9 so that moving them onto 3 and 4 cannot clobber one.
        for_child = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w)]
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        to_chrome_r, from_chrome_w = for_child
        self.profile = tempfile.mkdtemp(prefix="dnnlab-chromium-")
        # bash puts the pipe ends on fds 3 and 4, where Chromium expects them (dash cannot
        # name fds above 9); no preexec_fn, which is unsafe to fork from a multi-threaded
        # process such as pytest with JAX.
        remap = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}'
        self.proc = subprocess.Popen(
            [
                shutil.which("bash") or "bash",
                "-c",
                remap,
                binary,
                *FLAGS,
                f"--user-data-dir={self.profile}",
            ]
            + ["about:blank"],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fd in (to_chrome_r, from_chrome_w):
            os.close(fd)
        self.out, self.inp = to_chrome_w, from_chrome_r
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.inp, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 30,
    ) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read_message(deadline))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def errors_of(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and browser log errors among DevTools events."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            found.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            found.append(
                f"uncaught: {details.get('exception', {}).get('description', details.get('text'))}"
            )
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            found.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
    return found


def render(page: Path, screenshot: Path | None, binary: str, width: int = 1280) -> list[str]:
    """Load ``page``; save a full-page screenshot; return the errors seen."""
    browser = Browser(binary)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page"):
            browser.send(f"{domain}.enable", session=session)
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        time.sleep(0.5)  # let late console messages arrive
        browser.send("Runtime.evaluate", {"expression": "1"}, session=session)
        if screenshot is not None:
            shot = browser.send(
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": True},
                session=session,
            )
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        return errors_of(browser.events)
    finally:
        browser.close()


def self_test(binary: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        good, bad = Path(tmp, "good.html"), Path(tmp, "bad.html")
        good.write_text(
            "<!DOCTYPE html><html><body><p>fine</p>"
            "<script>console.log('a log is not an error')</script></body></html>"
        )
        bad.write_text(
            "<!DOCTYPE html><html><body><script>console.error('deliberate');"
            "undefinedFunction();</script><img src='missing.png'></body></html>"
        )
        good_errors = render(good, Path(tmp, "good.png"), binary)
        bad_errors = render(bad, None, binary)
    ok = not good_errors and len(bad_errors) >= 3
    print(f"clean page: {good_errors or 'no errors'}")
    print(f"broken page: {bad_errors}")
    print("self-test " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", nargs="?", type=Path, help="the HTML file to open")
    parser.add_argument("--screenshot", type=Path, help="PNG to write (default: next to page)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        return self_test(args.chromium)
    if args.page is None or not args.page.is_file():
        parser.error("give the HTML report to open, e.g. runs/report.html")
    screenshot = args.screenshot or args.page.with_suffix(".png")
    errors = render(args.page, screenshot, args.chromium)
    for error in errors:
        print(f"error: {error}")
    print(f"{args.page}: {len(errors)} console error(s); screenshot {screenshot}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
