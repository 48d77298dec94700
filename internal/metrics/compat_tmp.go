package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry is temporary, until daemon.go uses New.
func NewRegistry(state StateFunc) (*prometheus.Registry, error) {
	x, err := New(Options{State: state})
	if err != nil {
		return nil, err
	}
	return x.reg, nil
}

// HandlerFor is temporary, until daemon.go uses New.
func HandlerFor(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError, Timeout: Timeout + time.Second})
}
