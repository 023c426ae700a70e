package order

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStateRoundTrip(t *testing.T) {
	for _, s := range States() {
		got, err := ParseState(s.String())
		require.NoError(t, err)
		assert.Equal(t, s, got)

		b, err := json.Marshal(s)
		require.NoError(t, err)
		var back State
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, s, back)
	}
}

func TestParseStateRejects(t *testing.T) {
	for _, name := range []string{"", "paid", "PAID", " Paid", "Paid ", "Refunded", "State(1)"} {
		_, err := ParseState(name)
		assert.ErrorIs(t, err, ErrUnknownState, "%q", name)
	}
	var s State
	assert.ErrorIs(t, json.Unmarshal([]byte(`"paid"`), &s), ErrUnknownState)
	_, err := State(0).MarshalText()
	assert.Error(t, err)
}

func TestTerminalStatesAreExactlyThoseWithoutSuccessors(t *testing.T) {
	terminal := map[State]bool{}
	for _, s := range States() {
		terminal[s] = s.Terminal()
	}
	assert.Equal(t, map[State]bool{Created: false, Paid: false, Shipped: false, Delivered: false, Cancelled: true, Returned: true}, terminal)
	assert.False(t, State(0).Terminal())
}

func TestAllowedNextIsACopy(t *testing.T) {
	next := AllowedNext(Created)
	next[0] = Returned
	assert.Equal(t, []State{Paid, Cancelled}, AllowedNext(Created))
}

func TestDiagramsListEveryStep(t *testing.T) {
	mermaid, dot := Mermaid(), DOT()
	for _, from := range States() {
		for _, to := range AllowedNext(from) {
			assert.Contains(t, mermaid, from.String()+" --> "+to.String())
			assert.Contains(t, dot, from.String()+" -> "+to.String()+";")
		}
	}
	assert.Contains(t, mermaid, "[*] --> Created")
	assert.Contains(t, dot, "Cancelled [shape=doublecircle]")
	assert.NotContains(t, mermaid, "Shipped --> Cancelled")
}
