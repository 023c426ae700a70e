package http

import (
	"encoding/json"

	"github.com/gofiber/fiber/v2"

	"github.com/orderd/orderd/order"
)

// Media types of the diagram exports.
const (
	mimeTextPlain = "text/plain; charset=utf-8"
	mimeGraphviz  = "text/vnd.graphviz; charset=utf-8"
)

// machineBody is GET /v1/machine: the lifecycle, read from order's table.
type machineBody struct {
	States      []order.State            `json:"states"`
	Initial     order.State              `json:"initial"`
	Terminal    []order.State            `json:"terminal"`
	Transitions map[string][]order.State `json:"transitions"`
}

// machineViews holds the three renderings of the table. The table is fixed
// at compile time, so they are built once rather than per request.
type machineViews struct {
	json    []byte
	mermaid string
	dot     string
}

func newMachineViews() machineViews {
	body := machineBody{
		States:      order.States(),
		Initial:     order.InitialState,
		Terminal:    []order.State{},
		Transitions: map[string][]order.State{},
	}
	for _, s := range order.States() {
		next := order.AllowedNext(s)
		if next == nil {
			next = []order.State{} // [] rather than null: "nowhere", not "unknown"
		}
		body.Transitions[s.String()] = next
		if s.Terminal() {
			body.Terminal = append(body.Terminal, s)
		}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		panic("http: the transition table does not encode: " + err.Error())
	}
	return machineViews{json: raw, mermaid: order.Mermaid(), dot: order.DOT()}
}

// getMachine is GET /v1/machine[?format=json|mermaid|dot].
func (s *Server) getMachine(c *fiber.Ctx) error {
	switch format := c.Query(fieldFormat); format {
	case "", "json":
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(s.machine.json)
	case "mermaid":
		c.Set(fiber.HeaderContentType, mimeTextPlain)
		return c.SendString(s.machine.mermaid)
	case "dot":
		c.Set(fiber.HeaderContentType, mimeGraphviz)
		return c.SendString(s.machine.dot)
	default:
		return badInput(fieldFormat, "%q is not a format (json, mermaid or dot)", format)
	}
}
