"""`hack/build-images`: every image as an OCI archive, built without a container daemon.

    mmdebstrap (Debian bookworm, minbase, python3.11)  -> base layer        ┐
    pip, wheels only, pyproject's runtime deps         -> deps layer        ├ kevents/<component>
    the project's packages, compiled                   -> code layer        ┘  (config only differs)
    go build knative.dev/eventing/cmd/{event_display,heartbeats} -> ko-like static images
    Debian's busybox-static                            -> busybox

Layers are deterministic tars (`layers.py`) assembled into one OCI image layout by umoci
(`layout.py`), then copied to one `oci-archive` per image by skopeo. Everything is cached,
content-addressed, in `${KEVENTS_CACHE:-~/.cache/kevents}/images/` (`stages.py`).
"""
