// The floor of any admission webhook, in Go as controller-runtime's are: a handler that allows
// every AdmissionReview it gets, over TLS (HTTP/2 when the client offers it, as kube-apiserver
// does). hack/bench/guard.py builds and runs it beside the guard and the Python floor, so the
// cost of a round trip from kube-apiserver to any webhook process shows apart from Python's.
//
// Usage: floor_webhook ADDRESS CERT KEY
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
)

type review struct {
	Request struct {
		UID string `json:"uid"`
	} `json:"request"`
}

func allow(w http.ResponseWriter, r *http.Request) {
	var in review
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"apiVersion": "admission.k8s.io/v1",
		"kind":       "AdmissionReview",
		"response":   map[string]any{"uid": in.Request.UID, "allowed": true},
	})
}

func main() {
	if len(os.Args) != 4 {
		log.Fatal("usage: floor_webhook ADDRESS CERT KEY")
	}
	http.HandleFunc("/mutate", allow)
	log.Fatal(http.ListenAndServeTLS(os.Args[1], os.Args[2], os.Args[3], nil))
}
