"""What the e2e scripts' Python parts check about NBD requests.

    sys.path.insert(0, HERE); from nbd_expect import Checks
    c = Checks(); c.error("read of X", lambda: h.pread(4096, 0), errno.EIO)
    c.fail("what went wrong"); sys.exit(c.exit_code())
"""
import errno

import nbd


class Checks:
    def __init__(self):
        self.bad = 0

    def fail(self, message):
        print(f"FAIL: {message}")
        self.bad += 1

    def error(self, what, request, want):
        """`request()` must fail with errno `want`."""
        try:
            request()
        except nbd.Error as e:
            # libnbd's Error.errno is the errno's name ("EIO"), or None.
            if e.errno in (want, errno.errorcode[want]):
                print(f"ok {what}: {e.errno}")
            else:
                self.fail(f"{what}: errno {e.errno} ({e.string}), want {errno.errorcode[want]}")
            return
        self.fail(f"{what} succeeded")

    def exit_code(self):
        return 1 if self.bad else 0
