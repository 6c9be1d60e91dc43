"""Progress of long set-up work (issue 25): a step counter ("[3/7] building the control
plane") with elapsed times, a moving line for long commands, each step's time at the end.

- `render`: the renderers (rich on a terminal, timestamped lines in CI logs) and `Steps`;
- `gobuild`: a Go build's moving line (packages compiled out of `go list -deps`'s count, from
  `go build -json -v` events);
- `maven`: a Maven fetch's moving line (artifacts and bytes downloaded);
- `loglines`: any command's moving line from the lines of its log a pick function recognises
  (hack/build-images: mmdebstrap's phases, pip's packages, `go get`'s downloads);
- `journal`: steps across the commands of a bash script (KEVENTS_PROGRESS names the file);
- `python -m hack.progress step|end|go|mvn`: the command line the bash scripts call.
"""
