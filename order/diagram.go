package order

import (
	"fmt"
	"strings"
)

// Mermaid renders the transition table as a Mermaid state diagram.
func Mermaid() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	fmt.Fprintf(&b, "    [*] --> %v\n", InitialState)
	for _, from := range States() {
		for _, to := range transitionTable[from] {
			fmt.Fprintf(&b, "    %v --> %v\n", from, to)
		}
		if from.Terminal() {
			fmt.Fprintf(&b, "    %v --> [*]\n", from)
		}
	}
	return b.String()
}

// DOT renders the transition table as a Graphviz digraph.
func DOT() string {
	var b strings.Builder
	b.WriteString("digraph order {\n    rankdir=LR;\n    start [shape=point];\n")
	for _, s := range States() {
		shape := "ellipse"
		if s.Terminal() {
			shape = "doublecircle"
		}
		fmt.Fprintf(&b, "    %v [shape=%s];\n", s, shape)
	}
	fmt.Fprintf(&b, "    start -> %v;\n", InitialState)
	for _, from := range States() {
		for _, to := range transitionTable[from] {
			fmt.Fprintf(&b, "    %v -> %v;\n", from, to)
		}
	}
	b.WriteString("}\n")
	return b.String()
}
