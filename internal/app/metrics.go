package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"sensorhub/actors/auth"
	"sensorhub/actors/sensor"
	"sensorhub/bridge"
	"sensorhub/internal/metrics"
	"sensorhub/internal/natsx"
)

// newMetrics is the process's metrics registry.
func newMetrics() *metrics.Registry { return metrics.New(natsx.BuildVersion()) }

// startMetrics serves reg at /metrics on addr (nothing when addr is
// empty) until shutdown, and returns the bound address.
func (l *lifecycle) startMetrics(addr string, reg *metrics.Registry) (string, error) {
	if addr == "" || reg == nil {
		return "", nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+metrics.Path, reg.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	l.logger.Info("metrics listening", "addr", ln.Addr().String(), "path", metrics.Path)
	l.defer_("metrics http", func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
		<-done
	})
	return ln.Addr().String(), nil
}

// observeNATS counts the requests role makes on nc, until shutdown.
func (l *lifecycle) observeNATS(reg *metrics.Registry, role string, nc *nats.Conn) {
	if reg == nil {
		return
	}
	stop := natsx.Observe(nc, reg.NATS(role))
	l.defer_("nats metrics "+role, stop)
}

// The roles' collectors read the state each role keeps, at scrape time.

func registerAuth(reg *metrics.Registry, role string, svc *auth.Service) {
	if reg == nil {
		return
	}
	reg.Breakers(role, svc.Breakers())
	reg.Supervision(role, svc.Role().Decisions)
}

func registerSensor(reg *metrics.Registry, role string, svc *sensor.Service) {
	if reg == nil {
		return
	}
	reg.Breakers(role, svc.Breakers())
	reg.Supervision(role, svc.Supervision().Decisions)
	reg.Sensor(role, func() metrics.SensorCounts { return metrics.SensorCounts(svc.Counts()) })
}

func registerBridge(reg *metrics.Registry, role string, b *bridge.Bridge) {
	if reg == nil {
		return
	}
	reg.Breakers(role, b.Breakers())
	reg.Supervision(role, b.Role().Decisions)
	reg.Bridge(role,
		func() metrics.BridgeCounts { return metrics.BridgeCounts(b.Counts()) },
		func(ctx context.Context) (metrics.ConsumerLag, error) {
			lag, err := b.Lag(ctx)
			return metrics.ConsumerLag(lag), err
		})
}
