package main

import (
	"sync"
	"unsafe"
)

// lineIndex finds the input line of a command the batch writer reports
// failed. BatchWriterOptions.OnError gives the command's arguments, not
// a tag; but the writer keeps the very strings it was given (it copies
// the slice, not the strings), and vactor load gives each command its own
// allocation (see pack). So the address of a command's first non-empty
// argument after the name (else of its name) identifies it, and the index
// maps that address to the line. Only the address is used: no memory is
// read through it.
//
// Entries are kept in windows of windowSize commands. When a window is
// full the loader calls Flush on the writer in the background; once that
// returns, every command of the window has been acknowledged or reported,
// and the window is dropped, so the index holds about MaxPending entries,
// not the whole input. The pointers it holds keep their allocations alive
// until then, so no address is reused while it is in the index.
//
// If a later writer copied the strings, lookups would find nothing and
// the errors file would say "line ?": the load itself is unaffected (a
// test checks the line numbers).
//
// Safe for concurrent use: the loader adds, the writer's goroutines look
// up.
type lineIndex struct {
	mu      sync.Mutex
	windows []*lineWindow // oldest first; the last one takes new entries
	size    int
}

// lineWindow is one window of entries, in order; its map is built on the
// first lookup that reaches it (failures are rare: adding stays an
// append).
type lineWindow struct {
	ptrs  []*byte
	lines []int64
	m     map[*byte]int64
}

const windowSize = 1 << 16

func newLineIndex(size int) *lineIndex {
	return &lineIndex{size: size, windows: []*lineWindow{newLineWindow(size)}}
}

func newLineWindow(size int) *lineWindow {
	return &lineWindow{ptrs: make([]*byte, 0, size), lines: make([]int64, 0, size)}
}

// identity returns the address that stands for the command args (name
// first) as vactor load built it, or nil when it has none (every argument
// empty).
func identity(args []string) *byte {
	for _, a := range args[min(1, len(args)):] {
		if a != "" {
			return unsafe.StringData(a)
		}
	}
	if len(args) > 0 && args[0] != "" {
		return unsafe.StringData(args[0])
	}
	return nil
}

// add records that the command whose identity is p came from line.
func (x *lineIndex) add(p *byte, line int64) {
	if p == nil {
		return
	}
	x.mu.Lock()
	w := x.windows[len(x.windows)-1]
	w.ptrs = append(w.ptrs, p)
	w.lines = append(w.lines, line)
	if w.m != nil {
		w.m[p] = line
	}
	x.mu.Unlock()
}

// seal starts a new window when the current one is full, and returns the
// full one (nil otherwise). The caller drops it with release once a
// Flush started after its last command was written has returned.
func (x *lineIndex) seal() *lineWindow {
	x.mu.Lock()
	defer x.mu.Unlock()
	w := x.windows[len(x.windows)-1]
	if len(w.ptrs) < x.size {
		return nil
	}
	x.windows = append(x.windows, newLineWindow(x.size))
	return w
}

// release drops window w.
func (x *lineIndex) release(w *lineWindow) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i, v := range x.windows {
		if v == w {
			x.windows = append(x.windows[:i], x.windows[i+1:]...)
			return
		}
	}
}

// lookup returns the line of the command args, or 0 when unknown.
func (x *lineIndex) lookup(args []string) int64 {
	p := identity(args)
	if p == nil {
		return 0
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := len(x.windows) - 1; i >= 0; i-- {
		w := x.windows[i]
		if len(w.ptrs) == 0 {
			continue
		}
		if w.m == nil {
			w.m = make(map[*byte]int64, len(w.ptrs))
			for j, q := range w.ptrs {
				w.m[q] = w.lines[j]
			}
		}
		if line, ok := w.m[p]; ok {
			return line
		}
	}
	return 0
}

// pack returns the strings parts as one allocation of their own: a
// single string holds them all, with one byte more so that even a
// one-byte command is a fresh allocation (Go interns one-byte strings),
// and the returned strings are its substrings. buf is scratch space.
func pack(buf []byte, ends []int) []string {
	buf = append(buf, '\n')
	all := string(buf)
	args := make([]string, len(ends))
	start := 0
	for i, e := range ends {
		args[i] = all[start:e]
		start = e
	}
	return args
}
