"""`python -m hack.progress`: progress for the bash scripts of hack/.

    step [--of N] [--status CODE] [--stderr] TITLE
                                     end the open step of $KEVENTS_PROGRESS (if any; failed
                                     when CODE is not 0), start the next numbered one:
                                     `[3/7] TITLE`
    end [--status CODE] [--stderr]   end the open step (failed when CODE is not 0) and print
                                     each step's time
    go --title TITLE [-C DIR] -- go build|install ...
                                     a Go build with its moving line (packages compiled out of
                                     the total); go's messages after it; exits with go's code
    mvn --title TITLE -- mvn -B ...  a Maven fetch with its moving line (files, bytes)

Rendering goes to stdout (stderr with --stderr; `go` and `mvn` always use stderr, since the
build scripts print their result on stdout): rich on a terminal, timestamped lines otherwise.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

from hack.progress import gobuild, journal, maven, render


def _journal() -> journal.Journal:
    path = os.environ.get("KEVENTS_PROGRESS")
    if not path:
        raise SystemExit("hack.progress: KEVENTS_PROGRESS names no journal file")
    return journal.Journal(pathlib.Path(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hack.progress",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    step = sub.add_parser("step", help="start the next numbered step")
    step.add_argument("--of", type=int, default=None, help="how many steps the run has")
    step.add_argument("--status", type=int, default=0, help="the exit code of the step it ends")
    step.add_argument("--stderr", action="store_true")
    step.add_argument("title", nargs="+")
    end = sub.add_parser("end", help="end the open step and print each step's time")
    end.add_argument("--status", type=int, default=0, help="the script's exit code")
    end.add_argument("--stderr", action="store_true")
    for name in ("go", "mvn"):
        run = sub.add_parser(name, help=f"run {name} with a moving line")
        run.add_argument("--title", required=True)
        run.add_argument("-C", dest="cwd", default=None, help="run in this folder")
        run.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    if args.command in ("go", "mvn"):
        command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not command:
            parser.error(f"{args.command}: no command after --")
        renderer = render.choose(sys.stderr)
        steps = render.Steps(total=0, renderer=renderer)
        code = 0
        try:
            with steps.step(args.title) as current:
                if args.command == "go":
                    code = gobuild.run(command, current, cwd=args.cwd, messages=sys.stderr)
                else:
                    code = maven.run(command, current, log=sys.stderr)
                if code != 0:
                    raise _Failed
        except _Failed:
            pass
        return code

    renderer = render.choose(sys.stderr if args.stderr else sys.stdout)
    book = _journal()
    now = time.time()
    ended = book.end(ok=args.status == 0, now=now)
    if ended is not None:
        renderer.finished(ended)
    if args.command == "step":
        started = book.start(" ".join(args.title), args.of, now)
        renderer.started(started.number, started.total, started.title)
    else:
        renderer.summary(book.records())
    return 0


class _Failed(Exception):
    """The command failed: its step is recorded as failed, its code is the exit code."""


if __name__ == "__main__":
    sys.exit(main())
