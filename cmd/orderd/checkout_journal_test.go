package main

import (
	"github.com/orderd/orderd/actors"
	"github.com/orderd/orderd/persistence"
)

// The journals record checkouts as the saga's orchestrator needs; only cmd
// imports both sides.
var (
	_ actors.CheckoutJournal = (*persistence.KafkaJournal)(nil)
	_ actors.CheckoutJournal = (*persistence.MemoryJournal)(nil)
)
