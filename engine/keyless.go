package engine

// Commands without keys in cluster mode (a keyless Do, a pipeline's
// keyless entries, a keyless Tx, PingFuture) go to the primaries of the
// current slot map in turn, skipping those whose breaker is open. Each
// primary is reached through the first slot it serves, so such a command
// takes the slot's path (see submitSlot): straight to the node's connection
// actor when it is dialled, else through the slot's actor, which dials it
// (never the caller), and which follows the slot to its new owner when
// the node fails. ScanPage uses slot 0: a SCAN cursor belongs to one node.

// keylessSlot returns the slot whose primary carries the next command
// without keys: the primaries of the current slot map in turn (those
// serving no slot left out), skipping those whose breaker is open unless
// all are. Safe for concurrent use.
func (c *cluster) keylessSlot() uint16 {
	shards := c.topo.Load().Shards
	n := uint64(len(shards))
	if n == 0 {
		return 0
	}
	start := c.keylessNext.Add(1)
	fallback := -1
	for i := range n {
		sh := &shards[(start+i)%n]
		if len(sh.Ranges) == 0 {
			continue
		}
		if !c.e.nodeOpen(sh.Primary) {
			return sh.Ranges[0][0]
		}
		if fallback < 0 {
			fallback = int(sh.Ranges[0][0])
		}
	}
	return uint16(max(fallback, 0))
}

// scanSlot is the slot whose node ScanPage scans in cluster mode.
const scanSlot = 0
