package http

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

// openAPIDocument describes the v1 API in OpenAPI 3.1. It is written by hand
// and kept true by openapi_test.go, which checks that it names exactly the
// registered routes and that the responses of the HTTP tests match its
// schemas.
//
//go:embed openapi.json
var openAPIDocument []byte

// openAPI is GET /openapi.json. It is public: it describes the API, holds no
// order data, and code generators and API explorers fetch it without keys.
func (s *Server) openAPI(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(openAPIDocument)
}

// routePaths is the set of registered route patterns, the values of the
// HTTP metrics' "route" label.
func (s *Server) routePaths() map[string]bool {
	paths := map[string]bool{}
	for _, r := range s.routes() {
		paths[r.path] = true
	}
	return paths
}
