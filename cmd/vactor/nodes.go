package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
)

// A shard is one slot range of a cluster and the nodes serving it, as
// CLUSTER SLOTS lists them.
type shard struct {
	From, To int
	Primary  string   // host:port
	Replicas []string // host:port
	ID       string   // the primary's node ID, when the server gives it
}

// clusterSlots reads the slot map through eng (in cluster mode) with
// CLUSTER SLOTS, which every server version with cluster support has.
func clusterSlots(ctx context.Context, eng *engine.Engine) ([]shard, error) {
	r, err := eng.Do(ctx, "CLUSTER", "SLOTS").Await(ctx)
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS: %w", err)
	}
	v, err := r.Any()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS: %w", err)
	}
	entries, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("CLUSTER SLOTS: unexpected reply %T", v)
	}
	var shards []shard
	for _, e := range entries {
		f, ok := e.([]any)
		if !ok || len(f) < 3 {
			return nil, fmt.Errorf("CLUSTER SLOTS: unexpected entry %v", e)
		}
		from, ok1 := f[0].(int64)
		to, ok2 := f[1].(int64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("CLUSTER SLOTS: unexpected range %v", e)
		}
		s := shard{From: int(from), To: int(to)}
		for i, n := range f[2:] {
			addr, id, err := slotNode(n)
			if err != nil {
				return nil, err
			}
			if i == 0 {
				s.Primary, s.ID = addr, id
				continue
			}
			s.Replicas = append(s.Replicas, addr)
		}
		shards = append(shards, s)
	}
	return shards, nil
}

// slotNode reads one node of a CLUSTER SLOTS entry: [host, port, id, ...].
func slotNode(n any) (addr, id string, err error) {
	f, ok := n.([]any)
	if !ok || len(f) < 2 {
		return "", "", fmt.Errorf("CLUSTER SLOTS: unexpected node %v", n)
	}
	host, ok1 := f[0].(string)
	port, ok2 := f[1].(int64)
	if !ok1 || !ok2 {
		return "", "", fmt.Errorf("CLUSTER SLOTS: unexpected node %v", n)
	}
	if len(f) > 2 {
		id, _ = f[2].(string)
	}
	return net.JoinHostPort(host, strconv.FormatInt(port, 10)), id, nil
}

// clusterNodes returns the addresses of every node of the shards,
// primaries first, each once.
func clusterNodes(shards []shard) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range shards {
		if !seen[s.Primary] {
			seen[s.Primary] = true
			out = append(out, s.Primary)
		}
	}
	for _, s := range shards {
		for _, r := range s.Replicas {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	return out
}

// nodeConfig is cfg pointed at one node, in standalone mode.
func nodeConfig(cfg config.Config, addr string) config.Config {
	return cfg.WithAddrs(addr).WithClusterMode(false)
}

// serverInfo runs INFO with the given sections and returns its fields.
func serverInfo(ctx context.Context, eng *engine.Engine, sections ...string) (map[string]string, error) {
	args := sections
	if len(args) == 0 {
		args = []string{"default"}
	}
	r, err := eng.Do(ctx, "INFO", args...).Await(ctx)
	if err != nil {
		return nil, fmt.Errorf("INFO: %w", err)
	}
	text, err := r.String()
	if err != nil {
		return nil, fmt.Errorf("INFO: %w", err)
	}
	return parseInfo(text), nil
}

// parseInfo reads the "field:value" lines of an INFO reply.
func parseInfo(text string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m
}

// serverVersion names the server software and version from INFO server.
func serverVersion(info map[string]string) string {
	if v := info["valkey_version"]; v != "" {
		return "valkey " + v
	}
	if v := info["redis_version"]; v != "" {
		return "redis " + v
	}
	return "unknown"
}
