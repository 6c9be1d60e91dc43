"""The kevents node agent: a kubelet stand-in for the local cluster of `hack/cluster`.

It registers a Node, renews its Lease, and runs the containers of the pods bound to it as
local processes (image -> command map in `images.yaml`), each pod in its own network and mount
namespace with the pod's env, volumes, ServiceAccount token and DNS. It records the kubelet's
Events (`kevents.kubeevents`: Pulled, Created, Started, BackOff, Unhealthy, Killing, Failed,
source `kubelet` on this node, as the node identity may). It reports pod status,
serves container logs over the kubelet API, and keeps the `kubernetes` and `kube-dns`
endpoints pointing where pods reach them.

    __main__.py     CLI: `python -m hack.agent run | cleanup | network-free | leftovers`, the
                    only way `hack/localcluster` (its `node.py`) drives the agent
    settings.py     the agent's Settings
    kubeconfig.py   the shared client (kevents.kubeapi) from the agent's kubeconfig
    node.py         Node registration, status heartbeats, Lease renewal
    images.py       image reference -> local command (the default `process` runtime)
    imagestore.py   runc runtime: references in hack/build-images' OCI layout, rootfs per chain
    runc.py         runc runtime: the OCI runtime spec of a container, `runc run` and clean-up
    envvars.py      container env: valueFrom, envFrom, service links, $(VAR) expansion
    quantities.py   resource quantities ("250m", "64Mi") for resourceFieldRef
    volumes.py      secret/configMap/emptyDir/downwardAPI/projected volumes on disk
    network.py      bridge, per-pod network namespaces and veths, our nftables table
    containers.py   one container's process: launch, restart back-off, probes, stop
    probes.py       httpGet / tcpSocket / exec probes
    podstatus.py    pure: runtime state -> pod status (phase, conditions, containerStatuses)
    pods.py         one pod's lifecycle; the pod watch that starts and stops pod workers
    kubeletapi.py   https server for /containerLogs (kubectl logs [-f] [--previous])
    endpoints.py    the `kubernetes` and `kube-dns` Services' endpoints, the apiserver forwarder
"""
