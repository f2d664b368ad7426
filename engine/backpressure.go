package engine

import (
	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/mailbox"
)

// mailboxPolicy maps the configured backpressure policy onto a mailbox's:
// connection actors' and slot actors' mailboxes apply the same one.
func mailboxPolicy(p config.BackpressurePolicy) mailbox.Policy {
	if p == config.BackpressureReject {
		return mailbox.Reject
	}
	return mailbox.Block
}
