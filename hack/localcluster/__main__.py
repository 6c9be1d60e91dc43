"""`hack/cluster up | down [--wipe] | status [--json|--human] | kubeconfig | env`: the local
control plane CLI."""

from __future__ import annotations

import argparse
import fcntl
import json
import sys

from hack.localcluster import cluster, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/cluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    upper = sub.add_parser("up", help="start the cluster (or reuse the running one)")
    upper.add_argument(
        "--observability", action="store_true", help="also start Prometheus and Zipkin"
    )
    upper.add_argument(
        "--kafka", action="store_true", help="also start a Kafka broker (KRaft, Maven Central)"
    )
    down = sub.add_parser("down", help="stop every process `up` started")
    down.add_argument(
        "--wipe", action="store_true", help="also delete etcd data, Kafka's log, PKI, logs"
    )
    stat = sub.add_parser(
        "status", help="what runs: a summary on a terminal, JSON when piped (or as asked)"
    )
    form = stat.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="JSON (the default when piped)")
    form.add_argument("--human", action="store_true", help="the summary (default on a terminal)")
    sub.add_parser("kubeconfig", help="print the admin kubeconfig path")
    sub.add_parser("env", help="print shell exports for KUBECONFIG and kubectl")
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(f"cluster: {msg}", file=sys.stderr)

    if args.command == "up":
        try:
            # Parallel test sessions each ask for the cluster (and Kafka): one starts what is
            # missing, the others wait and find it running.
            cluster.state_dir().mkdir(parents=True, exist_ok=True)
            with open(cluster.state_dir() / "up.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                cluster.up(log, with_observability=args.observability, with_kafka=args.kafka)
        except cluster.ClusterError as err:
            log(f"start failed: {err}")
            return 1
        print(cluster.state_dir() / "admin.kubeconfig")
    elif args.command == "down":
        stopped = cluster.down(wipe=args.wipe)
        log(f"stopped {len(stopped)} process(es)" + (" and wiped state" if args.wipe else ""))
    elif args.command == "status":
        info = cluster.status()
        # scripts (hack/up, tests) read the JSON from a pipe; people get the summary
        human = args.human or (not args.json and sys.stdout.isatty())
        if human:
            sys.stdout.write(summary.render(info))
        else:
            print(json.dumps(info, indent=2))
        return 0 if info["ready"] else 3
    elif args.command == "kubeconfig":
        print(cluster.state_dir() / "admin.kubeconfig")
    elif args.command == "env":
        d = cluster.state_dir()
        print(f"export KUBECONFIG={d / 'admin.kubeconfig'}")
        print(f"export PATH={d / 'bin'}:$PATH")
    return 0


if __name__ == "__main__":
    sys.exit(main())
