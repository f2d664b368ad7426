package engine

import "fmt"

// WriterRouteLeaks describes the slot routes and moves of w that still
// count commands (none should once Flush returned).
func WriterRouteLeaks(w *BatchWriter) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := ""
	for li, rs := range w.routes {
		for slot, r := range rs {
			if r.n != 0 || r.away != 0 {
				s += fmt.Sprintf("lane %d slot %d: addr %s n %d away %d; ", li, slot, w.nodeNames[r.node], r.n, r.away)
			}
		}
	}
	for k, m := range w.moves {
		s += fmt.Sprintf("moves %d/%d: %v last %s; ", k>>8, k&0xff, m.away, m.last)
	}
	return s
}
