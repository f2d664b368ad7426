package main

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/config"
)

// serverCPU reads a standalone server's CPU time (INFO cpu: used_cpu_sys
// plus used_cpu_user) on a connection of its own, so that a bench worker
// can report the server's CPU per operation beside the client's. It is
// nil-safe: without a connection (cluster mode, where the time is spread
// over nodes, or a failed dial) read reports false.
type serverCPU struct {
	ctx context.Context
	c   valkey.Client
}

func newServerCPU(ctx context.Context, cfg config.Config) *serverCPU {
	if cfg.ClusterMode {
		return &serverCPU{}
	}
	tlsCfg, err := cfg.TLS.ClientConfig()
	if err != nil {
		return &serverCPU{}
	}
	c, err := valkey.NewClient(valkey.ClientOption{
		InitAddress: cfg.Addresses()[:1], Username: cfg.Username, Password: cfg.Password,
		SelectDB: cfg.DB, TLSConfig: tlsCfg, ForceSingleClient: true, DisableCache: true,
	})
	if err != nil {
		return &serverCPU{}
	}
	return &serverCPU{ctx: ctx, c: c}
}

// read returns the server's CPU time so far.
func (s *serverCPU) read() (time.Duration, bool) {
	if s.c == nil {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	text, err := s.c.Do(ctx, s.c.B().Info().Section("cpu").Build()).ToString()
	if err != nil {
		return 0, false
	}
	return parseServerCPU(text)
}

// parseServerCPU adds used_cpu_sys and used_cpu_user of an INFO reply.
func parseServerCPU(text string) (time.Duration, bool) {
	info := parseInfo(text)
	var total float64
	for _, k := range []string{"used_cpu_sys", "used_cpu_user"} {
		v, err := strconv.ParseFloat(strings.TrimSpace(info[k]), 64)
		if err != nil {
			return 0, false
		}
		total += v
	}
	return time.Duration(total * float64(time.Second)), true
}

func (s *serverCPU) close() {
	if s.c != nil {
		s.c.Close()
	}
}
