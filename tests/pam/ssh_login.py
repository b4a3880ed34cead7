#!/usr/bin/env python3
"""Log in with the OpenSSH client as a person at a terminal would.

Usage: ssh_login.py PROMPT -- SSH-COMMAND...

Runs SSH-COMMAND on a pseudo-terminal (pexpect), answers PROMPT with the
first line of stdin (so the code is never in an argument list), and, should
the prompt come again, gives up on it (Ctrl-C) instead of guessing. Prints
one JSON document: "prompts" (how often PROMPT was shown), "output"
(everything the client printed, the prompts and the server's PAM messages
included) and "status" (the client's exit status; 255 when the login
failed, 124 when it timed out).
"""

import json
import sys

import pexpect


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    prompt, command = sys.argv[1], sys.argv[3:]
    answer = sys.stdin.readline().rstrip("\n")
    child = pexpect.spawn(
        command[0], command[1:], timeout=60, encoding="utf-8", codec_errors="replace"
    )
    output, prompts, status = [], 0, None
    try:
        while True:
            seen = child.expect_exact([prompt, pexpect.EOF])
            output.append(child.before)
            if seen == 1:
                break
            output.append(prompt)
            prompts += 1
            if prompts == 1:
                child.sendline(answer)
            else:
                child.sendcontrol("c")
    except pexpect.TIMEOUT:
        output.append(child.before or "")
        status = 124
    child.close(force=True)
    if status is None:
        if child.exitstatus is not None:
            status = child.exitstatus
        else:
            status = 128 + (child.signalstatus or 0)
    print(json.dumps({"prompts": prompts, "output": "".join(output), "status": status}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
