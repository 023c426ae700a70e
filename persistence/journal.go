package persistence

import (
	"errors"
	"fmt"

	"github.com/orderd/orderd/order"
)

// ErrClosed matches the errors of a journal used after Close. Appends that
// fail with it also match order.ErrJournalUnavailable: nothing was written.
var ErrClosed = errors.New("journal closed")

var errClosed = fmt.Errorf("%w: %w", order.ErrJournalUnavailable, ErrClosed)
