// Command receiver is a strict CloudEvents sink on the official Go SDK (sdk-go v2).
//
// Every POST is decoded by the SDK (binary or structured mode) and checked with
// event.Validate(); a valid event is answered 202 (500 under /fail, a subscriber failing on
// purpose), an invalid one 400 with the SDK's error.
// Both are recorded with the request path, so a test can tell which kevents path delivered
// what and whether the SDK accepted it: GET /events returns the records as JSON, GET /health
// answers 200. The listen address comes from RECEIVER_ADDR (default :8080).
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

type record struct {
	SDK        string         `json:"sdk"`
	Path       string         `json:"path"`
	Accepted   bool           `json:"accepted"`
	Error      string         `json:"error,omitempty"`
	ID         string         `json:"id,omitempty"`
	Type       string         `json:"type,omitempty"`
	Source     string         `json:"source,omitempty"`
	Subject    string         `json:"subject,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

type receiver struct {
	mu      sync.Mutex
	records []record
}

func (r *receiver) add(rec record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch {
	case req.Method == http.MethodGet && req.URL.Path == "/health":
		w.WriteHeader(http.StatusOK)
	case req.Method == http.MethodGet && req.URL.Path == "/events":
		r.mu.Lock()
		body, err := json.Marshal(append([]record{}, r.records...))
		r.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	case req.Method == http.MethodPost:
		rec := record{SDK: "sdk-go", Path: req.URL.Path}
		ev, err := cehttp.NewEventFromHTTPRequest(req)
		if err == nil {
			rec.ID, rec.Type, rec.Source, rec.Subject = ev.ID(), ev.Type(), ev.Source(), ev.Subject()
			rec.Extensions = ev.Extensions()
			err = ev.Validate()
		}
		if err != nil {
			rec.Error = err.Error()
			r.add(rec)
			log.Printf("refused a request to %s: %v", req.URL.Path, err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rec.Accepted = true
		r.add(rec)
		if strings.HasPrefix(req.URL.Path, "/fail") {
			// A subscriber that fails on purpose, for retries and dead letters.
			http.Error(w, "failing on purpose", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func main() {
	addr := os.Getenv("RECEIVER_ADDR")
	if addr == "" {
		addr = ":8080"
	}
	log.Printf("sdk-go strict receiver listening on %s", addr)
	log.Fatal(http.ListenAndServe(addr, &receiver{}))
}
