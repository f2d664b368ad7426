package engine

// TxPoolConns returns, per node address, how many connections the
// transaction pool (ded false) or the Dedicated pool (ded true) of e holds
// open (idle or lent) and idle.
func TxPoolConns(e *Engine, ded bool) (open, idle map[string]int) {
	p := &e.tx
	if ded {
		p = &e.ded
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	open, idle = map[string]int{}, map[string]int{}
	for _, addr := range p.open {
		open[addr]++
	}
	for addr, l := range p.idle {
		if len(l) > 0 {
			idle[addr] = len(l)
		}
	}
	return open, idle
}

// PoolHoldWaits returns how many WAITs the connections of e's pool
// (PoolTx or PoolDedicated) sent at held sentinel failovers.
func PoolHoldWaits(e *Engine, pool string) uint64 {
	if pool == PoolDedicated {
		return e.ded.holdWaits.Load()
	}
	return e.tx.holdWaits.Load()
}
