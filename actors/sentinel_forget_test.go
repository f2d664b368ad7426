package actors

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/policies"
)

// A sentinel learned from the answers (not configured) that no answer
// names any more and that cannot be reached is forgotten: sentinels
// replaced over weeks at new addresses (pods rescheduled) made the actor
// keep every address it ever heard of, each subscribed again at its
// backoff for ever, and asked at every resolution that reached it.
func TestSentinelForgetsSentinelsNoLongerNamed(t *testing.T) {
	snapshot := goleak.IgnoreCurrent()
	var mu sync.Mutex
	dialled := map[string]int{}
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	s := &SentinelState{
		MasterName: "mymaster",
		Sentinels:  []string{"s1:1", "s2:2"},
		Dial: func(_ context.Context, addr string) (drivers.ValkeyConn, error) {
			mu.Lock()
			dialled[addr]++
			mu.Unlock()
			return nil, errNoSentinel
		},
		Timeout: time.Second,
		Backoff: policies.Backoff{Min: 5 * time.Millisecond, Max: 5 * time.Millisecond},
	}
	s.init()
	s.view.Store(&SentinelView{Master: "10.0.0.1:6379", Gen: 1, Epoch: 3})
	if err := s.Spawn(sys); err != nil {
		t.Fatal(err)
	}
	defer func() {
		s.Stop()
		sys.Shutdown()
		goleak.VerifyNone(t, snapshot)
	}()
	// Each round the answering sentinel names one other, a new one: the
	// one named before was replaced.
	const rounds = 200
	answer := func(i int) {
		named := fmt.Sprintf("10.9.%d.%d:26379", i/250, i%250)
		s.tell(sentinelResolved{
			answer: &sentinelAnswer{from: "s1:1", master: "10.0.0.1:6379", epoch: 3, sentinels: []string{named}},
			known:  []string{named},
		})
	}
	for i := range rounds {
		answer(i)
	}
	time.Sleep(100 * time.Millisecond) // every subscription tried once at least
	answer(rounds)
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	clear(dialled)
	mu.Unlock()
	time.Sleep(200 * time.Millisecond) // ~40 resubscriptions of each sentinel followed
	mu.Lock()
	defer mu.Unlock()
	// s1, s2 and the one named last.
	if len(dialled) > 3 {
		t.Errorf("%d sentinels still dialled after %d were each named once and replaced, want at most 3", len(dialled), rounds+1)
	}
}
