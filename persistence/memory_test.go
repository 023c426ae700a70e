package persistence

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderd/orderd/order"
)

func TestMemoryJournalFaults(t *testing.T) {
	for _, tc := range []struct {
		fault   Fault
		want    error
		written bool
	}{
		{FaultUnavailable, order.ErrJournalUnavailable, false},
		{FaultUnknownWritten, order.ErrOutcomeUnknown, true},
		{FaultUnknownNotWritten, order.ErrOutcomeUnknown, false},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			j := NewMemoryJournal()
			ctx := testContext(t)
			j.FailNext(2, tc.fault)
			for v := 1; v <= 2; v++ {
				err := j.Append(ctx, lifecycleEvent("faulted", 1))
				require.ErrorIs(t, err, tc.want, "append %d", v)
			}
			require.NoError(t, j.Append(ctx, lifecycleEvent("after", 1)), "only the next 2 fail")
			got, err := j.Load(ctx, "faulted")
			require.NoError(t, err)
			if tc.written {
				assert.Len(t, got, 2)
			} else {
				assert.Empty(t, got)
			}
		})
	}
}

func TestMemoryJournalFaultHook(t *testing.T) {
	j := NewMemoryJournal()
	ctx := testContext(t)
	var seen []string
	j.SetFaultHook(func(ev order.Event) Fault {
		seen = append(seen, ev.OrderID)
		if ev.OrderID == "doomed" {
			return FaultUnavailable
		}
		return FaultNone
	})
	j.FailNext(1, FaultUnknownNotWritten)
	assert.ErrorIs(t, j.Append(ctx, lifecycleEvent("queued-fault", 1)), order.ErrOutcomeUnknown, "FailNext comes first")
	assert.ErrorIs(t, j.Append(ctx, lifecycleEvent("doomed", 1)), order.ErrJournalUnavailable)
	assert.NoError(t, j.Append(ctx, lifecycleEvent("fine", 1)))
	assert.Equal(t, []string{"doomed", "fine"}, seen, "the hook sees the appends no queued fault took")
	j.SetFaultHook(nil)
	assert.NoError(t, j.Append(ctx, lifecycleEvent("doomed", 1)))
	assert.Equal(t, 2, j.Len())
}

func TestMemoryJournalCountsUndecodableRecords(t *testing.T) {
	j := NewMemoryJournal()
	ctx := testContext(t)
	require.NoError(t, j.Append(ctx, lifecycleEvent("o", 1)))
	j.InjectRecord([]byte("o"), []byte("{garbage"))
	require.NoError(t, j.Append(ctx, lifecycleEvent("o", 2)))
	got, stats := replayAll(t, j)
	assert.Equal(t, lifecycle("o", 2), got)
	assert.Equal(t, order.ReplayStats{Records: 3, Undecodable: 1}, stats)
	loaded, err := j.Load(ctx, "o")
	require.NoError(t, err)
	assert.Equal(t, lifecycle("o", 2), loaded)
}
